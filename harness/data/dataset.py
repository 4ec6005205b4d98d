"""Datasets as plain numpy arrays in memory: the form every source is loaded into.

Nothing here imports TensorFlow, so the same arrays feed tf.data or any other Keras backend.
"""

import dataclasses
from typing import Optional

import numpy as np

from harness.errors import UserError


@dataclasses.dataclass
class Split:
    """Images (n, H, W, 3) uint8 in [0, 255], integer labels (n,), and, for image folders, each image's
    file path (n,), so that a report can point at the file."""

    images: np.ndarray
    labels: np.ndarray
    sources: Optional[np.ndarray] = None

    def __post_init__(self):
        self.images = np.asarray(self.images, dtype=np.uint8)
        labels = np.asarray(self.labels)
        # Each source checks its files and names them; this only keeps a label from being changed by the cast
        # (a fraction cut, a huge number wrapped), so that no source can train on wrong labels silently.
        if labels.size and (labels.ndim != 1 or labels.dtype.kind not in "iu" or labels.min() < 0
                            or labels.max() > np.iinfo(np.int32).max):
            raise ValueError("labels must be class indices, whole numbers from 0, one per image; these are "
                             f"{labels.dtype} values in shape {labels.shape}")
        self.labels = labels.astype(np.int32, copy=False)
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")
        if self.sources is not None:
            self.sources = np.asarray(self.sources, dtype=str)

    def __len__(self):
        return len(self.labels)

    def take(self, indices):
        return Split(self.images[indices], self.labels[indices],
                     None if self.sources is None else self.sources[indices])


@dataclasses.dataclass
class ImageDataset:
    """A labelled dataset: train and test splits and the class names, index = label."""

    name: str
    class_names: list
    train: Split
    test: Split
    source_size: Optional[int] = None  # the images' typical shorter side, in pixels, before resizing

    def __post_init__(self):
        # A label past the last class name would train a class nobody can name (or fail mid-epoch).
        for split_name, split in (("train", self.train), ("test", self.test)):
            if len(split) and split.labels.max() >= len(self.class_names):
                raise ValueError(f"dataset {self.name}: a {split_name} label is {split.labels.max()}, but only "
                                 f"{len(self.class_names)} classes are named")

    @property
    def num_classes(self):
        return len(self.class_names)


def split_validation(train, fraction, seed):
    """Carves a random validation split off `train`; returns (train, validation).

    The test split is never touched, so it can be used once, at the end.
    """
    if not 0 <= fraction < 1:
        raise ValueError(f"validation fraction must be in [0, 1), not {fraction}")
    order = np.random.default_rng(seed).permutation(len(train))
    count = int(round(len(train) * fraction))
    return train.take(np.sort(order[count:])), train.take(np.sort(order[:count]))


def check_subset_size(count, available, num_classes, option):
    """A UserError, naming the command-line `option`, unless `count` training images can be drawn from the
    `available` ones (after the validation split) with at least one per class."""
    if count > available:
        raise UserError(f"{option} {count} is more than the {available:,} training images (after the validation "
                        f"split); give at most {available}")
    if count < num_classes:
        raise UserError(f"{option} {count} is fewer than the {num_classes} classes; give at least {num_classes} "
                        "(one image per class)")


def nested_subset(split, count, seed):
    """`count` images of `split`, stratified by class and nested: with the same seed, a smaller subset is
    part of every larger one (for the data-scaling sweep, paper section 4.2).

    Each class is shuffled from the seed and its image of rank r among n_c gets the key (r + 0.5) / n_c;
    the subset is the `count` smallest keys. Prefixes of one fixed order are nested, and the keys spread
    every class evenly through that order, so each class gets its share of `count` to within one image.
    """
    if not 0 < count <= len(split):
        raise ValueError(f"a subset of {count} images from a split of {len(split)}")
    rng = np.random.default_rng([seed, 2])  # a stream of its own, apart from the validation split's
    keys = np.empty(len(split))
    for label in np.unique(split.labels):
        members = rng.permutation(np.flatnonzero(split.labels == label))
        keys[members] = (np.arange(len(members)) + 0.5) / len(members)
    order = np.lexsort((rng.permutation(len(split)), keys))  # equal keys in a seeded order
    return split.take(np.sort(order[:count]))

