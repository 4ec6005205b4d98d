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

PRESETS = {**PAPER_PRESETS, **CIFAR_PRESETS}
DEFAULT_PRESET = "vit_cifar_tiny"

# Settings that are not part of a preset row, with their defaults.
DEFAULT_OPTIONS = dict(
    dropout_rate=0.0,  # after position embeddings, attention output and MLP layers (App. B.1)
    attention_dropout_rate=0.0,  # on the softmax weights; 0 in every released config
    classifier="token",  # "token": class token (eq. 4); "gap": mean of tokens, no class token
    drop_path_rate=0.0,  # stochastic depth of the last block, rising linearly from 0 at the first (DeiT)
    fused_attention=True,  # keras.ops.dot_product_attention where the weights are not needed
    representation_size=None,  # the pre-training head's tanh hidden layer (pre_logits); None: a linear head
    distillation=False,  # DeiT: a distillation token with its own head; inference averages the two heads
)


def resolve_config(preset=DEFAULT_PRESET, image_size=None, num_classes=10, **overrides):
    """The full architecture settings of a preset after overrides, validated."""
    if preset not in PRESETS:
        raise ValueError(f"unknown ViT preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    config = {**PRESETS[preset], **DEFAULT_OPTIONS, "num_classes": num_classes}
    unknown = sorted(set(overrides) - set(config))
    if unknown:
        raise ValueError(f"unknown ViT setting(s) {unknown}; valid ones: {', '.join(sorted(config))}")
    config.update(overrides)
    if image_size is not None:
        config["image_size"] = image_size
    if config["image_size"] % config["patch_size"]:
        raise ValueError(
            f"image size {config['image_size']} is not divisible by patch size {config['patch_size']}; "
            f"use an image size that is a multiple of {config['patch_size']}"
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
