"""The shared experiment harness: data, augmentation, training and run directories for both models."""
