"""Test-time augmentation: a model's logits averaged over mirrored and shifted copies of each image.

The views and weights are airbench's (Jordan 2024): half the weight on the image and its mirror, half on
the image moved one pixel diagonally each way (edges reflected), each with its mirror. The views match
the training augmentation (flips and small shifts), so each is an image the model has learned to read.
A report always gives the plain accuracy beside this one.
"""

import keras
from keras import ops

# (rows and columns moved, weight): the image, then one pixel up-left and one down-right; each with its mirror
VIEWS = ((0, 0.5), (1, 0.25), (-1, 0.25))


def shifted(images, pixels):
    """`images` (B, H, W, C) moved `pixels` down and right (up and left if negative), edges reflected."""
    if pixels == 0:
        return images
    size = abs(pixels)
    padded = ops.pad(images, [[0, 0], [size, size], [size, size], [0, 0]], mode="reflect")
    start = size - pixels
    return padded[:, start:start + images.shape[1], start:start + images.shape[2], :]


def with_test_time_augmentation(model):
    """A model of `model`'s inputs and outputs whose logits are the weighted mean over the VIEWS, each view
    averaged with its mirror image. It shares `model`'s weights; it is for evaluation, never saved."""
    images = keras.Input(model.input_shape[1:], name="images")
    logits = 0
    for pixels, weight in VIEWS:
        view = shifted(images, pixels)
        logits = logits + weight / 2 * (model(view) + model(ops.flip(view, axis=2)))
    return keras.Model(images, logits, name=f"{model.name}_test_time_augmented")
