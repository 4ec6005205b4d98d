"""tf.data input pipelines over in-memory splits: shuffle, batch, augment, prefetch."""

import functools

import numpy as np
import tensorflow as tf

from harness.augment import build_augmentation
from harness.data import Split


def _to_model_inputs(images, labels, num_classes):
    """float32 pixels in [0, 255] (the models rescale inside) and one-hot labels.

    One-hot labels let label smoothing (and later MixUp/CutMix) work on them.
    """
    return tf.cast(images, tf.float32), tf.one_hot(labels, num_classes)


def make_dataset(split: Split, num_classes, batch_size):
    """Evaluation batches in order, the last one possibly smaller. The arrays are already in memory,
    so no `cache()` is needed."""
    dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).batch(batch_size)
    return dataset.map(functools.partial(_to_model_inputs, num_classes=num_classes),
                       num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def epoch_seed(seed, epoch):
    """A seed for one epoch's shuffle and augmentation, derived from the run's seed."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def make_training_dataset(split: Split, num_classes, batch_size, epochs, seed, augmentation="none",
                          image_size=32, deterministic=True):
    """Training batches for `epochs` (a range), each epoch shuffled and augmented from its own seed.

    An epoch's batches depend only on (seed, epoch), so a run resumed at epoch k sees exactly the
    batches an uninterrupted run would. Each epoch has len(split) // batch_size full batches (at
    least one). With `deterministic`, augmentation runs sequentially, since its random layers draw
    from a stateful seed; otherwise in parallel.
    """
    steps = max(1, len(split) // batch_size)
    images, labels = tf.constant(split.images), tf.constant(split.labels)
    parallel = None if deterministic else tf.data.AUTOTUNE

    def one_epoch(epoch):
        order = np.random.default_rng(epoch_seed(seed, epoch)).permutation(len(split))[: steps * batch_size]
        dataset = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        dataset = dataset.map(lambda index: _to_model_inputs(tf.gather(images, index), tf.gather(labels, index),
                                                             num_classes))
        layers = build_augmentation(augmentation, image_size, seed=epoch_seed(seed, epoch))
        if layers is not None:
            dataset = dataset.map(lambda x, y: (layers(x, training=True), y), num_parallel_calls=parallel)
        return dataset

    epochs_data = [one_epoch(epoch) for epoch in epochs]
    return functools.reduce(lambda a, b: a.concatenate(b), epochs_data).prefetch(tf.data.AUTOTUNE)
