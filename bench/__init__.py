"""Benchmarks run from the repository root: `python -m bench.identity` (or `make bench`)."""
