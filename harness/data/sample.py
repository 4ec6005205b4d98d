"""The CIFAR-10 sample embedded in the repository: the offline default for quickstart and tests.

4,000 training and 1,000 test images (400 and 100 per class), drawn at random from CIFAR-10 as the
quality-75 JPEG copy holds them; `tools/make_sample.py` made the file.
"""

import pathlib
import zipfile

import numpy as np

from harness.data.dataset import ImageDataset, Split
from harness.data.images import UNREADABLE, load_image
from harness.errors import UserError

SAMPLE_PATH = pathlib.Path(__file__).with_name("cifar10_sample.npz")
FIELDS = ("class_names", *(f"{split}_{part}" for split in ("train", "test") for part in ("jpeg", "offsets", "labels")))


def _damaged(why):
    return UserError(f"{SAMPLE_PATH} is damaged: {why}; restore it (git checkout -- harness/data/cifar10_sample.npz)")


def _read_fields():
    """Every array of the file, checked before any image is decoded: an edited or cut-short file is refused."""
    try:
        with np.load(SAMPLE_PATH, allow_pickle=False) as arrays:
            missing = [name for name in FIELDS if name not in arrays.files]
            if missing:
                raise _damaged(f"it lacks {', '.join(missing)}")
            fields = {name: arrays[name] for name in FIELDS}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise _damaged(f"it cannot be read ({error})") from None
    names = fields["class_names"]
    if names.ndim != 1 or names.dtype.kind != "U" or len(names) < 2:
        raise _damaged(f"class_names is {names.dtype} of shape {names.shape}, not a list of names")
    for split in ("train", "test"):
        blob, offsets, labels = (fields[f"{split}_{part}"] for part in ("jpeg", "offsets", "labels"))
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or offsets.ndim != 1 or offsets.dtype.kind not in "iu":
            raise _damaged(f"{split}_labels or {split}_offsets does not hold whole numbers in one row")
        cuts = offsets.astype(np.int64)  # (a difference of unsigned offsets would wrap, not go negative)
        if len(cuts) != len(labels) + 1 or cuts[0] != 0 or cuts[-1] != blob.nbytes or np.any(np.diff(cuts) <= 0):
            raise _damaged(f"{split}_offsets does not cut {split}_jpeg into {len(labels):,} images, one per label")
        if len(labels) == 0 or labels.min() < 0 or labels.max() >= len(names):
            raise _damaged(f"{split}_labels is empty or has labels outside 0-{len(names) - 1} ({len(names)} classes)")
    return fields


def load_sample(image_size=32):
    fields = _read_fields()
    splits = {}
    for split in ("train", "test"):
        blob, offsets = fields[f"{split}_jpeg"].tobytes(), fields[f"{split}_offsets"]
        try:
            images = [load_image(blob[a:b], image_size) for a, b in zip(offsets[:-1], offsets[1:])]
        except UNREADABLE as error:
            raise _damaged(f"an image of {split}_jpeg cannot be decoded ({error})") from None
        splits[split] = Split(np.stack(images), fields[f"{split}_labels"])
    class_names = [str(name) for name in fields["class_names"]]
    return ImageDataset("cifar10_sample", class_names, splits["train"], splits["test"], source_size=32)
