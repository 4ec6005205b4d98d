"""The fast CNN's building blocks (airbench, Jordan 2024; Page's ResNet-9, 2018), shared by the fast CNN
(`cnn_baseline.fast_cnn`) and the hybrid's convolutional stem (`vit_tf.hybrid`). Each trick is a layer or an
initialiser, so the Keras optimizer and training loop stay the usual ones:

- `PatchWhitening`: the first convolution is fixed to whiten 2x2 patches (its filters come from the
  eigenvectors of the training patches' covariance, `adapt`), so the network starts on decorrelated input.
- `Dirac`: each 3x3 convolution starts as an identity on its first channels (an implicit residual path).
- BatchNorm with its scale frozen at 1 and a `BoostedBias` after it, which can make the bias learn faster
  (airbench: 64 times; measured here, it did not help, so the presets leave it at 1).

Uses Keras and numpy only.
"""

import keras
import numpy as np
from keras import layers, ops

WHITENING_PATCH = 2
WHITENING_EPSILON = 5e-4  # added to each eigenvalue: the faintest directions are not blown up to unit size
WHITENING_IMAGES = 5000  # training images whose patches give the whitening (airbench's count)
BN_MOMENTUM = 0.6  # short runs: the moving statistics follow the fast-changing weights closely
BIAS_BOOST = 8.0  # airbench's: the bias is 8 x its variable, so SGD moves it 64 times faster than other weights


@keras.saving.register_keras_serializable(package="model_parts")
class PatchWhitening(layers.Layer):
    """A frozen `patch_size` x `patch_size` convolution whose 2 x P²C filters whiten the input's patches.

    (B, H, W, C) -> (B, H - P + 1, W - P + 1, 2 P² C); with padding "same", (B, H, W, 2 P² C), the last row
    and column of patches reaching into zeros. `adapt(images)` sets the filters to the
    eigenvectors of the patch covariance divided by sqrt(eigenvalue + epsilon), each with its negative
    (so a ReLU-like activation after it loses nothing), and the bias to minus the filtered mean patch:
    on the adapted images every output channel has mean 0 and variance about 1. The bias keeps learning.
    """

    def __init__(self, patch_size=WHITENING_PATCH, epsilon=WHITENING_EPSILON, padding="valid", **kwargs):
        super().__init__(**kwargs)
        self.patch_size = patch_size
        self.epsilon = epsilon
        self.padding = padding

    def build(self, input_shape):
        patch_values = self.patch_size ** 2 * input_shape[-1]
        self.kernel = self.add_weight(shape=(self.patch_size, self.patch_size, input_shape[-1], 2 * patch_values),
                                      initializer="zeros", trainable=False, name="kernel")
        self.bias = self.add_weight(shape=(2 * patch_values,), initializer="zeros", name="bias")

    def adapt(self, images):
        """Sets the filters from `images` (N, H, W, C), a NumPy array as this layer receives them."""
        images = np.asarray(images, dtype=np.float64)
        windows = np.lib.stride_tricks.sliding_window_view(images, (self.patch_size, self.patch_size), axis=(1, 2))
        # (N, H', W', C, P, P) -> one row per patch in the kernel's (P, P, C) order
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, self.patch_size ** 2 * images.shape[-1])
        mean = patches.mean(axis=0)
        eigenvalues, eigenvectors = np.linalg.eigh(np.cov(patches, rowvar=False))
        filters = eigenvectors / np.sqrt(eigenvalues + self.epsilon)  # one whitening filter per column
        filters = np.concatenate([filters, -filters], axis=1)
        self.kernel.assign(filters.reshape(self.kernel.shape).astype("float32"))
        self.bias.assign((-mean @ filters).astype("float32"))

    def call(self, images):
        kernel = ops.cast(self.kernel, images.dtype)
        return ops.conv(images, kernel, padding=self.padding) + ops.cast(self.bias, images.dtype)

    def compute_output_shape(self, input_shape):
        shrink = self.patch_size - 1 if self.padding == "valid" else 0
        size = [None if side is None else side - shrink for side in input_shape[1:3]]
        return (input_shape[0], *size, 2 * self.patch_size ** 2 * input_shape[-1])

    def get_config(self):
        return {**super().get_config(), "patch_size": self.patch_size, "epsilon": self.epsilon,
                "padding": self.padding}


@keras.saving.register_keras_serializable(package="model_parts")
class BoostedBias(layers.Layer):
    """Adds a per-channel bias stored divided by `boost`: y = x + boost * b.

    The function is a plain bias; the gradient of b is `boost` times the bias's, and an SGD step on b moves
    the bias boost² times as far. With boost 8 that is airbench's 64x learning rate for BatchNorm biases,
    with no optimizer of our own.
    """

    def __init__(self, boost=BIAS_BOOST, **kwargs):
        super().__init__(**kwargs)
        self.boost = boost

    def build(self, input_shape):
        self.bias = self.add_weight(shape=(input_shape[-1],), initializer="zeros", name="bias")

    def call(self, inputs):
        return inputs + ops.cast(self.boost * self.bias, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "boost": self.boost}


@keras.saving.register_keras_serializable(package="model_parts")
class Dirac(keras.initializers.Initializer):
    """A convolution kernel (k, k, C_in, C_out) whose first min(C_in, C_out) filters pass their input channel
    through unchanged (a one at the centre); the other filters get PyTorch's default, uniform within
    ±1/sqrt(fan_in). The layer starts as part identity, part random features."""

    def __call__(self, shape, dtype=None):
        size, _, channels_in, channels_out = shape
        random = keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")(shape, dtype)
        identity = np.zeros(shape, dtype="float32")
        kept = min(channels_in, channels_out)
        identity[size // 2, size // 2, np.arange(kept), np.arange(kept)] = 1.0
        passes = np.zeros(shape, dtype=bool)
        passes[..., :kept] = True
        return ops.where(passes, ops.cast(identity, random.dtype), random)


def conv_group(x, width, name, dirac=True, bias_boost=1.0):
    """conv3x3 -> max-pool 2 -> BatchNorm -> GELU -> conv3x3 -> BatchNorm -> GELU: halves the resolution.
    `dirac=False` starts the convolutions at random; `bias_boost` (airbench: BIAS_BOOST) speeds up the
    BatchNorm biases, which the recipes leave at 1 (a plain bias; docs/training.md)."""
    initializer = Dirac() if dirac else keras.initializers.VarianceScaling(1 / 3, "fan_in", "uniform")
    for index in (1, 2):
        x = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_initializer=initializer,
                          name=f"{name}_conv{index}")(x)
        if index == 1:
            x = layers.MaxPooling2D(2, name=f"{name}_pool")(x)
        x = layers.BatchNormalization(momentum=BN_MOMENTUM, scale=False, center=False, name=f"{name}_bn{index}")(x)
        x = BoostedBias(bias_boost, name=f"{name}_bias{index}")(x)
        x = layers.Activation("gelu", name=f"{name}_gelu{index}")(x)
    return x


def adapt_to_data(model, images):
    """Fits every `PatchWhitening` of `model` to what it sees of `images` (N, H, W, 3, raw pixels): up to
    WHITENING_IMAGES of them, evenly spaced, so a split sorted by class gives every class its share. Call it
    once, before training; a model without one is left as it is."""
    sample = np.asarray(images[::max(1, len(images) // WHITENING_IMAGES)][:WHITENING_IMAGES], dtype="float32")
    for layer in model.layers:
        if isinstance(layer, PatchWhitening):
            layer.adapt(ops.convert_to_numpy(keras.Model(model.inputs, layer.input)([sample])))
