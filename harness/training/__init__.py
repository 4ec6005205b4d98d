"""Training: settings and recipes, input pipelines and augmentation, the trainer, run directories.

May use harness.data, harness.models and the top-level helpers; never harness.reporting.
"""
