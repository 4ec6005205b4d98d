"""Any image folder laid out as DIR/train/<class>/* and DIR/test/<class>/*.

Images of any size and format Pillow reads are converted to RGB and resized to the model's input
size. Files that are not images, or are corrupt, are skipped and counted, with a warning.
"""

import concurrent.futures
import os
import pathlib
import sys
import time

import numpy as np
from tqdm import tqdm

from harness.data.dataset import ImageDataset, Split
from harness.data.images import IMAGE_EXTENSIONS, TOO_LARGE, try_read_image
from harness.errors import UserError


def is_image_folder(directory):
    return (directory / "train").is_dir() and (directory / "test").is_dir()


def class_folders(split_dir):
    return sorted(p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith("."))


def printable(name):
    """A file or folder name as valid text: bytes that are not UTF-8 (e.g. a Latin-1 "café") become \\xNN
    escapes ("caf\\xe9"), so that CSV and JSON files, figures and reports can hold the name."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def _load_split(split_dir, class_names, size):
    """The split, and the shorter side of each kept image before resizing."""
    files = [
        (path, label)
        for label, name in enumerate(class_names)
        for path in sorted((split_dir / name).iterdir())
        if path.is_file() and not path.name.startswith(".")
    ]
    if not files:
        raise UserError(f"{split_dir} has no image files; put images in {split_dir}/<class>/")
    print(f"loading {len(files):,} files from {split_dir} ...", flush=True)
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(min(8, os.cpu_count() or 1)) as pool:
        decoded = list(
            tqdm(
                pool.map(lambda item: try_read_image(item[0], size), files, chunksize=64),
                total=len(files),
                desc=f"loading {split_dir.name}",
                unit="img",
                disable=None,  # off when not a terminal
            )
        )
    kept = [(image, label, path, side) for (image, side), (path, label) in zip(decoded, files) if image is not None]
    skipped = [(str(path), why) for (image, why), (path, _) in zip(decoded, files) if image is None]
    if skipped:
        unsupported = sum(not p.lower().endswith(IMAGE_EXTENSIONS) for p, _ in skipped)
        too_large = sum(why == TOO_LARGE for _, why in skipped)
        large = f", {too_large} {TOO_LARGE}" if too_large else ""
        print(
            f"warning: skipped {len(skipped)} unreadable file(s) in {split_dir} "
            f"({unsupported} without an image extension{large}), e.g. {skipped[0][0]}",
            file=sys.stderr,
        )
    if not kept:
        raise UserError(f"no readable images in {split_dir}")
    print(f"loaded {len(kept):,} images in {time.perf_counter() - start:.0f} s", flush=True)
    images, labels, paths, sides = zip(*kept)
    _warn_about_empty_classes(split_dir, [printable(name) for name in class_names], labels)
    return Split(np.stack(images), np.array(labels), np.array([printable(str(p)) for p in paths])), sides


def _warn_about_empty_classes(split_dir, class_names, labels):
    """A class without training images is refused (the model could never predict it, and the run would
    look fine); one without test images is only left unmeasured, with a warning."""
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [name for name, count in zip(class_names, counts) if count == 0]
    if empty and split_dir.name == "train":
        raise UserError(f"{split_dir} has no readable images of {len(empty)} class(es) ({', '.join(empty[:5])}); "
                        "add images to those folders, or remove them from train/ and test/")
    if empty:
        print(f"warning: {split_dir} has no readable images of {len(empty)} class(es) ({', '.join(empty[:5])}): "
              "their test accuracy cannot be measured; their rows of the confusion matrix stay empty",
              file=sys.stderr)


def load_image_folder(directory, image_size, name=None):
    directory = pathlib.Path(directory)
    train_classes = class_folders(directory / "train")
    test_classes = class_folders(directory / "test")
    if train_classes != test_classes:
        only_train = sorted(set(train_classes) - set(test_classes))
        only_test = sorted(set(test_classes) - set(train_classes))
        raise UserError(
            f"train/ and test/ in {directory} have different class folders "
            f"(only in train: {only_train}, only in test: {only_test}); give both the same classes"
        )
    if len(train_classes) < 2:
        raise UserError(
            f"{directory}/train has {len(train_classes)} class folder(s); a classifier needs at least 2"
        )
    train, train_sides = _load_split(directory / "train", train_classes, image_size)
    test, test_sides = _load_split(directory / "test", train_classes, image_size)
    return ImageDataset(name or printable(directory.name), [printable(name) for name in train_classes], train, test,
                        source_size=int(np.median([*train_sides, *test_sides])))
