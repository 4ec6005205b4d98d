"""Big Transfer's ResNet (Kolesnikov et al. 2020): GroupNorm and weight-standardised convolutions.

Two ResNets of the ViT paper are built from these pieces: BiT's pre-activation ResNet-v2 (the
paper's "ResNet (BiT)" baseline, `bit_resnet`, a `cnn_baseline` preset) and the post-activation ResNet
stem of the hybrid (`vit_tf.hybrid`); so they live here, below both model packages. Layer names
follow the authors' checkpoint keys (`block1_unit01_conv1` for
`block1/unit01/a/...`), so the loaders can find every weight by name.
"""

import keras
from keras import layers, ops

GROUPS = 32  # GroupNorm groups in both authors' code


# Registered under its first home's name, which saved models record: those files still load.
@keras.saving.register_keras_serializable(package="cnn_baseline")
class StandardizedConv2D(layers.Conv2D):
    """A convolution whose kernel is standardised before use (weight standardisation, Qiao et al. 2019).

    Each output filter's kernel is shifted to zero mean and scaled to unit variance over its
    (height, width, input channel) entries. The two authors' codebases differ in where epsilon goes:
    BiT divides by sqrt(var + epsilon) (epsilon 1e-10), the ViT hybrid by std + epsilon (1e-5).
    """

    def __init__(self, *args, epsilon=1e-10, epsilon_inside_sqrt=True, **kwargs):
        super().__init__(*args, **kwargs)
        self.epsilon, self.epsilon_inside_sqrt = epsilon, epsilon_inside_sqrt

    def convolution_op(self, inputs, kernel):
        kernel = ops.cast(kernel, "float32")  # the statistics in float32, also under mixed precision
        mean = ops.mean(kernel, axis=(0, 1, 2), keepdims=True)
        variance = ops.mean(ops.square(kernel - mean), axis=(0, 1, 2), keepdims=True)
        scale = (ops.sqrt(variance + self.epsilon) if self.epsilon_inside_sqrt
                 else ops.sqrt(variance) + self.epsilon)
        return super().convolution_op(inputs, ops.cast((kernel - mean) / scale, inputs.dtype))

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "epsilon_inside_sqrt": self.epsilon_inside_sqrt}


def bit_conv(filters, kernel_size, strides=1, name=None):
    """BiT's convolution: weight-standardised, no bias, explicit padding (the caller pads)."""
    return StandardizedConv2D(filters, kernel_size, strides, padding="valid", use_bias=False, name=name)


def group_norm(name, epsilon=1e-5):
    """GroupNorm with 32 groups (BiT: epsilon 1e-5; Flax's default in the ViT hybrid: 1e-6)."""
    return layers.GroupNormalization(GROUPS, epsilon=epsilon, name=name)


def fixed_padding(x, kernel_size, name):
    """Pads (k - 1) // 2 before and the rest after, as BiT does before its 'valid' convolutions."""
    total = kernel_size - 1
    return layers.ZeroPadding2D(((total // 2, total - total // 2),) * 2, name=name)(x)


def bit_unit(x, mid_width, stride, name):
    """BiT's pre-activation bottleneck unit: GN-ReLU-conv1x1, GN-ReLU-conv3x3 (stride), GN-ReLU-conv1x1
    (4x mid_width), plus the shortcut: the identity, or a strided 1x1 projection of the pre-activated
    input where the shape changes."""
    out_width = 4 * mid_width
    preactivated = layers.ReLU(name=f"{name}_relu1")(group_norm(f"{name}_gn1")(x))
    shortcut = x
    if stride != 1 or x.shape[-1] != out_width:
        shortcut = bit_conv(out_width, 1, stride, name=f"{name}_conv_proj")(preactivated)
    y = bit_conv(mid_width, 1, name=f"{name}_conv1")(preactivated)
    y = layers.ReLU(name=f"{name}_relu2")(group_norm(f"{name}_gn2")(y))
    y = bit_conv(mid_width, 3, stride, name=f"{name}_conv2")(fixed_padding(y, 3, f"{name}_pad2"))
    y = layers.ReLU(name=f"{name}_relu3")(group_norm(f"{name}_gn3")(y))
    y = bit_conv(out_width, 1, name=f"{name}_conv3")(y)
    return layers.Add(name=f"{name}_add")([y, shortcut])


def bit_resnet(x, config, num_classes):
    """BiT ResNet-v2 from the [-1, 1] images `x` to float32 logits.

    Root: 7x7/2 conv and 3x3/2 max-pool (zero padding, as BiT); stage s (from 1) has units of
    mid width root_width * 2^(s-1) and output 4x that, the first unit of every stage after the first
    with stride 2; then GN-ReLU, global average pooling and a zero-initialised linear head.
    """
    width = config["root_width"]
    x = bit_conv(width, 7, 2, name="conv_root")(fixed_padding(x, 7, "root_pad"))
    x = layers.MaxPooling2D(3, 2, name="root_pool")(fixed_padding(x, 3, "root_pool_pad"))
    for stage, units in enumerate(config["blocks_per_stage"]):
        for unit in range(units):
            stride = 2 if stage > 0 and unit == 0 else 1
            x = bit_unit(x, width * 2**stage, stride, name=f"block{stage + 1}_unit{unit + 1:02d}")
    x = layers.ReLU(name="head_relu")(group_norm("head_gn")(x))
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    return layers.Dense(num_classes, kernel_initializer="zeros", dtype="float32", name="head")(x)
