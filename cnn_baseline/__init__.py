"""The CNN baselines: pre-activation ResNets, BiT's ResNet-v2 and a fast CNN for the ViT comparison, with the
conventions of `vit_tf`.

Uses Keras only; never imports the harness.

    import cnn_baseline
    model = cnn_baseline.build_cnn("resnet20", num_classes=10)
"""

import importlib
import sys

from cnn_baseline.presets import DEFAULT_PRESET, PRESETS, resolve_config  # plain data: no Keras

_LAZY = {  # these need Keras
    **dict.fromkeys(["build_cnn", "flops_per_image", "activations_per_image", "parameter_breakdown"],
                    "cnn_baseline.model"),
    **dict.fromkeys(["load_pretrained", "check_compatible"], "cnn_baseline.checkpoint"),  # BiT's released files
    "adapt_to_data": "model_parts.fast_conv",  # the fast CNN's whitening, computed from training images
}

__all__ = ["PRESETS", "DEFAULT_PRESET", "resolve_config", *_LAZY]

if "keras" in sys.modules:  # Keras is loaded anyway: register BiT's and the fast CNN's layers now, so saved
    importlib.import_module("model_parts.bit")  # models load at once
    importlib.import_module("model_parts.fast_conv")


def __getattr__(name):  # PEP 562: Keras loads on first use, as in vit_tf
    if name not in _LAZY:
        raise AttributeError(f"module 'cnn_baseline' has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name]), name)
