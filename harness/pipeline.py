"""tf.data input pipelines over in-memory splits: shuffle, batch, augment, prefetch."""

import tensorflow as tf

from harness.data import Split


def make_dataset(split: Split, num_classes, batch_size, training=False, augmentation=None, seed=None):
    """Batches of (float32 pixels in [0, 255], one-hot labels); the models rescale inside.

    Labels are one-hot so label smoothing (and later MixUp/CutMix) work on them. The arrays are
    already in memory, so no `cache()` is needed. Training batches are shuffled every epoch and the
    last partial batch is dropped, so every step has the same shape.
    """
    dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels))
    if training:
        dataset = dataset.shuffle(len(split), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=training and len(split) >= batch_size)
    dataset = dataset.map(
        lambda images, labels: (tf.cast(images, tf.float32), tf.one_hot(labels, num_classes)),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if training and augmentation is not None:
        dataset = dataset.map(
            lambda images, labels: (augmentation(images, training=True), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)
