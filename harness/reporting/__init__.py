"""Reporting: metrics, evaluating a finished run, the paper's analyses, the figures and report.md.

May use harness.training (run directories), harness.sweeps (their results), harness.data, harness.models
and the top-level helpers.
"""
