"""Random images for timing: speed does not depend on the content. No Keras here."""

import numpy as np

from harness.data import Split


def random_split(count, image_size, num_classes, seed=0):
    """`count` random uint8 images of `image_size` pixels a side, with random labels."""
    rng = np.random.default_rng(seed)
    return Split(rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8),
                 rng.integers(0, num_classes, count))


def timing_splits(settings, image_size):
    """Images for max(warmup_steps, steps) training steps of the RowSettings `settings` (each timed run starts
    them afresh), and 4 to 16 batches to time inference on."""
    batch_size, steps, num_classes = settings.batch_size, settings.steps, settings.num_classes
    train = random_split(batch_size * max(settings.warmup_steps, steps), image_size, num_classes)
    evaluation = random_split(batch_size * min(16, max(4, steps)), image_size, num_classes, seed=1)
    return train, evaluation
