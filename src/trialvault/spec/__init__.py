"""The spec stage."""
