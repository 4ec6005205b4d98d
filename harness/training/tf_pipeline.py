"""tf.data input pipelines over in-memory splits: shuffle, batch, mix, prefetch (TensorFlow present)."""

import functools

import numpy as np
import tensorflow as tf

from harness.data import Split
from harness.training.augment import build_mixing
from harness.training.seeding import epoch_order, epoch_seed


def _to_model_inputs(images, labels, num_classes):
    """float32 pixels in [0, 255] (the models rescale inside) and one-hot labels (for smoothing and mixing)."""
    return tf.cast(images, tf.float32), tf.one_hot(labels, num_classes)


def without_autotune(dataset):
    """`dataset` without tf.data's autotuner. Its thread sleeps 10, 20, 40, ... ms between rounds, and deleting
    an iterator (at the end of every fit, evaluation and validation) waits for the next round: measured with
    TensorFlow 2.21 on a CPU, a 2.5 s evaluation often took 5.1 s and a 12 s fit 20.5 s. Our batches come from
    memory, so there is little to tune: without it both run at their own speed."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def make_dataset(split: Split, num_classes, batch_size, multiple=1):
    """Evaluation batches in order, the last one possibly smaller. The arrays are already in memory,
    so no `cache()` is needed.

    With `multiple` > 1 (data parallelism: tf.distribute splits each batch across the devices, and a
    device left without images breaks BatchNorm), the last batch is padded with copies of the last
    image, weighted 0, so that it splits evenly; the metrics count only the real images.
    """
    if multiple == 1:
        dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).batch(batch_size)
        return without_autotune(dataset.map(functools.partial(_to_model_inputs, num_classes=num_classes),
                                            num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))
    padding = -(len(split) % batch_size) % multiple
    real = tf.data.Dataset.from_tensor_slices((split.images, split.labels, np.ones(len(split), np.float32)))
    copies = tf.data.Dataset.from_tensor_slices((np.repeat(split.images[-1:], padding, axis=0),
                                                 np.repeat(split.labels[-1:], padding), np.zeros(padding, np.float32)))

    def weighted(images, labels, weights):
        return (*_to_model_inputs(images, labels, num_classes), weights)

    return without_autotune(real.concatenate(copies).batch(batch_size).map(
        weighted, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE))


def mix(mixer, images, labels):
    mixed = mixer({"images": images, "labels": labels})
    return mixed["images"], mixed["labels"]


def make_training_dataset(split: Split, num_classes, batch_size, epochs, seed, mixing="none", mixing_alpha=1.0,
                          deterministic=True):
    """Training batches for `epochs` (a range), each epoch shuffled (and mixed) from its own seed.

    An epoch's batches depend only on (seed, epoch), so a run resumed at epoch k sees exactly the
    batches an uninterrupted run would. Each epoch has len(split) // batch_size full batches (at
    least one). Per-image augmentation is not here: it runs inside the training model
    (`harness.training.augment`). With `deterministic`, mixing runs sequentially, since its layer draws from a
    stateful seed; otherwise in parallel.
    """
    images, labels = tf.constant(split.images), tf.constant(split.labels)
    parallel = None if deterministic else tf.data.AUTOTUNE

    def one_epoch(epoch):
        order = epoch_order(len(split), batch_size, seed, epoch)
        dataset = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        dataset = dataset.map(lambda index: _to_model_inputs(tf.gather(images, index), tf.gather(labels, index),
                                                             num_classes), num_parallel_calls=parallel)
        mixer = build_mixing(mixing, mixing_alpha, seed=epoch_seed(seed, epoch))
        if mixer is not None:
            dataset = dataset.map(functools.partial(mix, mixer), num_parallel_calls=parallel)
        return dataset

    epochs_data = [one_epoch(epoch) for epoch in epochs]
    return without_autotune(functools.reduce(lambda a, b: a.concatenate(b), epochs_data).prefetch(tf.data.AUTOTUNE))
