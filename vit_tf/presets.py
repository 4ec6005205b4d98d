"""Named ViT sizes, one row each, like the paper's Table 1.

Columns: patch_size P, hidden_dim D, num_layers L, mlp_dim M, num_heads k, and the image size the
preset is meant for. Every row can be overridden per build (`build_vit(..., num_layers=4)`).
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
