"""CIFAR-10 and CIFAR-100 from TensorFlow Datasets: the default for users with internet."""

import socket

from harness.backend import chosen_backend
from harness.data.dataset import ImageDataset, Split
from harness.data.images import resize_images
from harness.errors import UserError

TFDS_NAMES = ("cifar10", "cifar100")
DOWNLOAD_HOST = "www.cs.toronto.edu"  # where TFDS fetches both CIFAR archives


def _offline_error(name, reason):
    return UserError(
        f"could not download {name} with TensorFlow Datasets ({reason}). Offline? Get the CIFAR "
        f"python batches or an image folder onto this machine and pass --data-dir DIR"
    )


def load_tfds(name, image_size):
    backend = chosen_backend()
    if backend != "tensorflow":  # TFDS imports TensorFlow, which the other backends never load
        raise UserError(f"--dataset {name} downloads through TensorFlow Datasets, which needs the TensorFlow "
                        f"backend; on KERAS_BACKEND={backend}, pass the CIFAR python batches or an image folder "
                        "with --data-dir DIR")
    import tensorflow_datasets as tfds  # imported here: only this source needs TensorFlow

    builder = tfds.builder(name)
    if not builder.is_prepared():
        # TFDS retries an unreachable host for minutes; a direct check fails in seconds.
        try:
            socket.create_connection((DOWNLOAD_HOST, 443), timeout=5).close()
        except OSError as error:
            raise _offline_error(name, f"{DOWNLOAD_HOST} unreachable: {error}") from None
        try:
            builder.download_and_prepare()
        except Exception as error:  # TFDS raises many types (network, checksum, disk)
            raise _offline_error(name, str(error).strip()[:200] or type(error).__name__) from None
    train, test = builder.as_dataset(split=["train", "test"], batch_size=-1, as_supervised=True)
    splits = [Split(resize_images(images.numpy(), image_size), labels.numpy()) for images, labels in (train, test)]
    return ImageDataset(name, builder.info.features["label"].names, *splits, source_size=32)
