"""Stays and gate visits."""
