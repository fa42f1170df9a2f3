"""The rights stage."""
