"""Training-time augmentation as Keras preprocessing layers.

Keras preprocessing layers run inside tf.data on every backend and can also sit inside a model,
so the same augmentation can later move onto the accelerator unchanged.
"""

import keras
from keras import layers

AUGMENTATIONS = ("crop_flip", "none")


def build_augmentation(name, image_size, seed=None):
    """A `keras.layers.Pipeline` of random layers, or None for "none".

    A Pipeline (unlike `keras.Sequential`) runs its layers with TensorFlow ops inside tf.data
    whatever the Keras backend, and with the backend's ops inside a model.

    "crop_flip" is the standard CIFAR augmentation: a random shift of up to 4 pixels (1/8 of the
    side) with zero fill, the same as zero-padding by 4 and cropping back, and a horizontal flip.
    """
    if name == "none":
        return None
    if name != "crop_flip":
        raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")
    shift = 4 / 32
    return keras.layers.Pipeline(
        [
            layers.RandomTranslation(shift, shift, fill_mode="constant", interpolation="nearest", seed=seed),
            layers.RandomFlip("horizontal", seed=seed),
        ],
        name="augmentation",
    )
