"""Training: settings and recipes, input pipelines and augmentation, the trainer, run directories."""
