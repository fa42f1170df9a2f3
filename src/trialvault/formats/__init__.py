"""The formats stage."""
