"""Benchmarking: speed and time-to-accuracy measurements for benchmark.py."""
