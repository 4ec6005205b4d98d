"""Named pre-activation ResNet sizes for 32x32 inputs, one row each.

Columns: stem_width (channels of the first 3x3 convolution), stage_widths (channels per stage;
every stage after the first halves the resolution), blocks_per_stage (basic residual blocks).
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
