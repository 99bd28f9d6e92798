"""Monthly passes."""
