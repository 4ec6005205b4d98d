"""Named pre-activation ResNet sizes for 32x32 inputs, one row each.

Columns: stem_width (channels of the first 3x3 convolution), stage_widths (channels per stage;
every stage after the first halves the resolution), blocks_per_stage (basic residual blocks).
`resolve_config` gives a preset's settings after overrides, validated. Plain data: no Keras here.
"""

PRESETS = {
    # For unit tests only.
    "resnet_test": dict(stem_width=8, stage_widths=(8, 16), blocks_per_stage=(1, 1)),
    # CIFAR ResNets of He et al. (2016, section 4.2): depth 6n + 2 with n blocks per stage,
    # here in the pre-activation form of He et al. (2016b). resnet8 is our CPU quickstart size.
    "resnet8": dict(stem_width=16, stage_widths=(16, 32, 64), blocks_per_stage=(1, 1, 1)),
    "resnet20": dict(stem_width=16, stage_widths=(16, 32, 64), blocks_per_stage=(3, 3, 3)),
    "resnet56": dict(stem_width=16, stage_widths=(16, 32, 64), blocks_per_stage=(9, 9, 9)),
    # ResNet-18 widths (64-512) with a 3x3 stem and no max-pool, the common CIFAR adaptation.
    "preact_resnet18": dict(stem_width=64, stage_widths=(64, 128, 256, 512), blocks_per_stage=(2, 2, 2, 2)),
}
DEFAULT_PRESET = "resnet20"
DEFAULT_IMAGE_SIZE = 32  # every preset is a CIFAR-style network


def resolve_config(preset=DEFAULT_PRESET, image_size=None, num_classes=10, **overrides):
    """The full architecture settings of a preset after overrides, validated."""
    if preset not in PRESETS:
        raise ValueError(f"unknown CNN preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    config = {**PRESETS[preset], "image_size": image_size or DEFAULT_IMAGE_SIZE, "num_classes": num_classes}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"unknown CNN setting(s) {unknown}; valid ones: {', '.join(sorted(config))}")
    config.update(overrides)
    if len(config["stage_widths"]) != len(config["blocks_per_stage"]):
        raise ValueError("stage_widths and blocks_per_stage must have one entry per stage")
    return config
