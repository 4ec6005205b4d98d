"""Named CNN sizes, one row each: the BatchNorm pre-activation ResNets and BiT's ResNet-v2.

Columns of the BatchNorm ResNets (architecture "preact", 32x32 inputs): stem_width (channels of
the first 3x3 convolution), stage_widths (channels per stage; every stage after the first halves
the resolution), blocks_per_stage (basic residual blocks).
Columns of BiT (architecture "bit", `model_parts.bit`): root_width (channels of the 7x7/2 root
convolution, 64 x the width factor; stage s has bottlenecks of width root_width * 2^(s-1), output
4x that), blocks_per_stage (bottleneck units), image_size.
Columns of the fast CNN (architecture "fast", `cnn_baseline.fast_cnn`, 32x32 inputs): stage_widths (channels
of each conv group of two 3x3 convolutions; every group halves the resolution); whitening, dirac, bias_boost
(its tricks: the whitening stem, Dirac initialisation, how much faster the BatchNorm biases learn; the
ablation presets switch one each, docs/training.md).
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
    # BiT (Kolesnikov et al. 2020), the paper's "ResNet (BiT)": R50x1 is the layout of BiT-S/M-R50x1.npz.
    "bit_r50x1": dict(architecture="bit", root_width=64, blocks_per_stage=(3, 4, 6, 3), image_size=224),
    "bit_r101x1": dict(architecture="bit", root_width=64, blocks_per_stage=(3, 4, 23, 3), image_size=224),
    # A BiT to train from scratch at 32 px: the root leaves 8x8, three stages end at 2x2.
    "bit_cifar": dict(architecture="bit", root_width=32, blocks_per_stage=(2, 2, 2), image_size=32),
    "bit_test": dict(architecture="bit", root_width=32, blocks_per_stage=(1, 1), image_size=32),  # unit tests
    # airbench's networks (Jordan 2024): the widths of airbench93 and airbench94.
    "fast_cnn_small": dict(architecture="fast", stage_widths=(64, 128, 128)),
    "fast_cnn": dict(architecture="fast", stage_widths=(64, 256, 256)),
    "fast_cnn_test": dict(architecture="fast", stage_widths=(8, 16, 16)),  # unit tests
    # fast_cnn_small with one trick switched the other way each: the ablation behind the choice
    # (docs/training.md); airbench's BatchNorm bias boost (64x its learning rate) did not help here
    "fast_cnn_small_no_whitening": dict(architecture="fast", stage_widths=(64, 128, 128), whitening=False),
    "fast_cnn_small_no_dirac": dict(architecture="fast", stage_widths=(64, 128, 128), dirac=False),
    "fast_cnn_small_boost": dict(architecture="fast", stage_widths=(64, 128, 128), bias_boost=8.0),
}
FAST_DEFAULTS = dict(whitening=True, dirac=True, bias_boost=1.0)  # the fast CNN's tricks as the recipes use them
ARCHITECTURES = ("preact", "bit", "fast")
DEFAULT_PRESET = "resnet20"
DEFAULT_IMAGE_SIZE = 32  # every preset is a CIFAR-style network


def resolve_config(preset=DEFAULT_PRESET, image_size=None, num_classes=10, **overrides):
    """The full architecture settings of a preset after overrides, validated."""
    if preset not in PRESETS:
        raise ValueError(f"unknown CNN preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    row = {"architecture": "preact", "image_size": DEFAULT_IMAGE_SIZE, **PRESETS[preset]}
    if row["architecture"] == "fast":
        row = {**FAST_DEFAULTS, **row}
    config = {**row, "image_size": image_size or row["image_size"], "num_classes": num_classes}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"unknown CNN setting(s) {unknown}; valid ones: {', '.join(sorted(config))}")
    config.update(overrides)
    if config["architecture"] == "bit":
        if config["root_width"] % 32:
            raise ValueError(f"root_width {config['root_width']} is not a multiple of 32, GroupNorm's groups")
    elif config["architecture"] == "preact" and len(config["stage_widths"]) != len(config["blocks_per_stage"]):
        raise ValueError("stage_widths and blocks_per_stage must have one entry per stage")
    return config
