"""Robots (EP君) and cameras."""
