"""Turns the official CIFAR-10/100 python batches into an image-folder archive like cifar10-jpeg.tar.gz.

    python tools/cifar_to_folder.py cifar-10-batches-py cifar10-jpeg.tar.gz            # JPEG, quality 75
    python tools/cifar_to_folder.py cifar-10-batches-py cifar10-png.tar.gz --format png  # lossless

The official files come from https://www.cs.toronto.edu/~kriz/cifar.html ("CIFAR-10 python version").
train.py reads that folder directly (--data-dir cifar-10-batches-py), so this is only for a copy as
plain images: train/<class>/NNNNN.jpg and test/<class>/NNNNN.jpg, which any --data-dir user can open.
JPEG at quality 75 is lossy: models score a little lower on it than on the original batches.
"""

import argparse
import io
import pathlib
import sys
import tarfile

from PIL import Image

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))
from harness.data.cifar_batches import load_cifar_batches  # noqa: E402
from harness.errors import cli_main  # noqa: E402


def image_bytes(pixels, image_format, quality):
    buffer = io.BytesIO()
    options = {"quality": quality} if image_format == "jpeg" else {}
    Image.fromarray(pixels).save(buffer, format=image_format.upper(), **options)
    return buffer.getvalue()


def write_archive(batches, out, image_format="jpeg", quality=75):
    """Writes every image of `batches` (a CIFAR batch folder) into the .tar.gz `out`; returns the count."""
    dataset = load_cifar_batches(pathlib.Path(batches), image_size=32)
    suffix = "jpg" if image_format == "jpeg" else "png"
    count = 0
    with tarfile.open(out, "w:gz") as archive:
        for split_name, split in (("train", dataset.train), ("test", dataset.test)):
            for index, (pixels, label) in enumerate(zip(split.images, split.labels)):
                data = image_bytes(pixels, image_format, quality)
                member = tarfile.TarInfo(f"{split_name}/{dataset.class_names[label]}/{index:05d}.{suffix}")
                member.size = len(data)
                archive.addfile(member, io.BytesIO(data))
                count += 1
    return count


@cli_main
def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("batches", help="the extracted official folder, e.g. cifar-10-batches-py")
    parser.add_argument("out", help="the archive to write, e.g. cifar10-jpeg.tar.gz")
    parser.add_argument("--format", choices=("jpeg", "png"), default="jpeg")
    parser.add_argument("--quality", type=int, default=75, help="JPEG quality (default: 75, as cifar10-jpeg)")
    args = parser.parse_args()
    count = write_archive(args.batches, args.out, args.format, args.quality)
    print(f"wrote {count:,} images to {args.out}")


if __name__ == "__main__":
    main()
