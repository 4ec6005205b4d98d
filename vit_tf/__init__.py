"""The Vision Transformer (Dosovitskiy et al., 2020) as Keras 3 layers, one per idea of the paper.

Uses Keras only (keras.ops in every layer, so any backend); never imports the harness.

    import vit_tf
    model = vit_tf.build_vit("vit_cifar_tiny", image_size=32, num_classes=10)
"""

import importlib
import sys

from vit_tf.presets import DEFAULT_PRESET, HYBRID_PRESETS, PRESETS, resolve_config  # plain data: no Keras

# The rest needs Keras, which takes seconds to import, so it loads on first use (PEP 562): the
# command lines can list the presets in --help and check options without it.
_LAZY = {
    **dict.fromkeys(["build_vit", "encoder_outputs", "flops_per_image", "activations_per_image", "parameter_breakdown",
                     "prefix_tokens"], "vit_tf.model"),
    **dict.fromkeys(["extract_patches", "PatchEmbedding", "ClassToken", "PositionEmbedding", "MultiHeadSelfAttention",
                     "MlpBlock", "EncoderBlock", "TokenPooling", "DistillationToken", "HeadFusion"], "vit_tf.layers"),
    **dict.fromkeys(["load_pretrained", "check_compatible", "CheckpointError", "interpolate_grid"],
                    "vit_tf.checkpoint"),
    "adapt_to_data": "model_parts.fast_conv",  # a conv-stem hybrid's whitening, computed from training images
}

__all__ = ["PRESETS", "HYBRID_PRESETS", "DEFAULT_PRESET", "resolve_config", *_LAZY]


if "keras" in sys.modules:  # Keras is loaded anyway: register the layers now, so saved models load at once
    importlib.import_module("vit_tf.layers")
    importlib.import_module("model_parts.bit")  # the hybrid stem's weight-standardised convolution
    importlib.import_module("model_parts.fast_conv")  # the conv stem's whitening and boosted biases


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'vit_tf' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
