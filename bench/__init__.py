"""Benchmarks: ``make bench`` (``python -m bench``). Each figure beside its named baseline."""
