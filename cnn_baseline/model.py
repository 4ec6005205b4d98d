"""A pre-activation ResNet (He et al. 2016, "Identity Mappings in Deep Residual Networks"), BiT's
ResNet-v2 (`model_parts.bit`) for the presets whose architecture is "bit", or the fast CNN
(`cnn_baseline.fast_cnn`) for those whose architecture is "fast"."""

import keras
from keras import layers

from cnn_baseline.fast_cnn import fast_cnn
from cnn_baseline.presets import DEFAULT_PRESET, resolve_config
from model_parts.bit import bit_resnet
from model_parts.counting import layer_outputs, multiply_adds

WEIGHT_INIT = "he_normal"
# Keras' default BatchNorm momentum (0.99) leaves the moving statistics near their initial values
# for the first few hundred steps, which short CIFAR runs never leave; 0.9 is PyTorch's default.
BN_MOMENTUM = 0.9


def residual_block(x, filters, stride, name):
    """Pre-activation basic block: BN-ReLU-conv3x3-BN-ReLU-conv3x3, plus the shortcut.

    The shortcut is the identity, or a strided 1x1 convolution where the shape changes, written as
    "keep every `stride`-th pixel, then a 1x1 convolution": the same function and weights. (On CPUs,
    TensorFlow 2.20-2.21's oneDNN kernel for the weight gradient of a strided 1x1 convolution corrupts
    the heap for odd batch sizes with fewer than 16 input channels; see README, "Bad input".)
    """
    normalised = layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn1")(x)
    preactivated = layers.ReLU(name=f"{name}_relu1")(normalised)
    shortcut = x
    if stride != 1 or x.shape[-1] != filters:
        subsampled = preactivated
        if stride != 1:
            subsampled = layers.AveragePooling2D(1, stride, name=f"{name}_shortcut_subsample")(preactivated)
        shortcut = layers.Conv2D(
            filters, 1, use_bias=False, kernel_initializer=WEIGHT_INIT, name=f"{name}_shortcut"
        )(subsampled)
    y = layers.Conv2D(
        filters, 3, stride, padding="same", use_bias=False, kernel_initializer=WEIGHT_INIT, name=f"{name}_conv1"
    )(preactivated)
    y = layers.ReLU(name=f"{name}_relu2")(layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn2")(y))
    y = layers.Conv2D(
        filters, 3, padding="same", use_bias=False, kernel_initializer=WEIGHT_INIT, name=f"{name}_conv2"
    )(y)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def build_cnn(preset=DEFAULT_PRESET, image_size=None, num_classes=10, **overrides):
    """Builds the ResNet baseline as a `keras.Model` from a named preset.

    Takes raw RGB pixels in [0, 255], shape (B, H, W, 3), scales them to [-1, 1] exactly as the
    ViT does, and returns float32 logits (B, K).

    >>> build_cnn("resnet_test", num_classes=10).output_shape
    (None, 10)
    """
    config = resolve_config(preset, image_size, num_classes, **overrides)
    images = keras.Input((config["image_size"], config["image_size"], 3), name="images")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(images)
    if config["architecture"] == "bit":
        return keras.Model(images, bit_resnet(x, config, num_classes), name=preset)
    if config["architecture"] == "fast":
        return keras.Model(images, fast_cnn(x, config, num_classes), name=preset)
    x = layers.Conv2D(
        config["stem_width"], 3, padding="same", use_bias=False, kernel_initializer=WEIGHT_INIT, name="stem_conv"
    )(x)
    for stage, (width, blocks) in enumerate(zip(config["stage_widths"], config["blocks_per_stage"])):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            x = residual_block(x, width, stride, name=f"stage{stage}_block{block}")
    x = layers.ReLU(name="head_relu")(layers.BatchNormalization(momentum=BN_MOMENTUM, name="head_bn")(x))
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    logits = layers.Dense(num_classes, dtype="float32", name="head")(x)
    return keras.Model(images, logits, name=preset)


def flops_per_image(model):
    """Forward-pass FLOPs of one image (2 per multiply-add) of the convolutions and the head.

    Norms, activations and pooling are left out, as is usual. resnet20: 40.8 M multiply-adds.
    """
    return 2 * multiply_adds(model.layers)


def activations_per_image(model):
    """About how many values training keeps per image for the backward pass (for memory planning):
    the outputs of every layer (convolutions, BatchNorm, ReLU, sums). An estimate."""
    return layer_outputs(model.layers[1:])


def parameter_breakdown(model):
    """Parameter counts per component: stem (BiT: root), residual stages, head (final norm and classifier)."""
    groups = {"stem": 0, "stages": 0, "head": 0}
    for layer in model.layers:
        group = layer.name.split("_")[0]
        group = {"conv": "stem", "root": "stem"}.get(group, "stages" if group.startswith(("stage", "block")) else group)
        if group in groups:
            groups[group] += layer.count_params()
    return groups
