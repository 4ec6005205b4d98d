"""Named ViT sizes, one row each, like the paper's Table 1.

Columns: patch_size P, hidden_dim D, num_layers L, mlp_dim M, num_heads k, and the image size the
preset is meant for. Every row can be overridden per build (`build_vit(..., num_layers=4)`);
`resolve_config` gives a preset's settings after overrides, validated. Plain data: no Keras here.
"""

# The paper's Table 1 (ViT-B/L/H) at 224x224, plus DeiT's Ti and S sizes (Touvron et al. 2021),
# which the authors' `vit_jax/configs/models.py` also registers.
PAPER_PRESETS = {
    "vit_ti16": dict(patch_size=16, hidden_dim=192, num_layers=12, mlp_dim=768, num_heads=3, image_size=224),
    "vit_s16": dict(patch_size=16, hidden_dim=384, num_layers=12, mlp_dim=1536, num_heads=6, image_size=224),
    "vit_b16": dict(patch_size=16, hidden_dim=768, num_layers=12, mlp_dim=3072, num_heads=12, image_size=224),
    "vit_b32": dict(patch_size=32, hidden_dim=768, num_layers=12, mlp_dim=3072, num_heads=12, image_size=224),
    "vit_l16": dict(patch_size=16, hidden_dim=1024, num_layers=24, mlp_dim=4096, num_heads=16, image_size=224),
    "vit_l32": dict(patch_size=32, hidden_dim=1024, num_layers=24, mlp_dim=4096, num_heads=16, image_size=224),
    "vit_h14": dict(patch_size=14, hidden_dim=1280, num_layers=32, mlp_dim=5120, num_heads=16, image_size=224),
}

# CIFAR-sized models: 32x32 inputs cut into 4x4 patches, so N = 64 tokens (+1 class token).
# Departure from the paper: these sizes are ours, chosen to train from scratch on small data.
CIFAR_PRESETS = {
    # For unit tests only: a few thousand parameters.
    "vit_test": dict(patch_size=4, hidden_dim=16, num_layers=2, mlp_dim=32, num_heads=2, image_size=32),
    # CPU quickstart size (~0.4 M params): learns the embedded sample in a few CPU minutes.
    "vit_cifar_mini": dict(patch_size=4, hidden_dim=128, num_layers=3, mlp_dim=256, num_heads=4, image_size=32),
    # The default (~2.7 M params): depth, width and MLP ratio of the small-dataset ViT baseline of
    # Lee, Lee & Song (2021), with 6 heads of 32 dimensions.
    "vit_cifar_tiny": dict(patch_size=4, hidden_dim=192, num_layers=9, mlp_dim=384, num_heads=6, image_size=32),
    # ViT-S width at CIFAR size (~10.7 M params).
    "vit_cifar_small": dict(patch_size=4, hidden_dim=384, num_layers=6, mlp_dim=1536, num_heads=6, image_size=32),
}

# Hybrids (section 3.1): a ResNet stem (`vit_tf.hybrid`; resnet_width: its root channels, resnet_blocks:
# units per stage) whose feature map is cut into 1x1 patches. r50_vit_b16 is the released R50+ViT-B/16
# (`vit_jax/configs/models.py`: stages (3, 4, 9), total stride 16, so 14x14 tokens at 224 px).
HYBRID_PRESETS = {
    "r50_vit_b16": dict(patch_size=1, hidden_dim=768, num_layers=12, mlp_dim=3072, num_heads=12, image_size=224,
                        resnet_width=64, resnet_blocks=(3, 4, 9)),
    # The other released hybrids (`vit_jax/configs/models.py`; AugReg files R26_S_32, R50_L_32): four stages,
    # total stride 32. R50+ViT-L/32 is ViT-L's encoder on ResNet-50's four stages.
    "r26_vit_s32": dict(patch_size=1, hidden_dim=384, num_layers=12, mlp_dim=1536, num_heads=6, image_size=224,
                        resnet_width=64, resnet_blocks=(2, 2, 2, 2)),
    "r26_vit_b32": dict(patch_size=1, hidden_dim=768, num_layers=12, mlp_dim=3072, num_heads=12, image_size=224,
                        resnet_width=64, resnet_blocks=(2, 2, 2, 2)),
    "r50_vit_l32": dict(patch_size=1, hidden_dim=1024, num_layers=24, mlp_dim=4096, num_heads=16, image_size=224,
                        resnet_width=64, resnet_blocks=(3, 4, 6, 3)),
    # CPU quickstart size: vit_cifar_mini's encoder on a one-unit stem (8x8 map, 64 tokens).
    "hybrid_cifar_mini": dict(patch_size=1, hidden_dim=128, num_layers=3, mlp_dim=256, num_heads=4, image_size=32,
                              resnet_width=32, resnet_blocks=(1,)),
    # From scratch at 32 px: one stage of the stem leaves an 8x8 map (64 tokens, as vit_cifar_tiny).
    "hybrid_cifar_tiny": dict(patch_size=1, hidden_dim=192, num_layers=9, mlp_dim=384, num_heads=6, image_size=32,
                              resnet_width=32, resnet_blocks=(2,)),
    "hybrid_test": dict(patch_size=1, hidden_dim=16, num_layers=2, mlp_dim=32, num_heads=2, image_size=32,
                        resnet_width=32, resnet_blocks=(1,)),  # unit tests
    # Departure (ours): the fast CNN's whitening and first two conv groups (`model_parts.fast_conv`) as the
    # stem, for short CPU budgets: an 8x8 map of 128 channels (64 tokens), vit_cifar_mini's encoder on it.
    "hybrid_cifar_fast": dict(patch_size=1, hidden_dim=128, num_layers=3, mlp_dim=256, num_heads=4, image_size=32,
                              conv_stem_widths=(64, 128)),
    "hybrid_fast_test": dict(patch_size=1, hidden_dim=16, num_layers=1, mlp_dim=32, num_heads=2, image_size=32,
                             conv_stem_widths=(8, 16)),  # unit tests
}

PRESETS = {**PAPER_PRESETS, **CIFAR_PRESETS, **HYBRID_PRESETS}
DEFAULT_PRESET = "vit_cifar_tiny"

# Settings that are not part of a preset row, with their defaults.
DEFAULT_OPTIONS = dict(
    dropout_rate=0.0,  # after position embeddings, attention output and MLP layers (App. B.1)
    attention_dropout_rate=0.0,  # on the softmax weights; 0 in every released config
    classifier="token",  # "token": class token (eq. 4); "gap": mean of tokens, no class token
    drop_path_rate=0.0,  # stochastic depth of the last block, rising linearly from 0 at the first (DeiT)
    fused_attention=True,  # keras.ops.dot_product_attention where the weights are not needed
    approximate_gelu=True,  # GELU's tanh form, as the authors' Flax code; False: exact (erf), as timm's PyTorch
    representation_size=None,  # the pre-training head's tanh hidden layer (pre_logits); None: a linear head
    distillation=False,  # DeiT: a distillation token with its own head; inference averages the two heads
    resnet_width=None,  # hybrid: the ResNet stem's root channels; None: patches of pixels (plain ViT)
    resnet_blocks=None,  # hybrid: residual units per stage of the stem
    conv_stem_widths=None,  # hybrid: instead of the ResNet, the fast CNN's conv groups of these widths (stride 2 each)
)


def pixels_per_token(config):
    """The side of the image square one token covers: P, or P times the hybrid stem's stride."""
    if config["conv_stem_widths"]:
        return config["patch_size"] * 2 ** len(config["conv_stem_widths"])  # each conv group halves the map
    if config["resnet_width"] is None:
        return config["patch_size"]
    stages = len(config["resnet_blocks"])
    return config["patch_size"] * 4 * 2 ** max(stages - 1, 0)  # root stride 4, then 2 per later stage


def resolve_config(preset=DEFAULT_PRESET, image_size=None, num_classes=10, **overrides):
    """The full architecture settings of a preset after overrides, validated."""
    if preset not in PRESETS:
        raise ValueError(f"unknown ViT preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    config = {**DEFAULT_OPTIONS, **PRESETS[preset], "num_classes": num_classes}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"unknown ViT setting(s) {unknown}; valid ones: {', '.join(sorted(config))}")
    config.update(overrides)
    if image_size is not None:
        config["image_size"] = image_size
    if (config["resnet_width"] is None) != (config["resnet_blocks"] is None):
        raise ValueError("a hybrid needs both resnet_width and resnet_blocks")
    if config["resnet_width"] is not None and config["conv_stem_widths"]:
        raise ValueError("a hybrid has one stem: give resnet_width and resnet_blocks, or conv_stem_widths")
    if config["resnet_width"] is not None and config["resnet_width"] % 32:
        raise ValueError(f"resnet_width {config['resnet_width']} is not a multiple of 32, GroupNorm's groups")
    side = pixels_per_token(config)
    if config["image_size"] % side:
        what = f"patch size {side}" if side == config["patch_size"] else f"the hybrid's {side} px per token"
        raise ValueError(
            f"image size {config['image_size']} is not divisible by {what}; "
            f"use an image size that is a multiple of {side}"
        )
    if config["distillation"] and (config["classifier"] != "token" or config["representation_size"]):
        raise ValueError("a distillation token sits beside the class token: distillation needs classifier='token' "
                         "and no representation_size")
    if config["hidden_dim"] % config["num_heads"]:
        raise ValueError(
            f"hidden size {config['hidden_dim']} is not divisible by {config['num_heads']} heads; "
            f"use a number of heads that divides {config['hidden_dim']}"
        )
    return config
