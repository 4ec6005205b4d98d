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


def _described(value):
    if isinstance(value, np.ndarray):
        return f"an array of {value.dtype} with shape {value.shape}"
    return f"a {type(value).__name__}"


def _class_names(path, meta, names_key):
    """The meta file's class names, checked: label k must have a name, and names must tell classes apart."""
    names = meta.get(names_key)
    if isinstance(names, np.ndarray) and names.ndim == 1:
        names = names.tolist()
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, (str, bytes)) for n in names):
        found = "no such entry" if names is None else _described(names)
        raise UserError(f"{path} has no list of class names under '{names_key}' ({found}); is it a CIFAR meta file?")
    names = [n.decode("utf-8", "backslashreplace") if isinstance(n, bytes) else n for n in names]
    if len(names) < 2 or not all(names) or len(set(names)) < len(names):
        raise UserError(f"{path} names {len(names)} class(es) under '{names_key}' ({', '.join(names[:5])}); "
                        "a classifier needs at least 2, each named once and not empty")
    return names


# What a label list holds instead of whole numbers, in words.
_LABEL_KINDS = {"f": "fractional numbers", "c": "complex numbers", "b": "true/false values", "U": "text", "S": "bytes"}


def _checked_batch(path, batch, label_key, num_classes):
    """A batch's images (n, 32, 32, 3) and labels (n,), each field checked: a file that lies is refused,
    never trained on (an out-of-range label would train a class that has no name, or crash mid-epoch)."""
    if "data" not in batch or label_key not in batch:
        raise UserError(f"{path} has no 'data' and '{label_key}' entries; is it a CIFAR batch?")
    data = batch["data"]
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == 3072):
        raise UserError(f"{path}: 'data' is {_described(data)}; a CIFAR batch holds uint8 pixels, 3072 values "
                        "(32x32x3) per image, one image per row")
    if len(data) == 0:
        raise UserError(f"{path} holds no images")
    try:
        labels = np.asarray(batch[label_key])
    except ValueError:  # lists nested unevenly
        labels = None
    if labels is None or labels.ndim != 1:
        raise UserError(f"{path}: '{label_key}' is not a flat list; it must hold one class index per image")
    if len(labels) != len(data):
        raise UserError(f"{path} holds {len(data):,} images but {len(labels):,} labels; it is damaged")
    if labels.dtype.kind not in "iu":
        what = _LABEL_KINDS.get(labels.dtype.kind, "values of mixed or other types")
        raise UserError(f"{path}: '{label_key}' holds {what}; it must hold whole numbers, one class index per image")
    wrong = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if len(wrong):
        raise UserError(f"{path}: image {wrong[0]} has label {labels[wrong[0]]}, outside 0-{num_classes - 1} "
                        f"(the meta file names {num_classes} classes); {len(wrong):,} label(s) are out of range")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def _load_split(directory, files, label_key, num_classes, image_size):
    images, labels = [], []
    for name in files:
        batch_images, batch_labels = _checked_batch(directory / name, read_batch(directory / name), label_key,
                                                     num_classes)
        images.append(batch_images)
        labels.append(batch_labels)
    return Split(resize_images(np.concatenate(images), image_size), np.concatenate(labels))


def load_cifar_batches(directory, image_size, name=None):
    layout = detect_layout(directory)
    if layout is None:  # (train.py finds the layout first; tools/cifar_to_folder.py is given any folder)
        raise UserError(f"{directory} holds no CIFAR python batches (data_batch_1..5, test_batch and batches.meta, "
                        "or train, test and meta)")
    meta = read_batch(directory / layout["meta"])
    is_cifar100 = layout is CIFAR100_FILES
    label_key, names_key = ("fine_labels", "fine_label_names") if is_cifar100 else ("labels", "label_names")
    class_names = _class_names(directory / layout["meta"], meta, names_key)
    return ImageDataset(
        name or ("cifar100" if is_cifar100 else "cifar10"),
        class_names,
        _load_split(directory, layout["train"], label_key, len(class_names), image_size),
        _load_split(directory, layout["test"], label_key, len(class_names), image_size),
        source_size=32,
    )
