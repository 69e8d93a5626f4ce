"""Benchmarks: `python -m bench [name ...]`; figures go to bench/results/."""
