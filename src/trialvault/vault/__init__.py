"""The vault stage."""
