"""The CIFAR-10 sample embedded in the repository: the offline default for quickstart and tests.

4,000 training and 1,000 test images (400 and 100 per class), drawn at random from CIFAR-10 as the
quality-75 JPEG copy holds them; `tools/make_sample.py` made the file.
"""

import pathlib

import numpy as np

from harness.data.dataset import ImageDataset, Split
from harness.data.images import load_image

SAMPLE_PATH = pathlib.Path(__file__).with_name("cifar10_sample.npz")


def load_sample(image_size=32):
    with np.load(SAMPLE_PATH, allow_pickle=False) as arrays:
        splits = {}
        for split in ("train", "test"):
            blob, offsets = arrays[f"{split}_jpeg"].tobytes(), arrays[f"{split}_offsets"]
            images = [load_image(blob[a:b], image_size) for a, b in zip(offsets[:-1], offsets[1:])]
            splits[split] = Split(np.stack(images), arrays[f"{split}_labels"])
        class_names = [str(name) for name in arrays["class_names"]]
    return ImageDataset("cifar10_sample", class_names, splits["train"], splits["test"], source_size=32)
