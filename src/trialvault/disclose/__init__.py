"""The disclose stage."""
