"""The hybrid architecture (paper section 3.1): a CNN's feature map, cut into 1x1 "patches", is
the input sequence of the ViT. The CNN is the authors' ResNet, or (our departure, for short budgets) the
fast CNN's whitening and conv groups (`conv_stem`).

The ResNet is the authors' (`vit_jax/models_resnet.py`): BiT's GroupNorm and weight-standardised
convolutions (`model_parts.bit`), but post-activation bottleneck units with "same" padding, a
7x7/2 root convolution, GroupNorm, ReLU and a 3x3/2 max-pool. The released R50+ViT-B/16 keeps
stages 1-3 of ResNet-50 with stage 3 extended to 9 units (appendix B/D): a total stride of 16.
"""

from keras import layers

from model_parts.bit import GROUPS, StandardizedConv2D, group_norm
from model_parts.fast_conv import PatchWhitening, conv_group

GN_EPSILON = 1e-6  # Flax's GroupNorm default, which the authors' hybrid uses
WS_EPSILON = 1e-5  # added to the kernel's standard deviation, as `models_resnet.weight_standardize`


def hybrid_conv(filters, kernel_size, strides=1, name=None):
    return StandardizedConv2D(filters, kernel_size, strides, padding="same", use_bias=False, epsilon=WS_EPSILON,
                              epsilon_inside_sqrt=False, name=name)


def conv_norm(x, filters, kernel_size, strides, name, suffix, gamma_initializer="ones"):
    """A weight-standardised convolution and its GroupNorm, named as the authors' conv{suffix}, gn{suffix}."""
    x = hybrid_conv(filters, kernel_size, strides, f"{name}_conv{suffix}")(x)
    return layers.GroupNormalization(GROUPS, epsilon=GN_EPSILON, gamma_initializer=gamma_initializer,
                                     name=f"{name}_gn{suffix}")(x)


def residual_unit(x, mid_width, stride, name):
    """Post-activation bottleneck: conv1x1-GN-ReLU, conv3x3 (stride)-GN-ReLU, conv1x1 (4x)-GN, added to
    the shortcut (a 1x1 projection and GN where the shape changes), then ReLU. The last GN's scale
    starts at zero, so every unit starts as its shortcut."""
    out_width = 4 * mid_width
    shortcut = x
    if stride != 1 or x.shape[-1] != out_width:
        shortcut = conv_norm(x, out_width, 1, stride, name, "_proj")
    y = layers.ReLU(name=f"{name}_relu1")(conv_norm(x, mid_width, 1, 1, name, "1"))
    y = layers.ReLU(name=f"{name}_relu2")(conv_norm(y, mid_width, 3, stride, name, "2"))
    y = conv_norm(y, out_width, 1, 1, name, "3", gamma_initializer="zeros")
    return layers.ReLU(name=f"{name}_relu3")(layers.Add(name=f"{name}_add")([shortcut, y]))


def resnet_stem(x, width, blocks):
    """The hybrid's ResNet on [-1, 1] images: root (stride 4), then one stage per entry of `blocks`
    (units per stage), of mid width width * 2^(s-1), every stage after the first with stride 2."""
    x = hybrid_conv(width, 7, 2, "conv_root")(x)
    x = layers.ReLU(name="root_relu")(group_norm("gn_root", GN_EPSILON)(x))
    x = layers.MaxPooling2D(3, 2, padding="same", name="root_pool")(x)
    for stage, units in enumerate(blocks):
        for unit in range(units):
            stride = 2 if stage > 0 and unit == 0 else 1
            x = residual_unit(x, width * 2**stage, stride, name=f"block{stage + 1}_unit{unit + 1}")
    return x


def conv_stem(x, widths):
    """The fast CNN's stem on [-1, 1] images (`model_parts.fast_conv`): patch whitening ("same" padding, so
    the map keeps its size), GELU, then one conv group per entry of `widths`, each halving the map."""
    x = PatchWhitening(padding="same", name="stem_whitening")(x)
    x = layers.Activation("gelu", name="stem_gelu")(x)
    for index, width in enumerate(widths):
        x = conv_group(x, width, name=f"stem_group{index}")
    return x


STEM_PREFIXES = ("conv_root", "gn_root", "root_", "block", "stem_")


def stem_layers(model):
    """The layers of a hybrid's ResNet stem (none for a plain ViT)."""
    return [layer for layer in model.layers if layer.name.startswith(STEM_PREFIXES)]
