"""The retention stage."""
