"""The console stage."""
