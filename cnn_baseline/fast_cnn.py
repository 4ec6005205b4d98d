"""A CNN built to reach high CIFAR-10 accuracy in few epochs, after airbench (Jordan 2024, "94% on CIFAR-10
in 3.29 seconds on a single GPU") and Page's ResNet-9 (2018): the presets whose architecture is "fast".

    pixels -> PatchWhitening (frozen 2x2 conv, 2 * 3 * 2 * 2 = 24 channels) -> GELU
           -> three conv groups: conv3x3 -> max-pool 2 -> BatchNorm -> GELU -> conv3x3 -> BatchNorm -> GELU
           -> global max-pool -> Dense (no bias) x 1/9

The whitening, the Dirac start and the (optionally boosted) BatchNorm biases are `model_parts.fast_conv`'s;
the head's logits are scaled by 1/9 (`HEAD_SCALE`), so the first steps do not saturate the softmax.
"""

from keras import layers

from model_parts.fast_conv import WHITENING_PATCH, PatchWhitening, conv_group

HEAD_SCALE = 1 / 9


def fast_cnn(x, config, num_classes):
    """The logits of the fast CNN for preprocessed images `x` (see the module docstring). The columns
    `whitening`, `dirac` and `bias_boost` switch a trick for the ablation presets: a learned 2x2
    convolution of the same shape, PyTorch's default initialisation, airbench's boosted biases."""
    if config["whitening"]:
        x = PatchWhitening(name="stem_whitening")(x)
    else:
        x = layers.Conv2D(2 * WHITENING_PATCH ** 2 * 3, WHITENING_PATCH, name="stem_conv")(x)
    x = layers.Activation("gelu", name="stem_gelu")(x)
    for stage, width in enumerate(config["stage_widths"]):
        x = conv_group(x, width, name=f"stage{stage}", dirac=config["dirac"], bias_boost=config["bias_boost"])
    x = layers.GlobalMaxPooling2D(name="head_pool")(x)
    logits = layers.Dense(num_classes, use_bias=False, dtype="float32", name="head")(x)
    return layers.Rescaling(HEAD_SCALE, dtype="float32", name="head_scale")(logits)


