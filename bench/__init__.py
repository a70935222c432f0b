"""Benchmarks that print their figures (``make bench`` = ``python -m bench``); they are not timed tests."""
