"""Builds harness/data/cifar10_sample.npz from the CIFAR-10 JPEG folder (a maintainer tool).

    python tools/make_sample.py /path/to/cifar10-jpeg  # the folder with train/ and test/

Keeps the original JPEG bytes (no re-encoding) of a fixed, class-balanced random subset, stored as
one flat uint8 buffer plus offsets, so the file loads with `allow_pickle=False`.
"""

import argparse
import pathlib

import numpy as np

PER_CLASS = {"train": 400, "test": 100}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=pathlib.Path)
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("harness/data/cifar10_sample.npz"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    class_names = sorted(p.name for p in (args.source / "train").iterdir())
    arrays = {"class_names": np.array(class_names)}
    for split, count in PER_CLASS.items():
        blobs, labels = [], []
        for label, name in enumerate(class_names):
            files = sorted((args.source / split / name).iterdir())
            for index in sorted(rng.choice(len(files), count, replace=False)):
                blobs.append(files[index].read_bytes())
                labels.append(label)
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{split}_offsets"] = np.cumsum([0] + [len(b) for b in blobs]).astype(np.int64)
        arrays[f"{split}_labels"] = np.array(labels, dtype=np.uint8)
    np.savez(args.out, **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
