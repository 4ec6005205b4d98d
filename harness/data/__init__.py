"""Data: every source loaded into memory as numpy arrays (`ImageDataset`), the same for every backend.

May use the harness's top-level helpers only (no Keras, no model, no training).

    load_dataset("cifar10_sample")              # embedded in the repo, offline
    load_dataset("cifar10") / ("cifar100")      # TensorFlow Datasets download
    load_dataset(data_dir="path/to/folder")     # DIR/train/<class>/*, DIR/test/<class>/*
    load_dataset(data_dir="cifar-10-batches-py")  # the original CIFAR python batches
    load_dataset(data_dir="images.tar.gz")      # either of those, as a .tar.gz/.tgz/.tar/.zip archive
"""

import contextlib
import pathlib

from harness.data.archives import extract_archive, is_archive
from harness.data.cifar_batches import detect_layout, load_cifar_batches
from harness.data.dataset import ImageDataset, Split, check_subset_size, nested_subset, split_validation
from harness.data.folder import is_image_folder, load_image_folder
from harness.data.sample import load_sample
from harness.data.tfds_source import TFDS_NAMES, load_tfds
from harness.errors import UserError

DATASETS = ("cifar10_sample", *TFDS_NAMES)
DEFAULT_DATASET = "cifar10_sample"

__all__ = ["DATASETS", "DEFAULT_DATASET", "ImageDataset", "Split", "check_subset_size", "load_dataset", "loading_once",
           "nested_subset", "split_validation"]


_loaded = None  # (name or data_dir, image_size) -> ImageDataset, inside `loading_once()` only


@contextlib.contextmanager
def loading_once():
    """Within this block, loading the same dataset again returns the copy already in memory.

    For commands that train, evaluate and report on one dataset in one process (compare.py).
    """
    global _loaded
    _loaded = {}
    try:
        yield
    finally:
        _loaded = None


def load_dataset(name=None, data_dir=None, image_size=32):
    """Loads a dataset by name, or from `data_dir` (whose format is detected), at `image_size`.

    With `data_dir`, `name` only labels the dataset (default: the folder's name).
    """
    if _loaded is None:
        return _load(name, data_dir, image_size)
    # With data_dir the name is only a label, and the first load's label is kept.
    key = (str(pathlib.Path(data_dir).resolve()) if data_dir else name or DEFAULT_DATASET, image_size)
    if key not in _loaded:
        _loaded[key] = _load(name, data_dir, image_size)
    return _loaded[key]


def _load(name, data_dir, image_size):
    if data_dir is not None:
        return _load_directory(pathlib.Path(data_dir), image_size, name)
    name = name or DEFAULT_DATASET
    if name == "cifar10_sample":
        return load_sample(image_size)
    if name in TFDS_NAMES:
        return load_tfds(name, image_size)
    raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}, or pass --data-dir DIR")


def _load_directory(directory, image_size, name):
    if not directory.exists():
        raise UserError(f"--data-dir {directory} does not exist")
    if is_archive(directory):
        return _load_directory(extract_archive(directory), image_size, name or directory.name.split(".")[0])
    if not directory.is_dir():
        raise UserError(
            f"--data-dir {directory} is a file; give the folder that holds train/ and test/ (or a .tar.gz/.zip of it)"
        )
    for candidate in (directory, *sorted(p for p in directory.iterdir() if p.is_dir())):
        if detect_layout(candidate):  # also finds cifar-10-batches-py/ inside the given folder
            return load_cifar_batches(candidate, image_size, name)
    if is_image_folder(directory):
        return load_image_folder(directory, image_size, name)
    raise UserError(
        f"--data-dir {directory} holds neither train/ and test/ class folders "
        f"nor CIFAR python batch files (data_batch_1..5 or train/test/meta)"
    )
