"""Reporting: metrics, evaluating a finished run, the paper's analyses, figures and the report."""
