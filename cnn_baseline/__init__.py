"""A pre-activation ResNet baseline for the ViT comparison, same conventions as `vit_tf`.

    import cnn_baseline
    model = cnn_baseline.build_cnn("resnet20", num_classes=10)
"""

from cnn_baseline.model import build_cnn, parameter_breakdown, resolve_config
from cnn_baseline.presets import DEFAULT_PRESET, PRESETS

__all__ = ["PRESETS", "DEFAULT_PRESET", "build_cnn", "resolve_config", "parameter_breakdown"]
