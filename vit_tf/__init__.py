"""The Vision Transformer (Dosovitskiy et al., 2020) as Keras 3 layers, one per idea of the paper.

Uses Keras only (keras.ops in every layer, so any backend); never imports the harness.

    import vit_tf
    model = vit_tf.build_vit("vit_cifar_tiny", image_size=32, num_classes=10)
"""

from vit_tf.layers import (
    ClassToken,
    EncoderBlock,
    MlpBlock,
    MultiHeadSelfAttention,
    PatchEmbedding,
    PositionEmbedding,
    TokenPooling,
    extract_patches,
)
from vit_tf.model import build_vit, encoder_outputs, flops_per_image, parameter_breakdown, resolve_config
from vit_tf.presets import DEFAULT_PRESET, PRESETS

__all__ = [
    "PRESETS",
    "DEFAULT_PRESET",
    "build_vit",
    "resolve_config",
    "encoder_outputs",
    "parameter_breakdown",
    "flops_per_image",
    "extract_patches",
    "PatchEmbedding",
    "ClassToken",
    "PositionEmbedding",
    "MultiHeadSelfAttention",
    "MlpBlock",
    "EncoderBlock",
    "TokenPooling",
]
