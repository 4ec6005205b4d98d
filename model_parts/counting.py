"""Counting a model's cost from its layers: multiply-adds and activation sizes per image (the preflight's
estimates and the report's FLOPs), shared by both model families."""

import numpy as np
from keras import layers


def is_convolution(layer):
    """Keras' convolutions, and layers that convolve with a kernel of their own (the fast CNN's whitening)."""
    kernel = getattr(layer, "kernel", None)
    return isinstance(layer, layers.Conv2D) or (kernel is not None and len(kernel.shape) == 4)


def multiply_adds(some_layers):
    """Multiply-adds of one image through the convolutions and Dense layers among `some_layers`."""
    total = 0
    for layer in some_layers:
        if is_convolution(layer):
            height, width = layer.output.shape[1:3]
            total += height * width * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return total


def layer_outputs(some_layers):
    """Values per image in the outputs of `some_layers`."""
    return sum(int(np.prod(layer.output.shape[1:])) for layer in some_layers)
