"""Benchmarking, for benchmark.py: speed (img/s, FLOPs, MFU, memory) and time-to-accuracy of runs.

May use harness.training, harness.data, harness.models and the top-level helpers; never harness.reporting.
"""
