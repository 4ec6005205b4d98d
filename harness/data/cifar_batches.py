"""The original CIFAR-10/100 "python version" batch files, read without running pickled code.

CIFAR-10: data_batch_1..5, test_batch, batches.meta. CIFAR-100: train, test, meta (fine labels).
Each batch is a pickled dict whose 'data' is (n, 3072) uint8 in channel-major order (1024 red,
then green, then blue values of a 32x32 image).
"""

import pickle

import numpy as np

from harness.data.dataset import ImageDataset, Split
from harness.data.images import resize_images
from harness.errors import UserError

CIFAR10_FILES = dict(train=[f"data_batch_{i}" for i in range(1, 6)], test=["test_batch"], meta="batches.meta")
CIFAR100_FILES = dict(train=["train"], test=["test"], meta="meta")

# What a CIFAR pickle may reference: numpy's array reconstruction, and nothing else.
_ALLOWED_GLOBALS = {
    (module, name)
    for module in ("numpy.core.multiarray", "numpy._core.multiarray")
    for name in ("_reconstruct", "scalar")
} | {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def read_batch(path):
    """One batch file as a dict with str keys; refuses pickles that reference other code."""
    try:
        with open(path, "rb") as file:
            batch = _RestrictedUnpickler(file, encoding="latin1").load()
    except pickle.UnpicklingError as error:
        raise UserError(f"{path} is not a plain CIFAR batch file ({error}); it was not loaded") from None
    except (EOFError, ValueError, TypeError) as error:
        raise UserError(f"{path} is truncated or not a CIFAR batch file ({error})") from None
    if not isinstance(batch, dict):
        raise UserError(f"{path} is not a CIFAR batch file (it holds no dict)")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in batch.items()}


def detect_layout(directory):
    """CIFAR10_FILES or CIFAR100_FILES if `directory` holds that layout, else None."""
    for layout in (CIFAR10_FILES, CIFAR100_FILES):
        if all((directory / f).is_file() for f in [*layout["train"], *layout["test"], layout["meta"]]):
            return layout
    return None


def _load_split(directory, files, label_key, image_size):
    images, labels = [], []
    for name in files:
        batch = read_batch(directory / name)
        if "data" not in batch or label_key not in batch:
            raise UserError(f"{directory / name} has no 'data' and '{label_key}' entries; is it a CIFAR batch?")
        data = np.asarray(batch["data"], dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        images.append(data)
        labels.append(np.asarray(batch[label_key]))
    return Split(resize_images(np.concatenate(images), image_size), np.concatenate(labels))


def load_cifar_batches(directory, image_size, name=None):
    layout = detect_layout(directory)
    meta = read_batch(directory / layout["meta"])
    is_cifar100 = layout is CIFAR100_FILES
    label_key, names_key = ("fine_labels", "fine_label_names") if is_cifar100 else ("labels", "label_names")
    class_names = [n.decode() if isinstance(n, bytes) else str(n) for n in meta[names_key]]
    return ImageDataset(
        name or ("cifar100" if is_cifar100 else "cifar10"),
        class_names,
        _load_split(directory, layout["train"], label_key, image_size),
        _load_split(directory, layout["test"], label_key, image_size),
        source_size=32,
    )
