"""Agent console."""
