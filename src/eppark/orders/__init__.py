"""Orders and payments."""
