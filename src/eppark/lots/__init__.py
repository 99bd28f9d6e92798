"""Lots (停车场) and their gates (道口)."""
