"""Assembles the layers of `vit_tf.layers` into the Vision Transformer (paper section 3.1)."""

import keras
import numpy as np
from keras import layers

from model_parts.counting import layer_outputs, multiply_adds
from vit_tf.hybrid import conv_stem, resnet_stem, stem_layers
from vit_tf.layers import (
    LAYER_NORM_EPSILON,
    ClassToken,
    DistillationToken,
    EncoderBlock,
    HeadFusion,
    PatchEmbedding,
    PositionEmbedding,
    TokenPooling,
)
from vit_tf.presets import DEFAULT_PRESET, resolve_config


def build_vit(preset=DEFAULT_PRESET, image_size=None, num_classes=10, **overrides):
    """Builds a Vision Transformer as a `keras.Model` from a named preset.

    Args:
        preset: a key of `vit_tf.PRESETS`, e.g. "vit_b16" (paper) or "vit_cifar_tiny".
        image_size: input height and width in pixels; defaults to the preset's.
        num_classes: K, the number of logits of the head.
        **overrides: any preset column or `vit_tf.presets.DEFAULT_OPTIONS` key, e.g. `num_layers=4`.

    The model takes raw RGB pixels in [0, 255], shape (B, H, W, 3), scales them to [-1, 1] as the
    authors' input pipeline does, and returns float32 logits (B, K).

    >>> model = build_vit("vit_test", num_classes=10)
    >>> model.output_shape
    (None, 10)
    """
    config = resolve_config(preset, image_size, num_classes, **overrides)
    size = config["image_size"]
    images = keras.Input((size, size, 3), name="images")
    x = layers.Rescaling(1 / 127.5, offset=-1.0, name="rescale")(images)
    if config["resnet_width"]:  # the hybrid: patches of the ResNet's feature map (section 3.1)
        x = resnet_stem(x, config["resnet_width"], config["resnet_blocks"])
    elif config["conv_stem_widths"]:  # ... or of the fast CNN's (our departure, for short budgets)
        x = conv_stem(x, config["conv_stem_widths"])
    x = PatchEmbedding(config["patch_size"], config["hidden_dim"], name="patch_embedding")(x)
    if config["classifier"] == "token":
        x = ClassToken(name="class_token")(x)
        if config["distillation"]:
            x = DistillationToken(name="distillation_token")(x)
    x = PositionEmbedding(name="position_embedding")(x)
    x = layers.Dropout(config["dropout_rate"], name="embedding_dropout")(x)
    for index in range(config["num_layers"]):
        x = EncoderBlock(
            config["hidden_dim"],
            config["num_heads"],
            config["mlp_dim"],
            config["dropout_rate"],
            config["attention_dropout_rate"],
            config["drop_path_rate"] * index / max(1, config["num_layers"] - 1),
            config["fused_attention"],
            config["approximate_gelu"],
            name=f"encoder_block_{index}",
        )(x)
    tokens = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="encoder_norm")(x)  # eq. 4
    x = TokenPooling(config["classifier"], name="pooling")(tokens)
    if config["representation_size"]:  # pre-training head (section 3.1); fine-tuning drops it
        x = layers.Dense(config["representation_size"], activation="tanh", name="pre_logits")(x)
    # Zero-initialised linear head, as the authors; logits stay float32 under mixed precision.
    logits = layers.Dense(
        num_classes, kernel_initializer="zeros", dtype="float32", name="head"
    )(x)
    if config["distillation"]:  # DeiT: the distillation token's own head; at inference both heads are averaged
        distilled = TokenPooling("distillation", name="distillation_pooling")(tokens)
        distillation_logits = layers.Dense(num_classes, kernel_initializer="zeros", dtype="float32",
                                           name="head_distillation")(distilled)
        logits = HeadFusion(dtype="float32", name="head_fusion")([logits, distillation_logits])
    return keras.Model(images, logits, name=preset)


def prefix_tokens(model):
    """How many tokens come before the patches: 0 ("gap"), 1 (class token), 2 (class and distillation)."""
    names = {layer.name for layer in model.layers}
    return int("class_token" in names) + int("distillation_token" in names)


def encoder_outputs(model, images):
    """Runs a built ViT up to the final LayerNorm and collects every block's attention weights.

    Returns (tokens (B, T, D) after `encoder_norm`, [attention (B, k, T, T) per block]), for the
    analyses of the paper's section 4.5 (attention distance, attention rollout).
    """
    blocks = [layer for layer in model.layers if isinstance(layer, EncoderBlock)]
    # Everything before the first block (a hybrid's ResNet stem, patches, tokens, E_pos) as one graph.
    x = keras.Model(model.input, blocks[0].input)(images)
    attention = []
    for block in blocks:
        x, weights = block(x, return_attention_scores=True)
        attention.append(weights)
    return model.get_layer("encoder_norm")(x), attention


def flops_per_image(model):
    """Forward-pass FLOPs of one image (2 per multiply-add), from the layers' shapes.

    Counts the patch projection E, the q/k/v/output projections, q k^T and A v, the MLP and the
    head; norms, activations and softmax are left out, as is usual. ViT-B/16 at 224 px: 17.6 G
    multiply-adds.
    """
    tokens = model.get_layer("position_embedding").position_embedding.shape[1]  # T = N (+ 1)
    num_patches = tokens - prefix_tokens(model)
    patch_inputs, hidden_dim = model.get_layer("patch_embedding").projection.kernel.shape  # (P^2 C, D)
    blocks = [layer for layer in model.layers if isinstance(layer, EncoderBlock)]
    per_block = sum(
        4 * tokens * block.hidden_dim**2  # q, k, v and output projections
        + 2 * tokens * tokens * block.hidden_dim  # q k^T and A v
        + 2 * tokens * block.hidden_dim * block.mlp_dim  # the MLP
        for block in blocks
    )
    heads = sum(int(np.prod(model.get_layer(name).kernel.shape)) for name in ("head", "head_distillation")
                if name in {layer.name for layer in model.layers})
    stem = multiply_adds(stem_layers(model))  # the hybrid's ResNet; 0 for a plain ViT
    return 2 * (stem + num_patches * patch_inputs * hidden_dim + per_block + heads)


def activations_per_image(model):
    """About how many values training keeps per image for the backward pass (for memory planning).

    Per block and token: the inputs and outputs of both LayerNorms, q, k and v, the attention output
    before and after its projection, the sums and the MLP output (12 D); the MLP's hidden layer, about
    four values per unit with GELU's tanh form (4 M); attention scores and weights, a row of each per
    head (2 k T); plus the patches and their embeddings. Within about 30% of the peak memory the
    TensorFlow CPU backend reaches (README, "Preflight").
    """
    tokens = model.get_layer("position_embedding").position_embedding.shape[1]
    patch_inputs, hidden_dim = model.get_layer("patch_embedding").projection.kernel.shape
    blocks = [layer for layer in model.layers if isinstance(layer, EncoderBlock)]
    per_block = sum(tokens * (12 * b.hidden_dim + 4 * b.mlp_dim + 2 * b.num_heads * tokens) for b in blocks)
    return layer_outputs(stem_layers(model)) + tokens * (patch_inputs + 2 * hidden_dim) + per_block


def parameter_breakdown(model):
    """Parameter counts per component: (the hybrid's ResNet stem,) patch embedding (E, class token,
    E_pos), encoder, head."""
    stem = stem_layers(model)
    stem_name = "conv stem" if any(layer.name == "stem_whitening" for layer in stem) else "resnet stem"
    groups = {**({stem_name: 0} if stem else {}), "patch embedding": 0, "encoder": 0, "head": 0}
    for layer in model.layers:
        if layer in stem:
            group = stem_name
        elif isinstance(layer, (PatchEmbedding, ClassToken, DistillationToken, PositionEmbedding)):
            group = "patch embedding"
        elif layer.name in ("head", "pre_logits", "head_distillation"):
            group = "head"
        else:
            group = "encoder"
        groups[group] += layer.count_params() if layer.built else 0
    return groups
