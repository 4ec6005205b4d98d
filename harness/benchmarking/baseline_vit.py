"""The yardstick for our ViT's speed: a straightforward Keras ViT of the same size.

Written the way a tutorial writes one: stock `keras.layers.MultiHeadAttention`, a Dense patch
projection, float32, no XLA, and augmentation in a tf.data `map` on the CPU (Keras'
RandomTranslation and RandomFlip; where TensorFlow is missing, the same layers on the CPU in a
Python input pipeline). Only `benchmark.py --side-by-side` uses it.
"""

import keras
import numpy as np
from keras import layers, ops

from harness.training import inputs


class Patches(layers.Layer):
    def __init__(self, patch_size, **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size

    def call(self, images):
        patches = ops.image.extract_patches(images, self.patch_size)  # (B, rows, cols, P*P*C)
        return ops.reshape(patches, (-1, patches.shape[1] * patches.shape[2], patches.shape[3]))


class AddClassTokenAndPositions(layers.Layer):
    def build(self, input_shape):
        self.class_token = self.add_weight(shape=(1, 1, input_shape[-1]), initializer="zeros")
        self.positions = self.add_weight(shape=(1, input_shape[1] + 1, input_shape[-1]), initializer="random_normal")

    def call(self, tokens):
        class_tokens = ops.broadcast_to(self.class_token, (ops.shape(tokens)[0], 1, tokens.shape[-1]))
        return ops.concatenate([class_tokens, tokens], axis=1) + self.positions


def build_baseline_vit(patch_size, hidden_dim, num_layers, mlp_dim, num_heads, image_size, num_classes):
    images = keras.Input((image_size, image_size, 3))
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(images)
    x = layers.Dense(hidden_dim)(Patches(patch_size)(x))
    x = AddClassTokenAndPositions()(x)
    for _ in range(num_layers):
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.MultiHeadAttention(num_heads, hidden_dim // num_heads)(y, y)
        x = layers.Add()([x, y])
        y = layers.LayerNormalization(epsilon=1e-6)(x)
        y = layers.Dense(mlp_dim, activation="gelu")(y)
        x = layers.Add()([x, layers.Dense(hidden_dim)(y)])
    x = layers.LayerNormalization(epsilon=1e-6)(x)
    logits = layers.Dense(num_classes)(x[:, 0])
    return keras.Model(images, logits, name="baseline_vit")


def cpu_augmentation(seed):
    return keras.layers.Pipeline([layers.RandomTranslation(0.125, 0.125, fill_mode="constant", seed=seed),
                                  layers.RandomFlip("horizontal", seed=seed)])


class CpuAugmentedBatches(keras.utils.PyDataset):
    """Where TensorFlow is missing: the same augmentation, on the CPU, in a Python input pipeline."""

    def __init__(self, split, num_classes, batch_size, seed):
        super().__init__()
        self.split, self.num_classes, self.batch_size = split, num_classes, batch_size
        self.augment = cpu_augmentation(seed)
        self.rng = np.random.default_rng(seed)

    def __len__(self):
        return len(self.split) // self.batch_size

    def __getitem__(self, index):
        chosen = self.rng.choice(len(self.split), self.batch_size, replace=False)
        with keras.device("cpu:0"):
            images = ops.convert_to_numpy(self.augment(self.split.images[chosen].astype("float32"), training=True))
        return images, np.eye(self.num_classes, dtype="float32")[self.split.labels[chosen]]


def baseline_training_data(split, num_classes, batch_size, seed):
    """Shuffled batches augmented on the CPU: in tf.data on the TensorFlow backend, else in Python."""
    if not inputs.on_tensorflow_backend():
        return CpuAugmentedBatches(split, num_classes, batch_size, seed)
    import tensorflow as tf

    from harness.training.tf_pipeline import without_autotune

    augment = cpu_augmentation(seed)
    dataset = tf.data.Dataset.from_tensor_slices((split.images, split.labels)).shuffle(len(split), seed=seed)
    dataset = dataset.repeat().batch(batch_size, drop_remainder=True)
    dataset = dataset.map(lambda x, y: (augment(tf.cast(x, tf.float32), training=True), tf.one_hot(y, num_classes)),
                          num_parallel_calls=tf.data.AUTOTUNE)
    # without the autotuner, as ours: its teardown wait would be timed with every fit (tf_pipeline.without_autotune)
    return without_autotune(dataset.prefetch(tf.data.AUTOTUNE))
