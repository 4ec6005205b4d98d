"""Random images for timing: speed does not depend on the content. No Keras here."""

import numpy as np

from harness.data import Split


def random_split(count, image_size, num_classes, seed=0):
    """`count` random uint8 images of `image_size` pixels a side, with random labels."""
    rng = np.random.default_rng(seed)
    return Split(rng.integers(0, 256, (count, image_size, image_size, 3), dtype=np.uint8),
                 rng.integers(0, num_classes, count))
