"""The CNN baseline: pre-activation ResNets for the ViT comparison, with the conventions of `vit_tf`.

Uses Keras only; never imports the harness.

    import cnn_baseline
    model = cnn_baseline.build_cnn("resnet20", num_classes=10)
"""

from cnn_baseline.model import build_cnn, flops_per_image, parameter_breakdown, resolve_config
from cnn_baseline.presets import DEFAULT_PRESET, PRESETS

__all__ = ["PRESETS", "DEFAULT_PRESET", "build_cnn", "resolve_config", "parameter_breakdown", "flops_per_image"]
