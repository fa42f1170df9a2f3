"""The seal stage."""
