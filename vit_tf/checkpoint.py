"""Loading the authors' released ViT and hybrid checkpoints (`ViT-B_16.npz`, `R50+ViT-B_16.npz`, the AugReg
files, ...) into `build_vit`, with the loading design every checkpoint format here follows
(`model_parts.checkpoint`; BiT's files load the same way in `cnn_baseline.checkpoint`).

A checkpoint is a flat .npz of Flax arrays whose keys join the module path with "/" (paper
appendix; `vit_jax/checkpoint.py` of google-research/vision_transformer). Loading is a list of
assignments (our variable <- a checkpoint key, with the layout conversion), checked as a whole before
any weight is set: every key is used exactly once or deliberately dropped (the pre-training head),
every weight is set, and the first key or shape that does not fit is named.

Layouts: `embedding/kernel` is a (P, P, C, D) convolution kernel, which flattened in (row, column,
channel) order is our patch projection E; q/k/v kernels are (D, heads, D_h) and `out` is
(heads, D_h, D), our D x D Dense kernels once reshaped; LayerNorm `scale` is our `gamma`.
Names: the original files number a block's modules with one counter (`LayerNorm_0`,
`MultiHeadDotProductAttention_1`, `LayerNorm_2`, `MlpBlock_3`); Flax Linen and big_vision files count
per module type (`..._0`, `..._0`, `LayerNorm_1`, `MlpBlock_0`), may sit under `params/` or
`opt/target/`, and may stack the blocks as `Transformer/encoderblock/...` with a leading layer axis.
All of these load, and so do timm's state dicts (`.safetensors`, `.pth`) and keras-hub's ViTBackbone presets
(`model.weights.h5`), converted to this layout first (`vit_tf.timm_weights`, `vit_tf.keras_hub_weights`).
Hybrids add their ResNet stem under the authors' Flax names (`vit_jax/models_resnet.py`): `conv_root`,
`gn_root`, `block{s}/unit{u}/{conv1..3, gn1..3, conv_proj, gn_proj}`, which are our layer names with
"/" for "_"; convolution kernels are Keras' (kh, kw, in, out) layout already.
"""

import math
import re

import numpy as np
from keras import layers

from model_parts.checkpoint import (
    CheckpointError,
    compare_architectures,
    load_and_report,
    normalise_keys,
    read_npz,
    shape_of,
    units_per_stage,
)
from vit_tf.hybrid import stem_layers
from vit_tf.keras_hub_weights import read_backbone, released_from_keras_hub
from vit_tf.layers import EncoderBlock
from vit_tf.model import prefix_tokens
from vit_tf.presets import PRESETS
from vit_tf.timm_weights import heads_of, read_state_dict, released_from_timm
from vit_tf.weight_sources import checkpoint_file, source_of, uses_exact_gelu

# (pre-Linen name, Linen name) of each module inside an encoder block.
BLOCK_MODULES = {
    "attention_norm": ("LayerNorm_0", "LayerNorm_0"),
    "attention": ("MultiHeadDotProductAttention_1", "MultiHeadDotProductAttention_0"),
    "mlp_norm": ("LayerNorm_2", "LayerNorm_1"),
    "mlp": ("MlpBlock_3", "MlpBlock_0"),
}
PRE_LOGITS_KEYS = ("pre_logits/kernel", "pre_logits/bias")


def interpolate_grid(grid, new_side):
    """Bilinear resampling of a (side, side, D) grid to (new_side, new_side, D) with aligned corners:
    output point i samples input position i * (side - 1) / (new_side - 1), the rule of
    `scipy.ndimage.zoom(order=1)` that the authors' `interpolate_posembed` calls."""
    side = grid.shape[0]
    if new_side == side:
        return grid
    positions = np.linspace(0, side - 1, new_side) if new_side > 1 else np.zeros(1)
    low = np.floor(positions).astype(int)
    high = np.minimum(low + 1, side - 1)
    weight = (positions - low)[:, None]
    rows = grid[low] * (1 - weight[:, :, None]) + grid[high] * weight[:, :, None]  # along the first axis
    return rows[:, low] * (1 - weight[None, :, :]) + rows[:, high] * weight[None, :, :]


def resize_position_embedding(table, new_tokens, keep):
    """(1, T, D) position embeddings for (1, new_tokens, D): the first `keep` rows (class and distillation
    tokens) kept, the patch grid interpolated."""
    if table.ndim != 3 or len(table) != 1:  # a ValueError: `assign` names the key and the shape that does not fit
        raise ValueError(f"position embeddings of shape {table.shape}, not (1, tokens, D)")
    head, grid = table[:, :keep], table[0, keep:]
    side, new_side = math.isqrt(len(grid)), math.isqrt(new_tokens - keep)
    if side * side != len(grid) or new_side * new_side != new_tokens - keep:
        raise CheckpointError(f"position embeddings of {table.shape[1]} tokens are not a square patch grid")
    resized = interpolate_grid(grid.reshape(side, side, -1), new_side).reshape(1, new_side * new_side, -1)
    return np.concatenate([head, resized.astype(table.dtype)], axis=1), (side, new_side)


def checkpoint_architecture(arrays, path="the checkpoint"):
    """Patch size, hidden size, blocks, MLP size and heads read off the arrays' shapes, and a hybrid's
    stem (resnet_width, resnet_blocks; None for a plain ViT)."""
    try:
        kernel_shape = arrays["embedding/kernel"].shape
    except KeyError:
        bit = any(key.startswith(("resnet/root_block", "root_block")) for key in arrays)
        hint = "; it is a BiT ResNet checkpoint: train it with --model cnn --preset bit_r50x1" if bit else ""
        raise CheckpointError(f"{path} has no embedding/kernel array: not a ViT checkpoint "
                              f"(its first keys: {', '.join(sorted(arrays)[:4])}){hint}") from None
    if len(kernel_shape) != 4:  # e.g. (P*P*3, D) from a converter: the order of P, P and 3 is not recorded
        raise CheckpointError(f"{path} stores embedding/kernel flattened, as {kernel_shape}; the released layout is "
                              "(P, P, 3, D), and which flattening order the converter used cannot be told from the "
                              "file: reshape it to (P, P, 3, D) where it was converted")
    patch, _, _, hidden = kernel_shape
    blocks = {int(m.group(1)) for key in arrays for m in [re.match(r"Transformer/encoderblock_(\d+)/", key)] if m}
    attention = next((f"Transformer/encoderblock_0/{name}" for name in BLOCK_MODULES["attention"]
                      if f"Transformer/encoderblock_0/{name}/query/kernel" in arrays), None)
    mlp = next((f"Transformer/encoderblock_0/{name}" for name in BLOCK_MODULES["mlp"]
                if f"Transformer/encoderblock_0/{name}/Dense_0/kernel" in arrays), None)
    if not blocks or attention is None or mlp is None:
        raise CheckpointError(f"{path} has no encoder blocks in the released layout (Transformer/encoderblock_0/...)")
    stem = "conv_root/kernel" in arrays
    return dict(patch_size=patch, hidden_dim=hidden, num_layers=len(blocks),
                mlp_dim=shape_of(arrays, f"{mlp}/Dense_0/kernel", 2, path, "(D, MLP)")[1],
                num_heads=shape_of(arrays, f"{attention}/query/kernel", 3, path, "(D, heads, D_h)")[1],
                resnet_width=shape_of(arrays, "conv_root/kernel", 4, path, "(7, 7, 3, width)")[-1] if stem else None,
                resnet_blocks=units_per_stage(arrays, r"block(\d+)/unit(\d+)/") if stem else None)


def check_pooling(arrays, classifier, path):
    """A CheckpointError when the file reads out a class token (it has `cls`) and the model averages the
    tokens (classifier "gap"), or the reverse: the weights would load, and the logits would be another model's."""
    file_classifier = "token" if "cls" in arrays else "gap"
    if classifier != file_classifier:
        said = {"token": "a class token (eq. 4)", "gap": "global average pooling of the tokens (no class token)"}
        raise CheckpointError(f"{path} reads out {said[file_classifier]}, but the model reads out "
                              f"{said[classifier]}; build the model with "
                              f"classifier={file_classifier!r}")


def check_compatible(path, architecture):
    """Raises a CheckpointError unless the file holds a ViT (or hybrid) of `architecture` (a `resolve_config`
    dict): a check before any data is loaded."""
    checked_arrays(path, architecture, architecture.get("classifier", "token"))


def checked_arrays(path, architecture, classifier):
    """(the file's arrays under their released names, notes on the conversion), once its architecture and
    read-out match the model's."""
    path = checkpoint_file(path)
    source = source_of(path)
    if uses_exact_gelu(path) and architecture.get("approximate_gelu", True):
        raise CheckpointError(f"{path} is a {source} ViT, which uses exact GELU; build the model with "
                              f"approximate_gelu=False (train.py: --gelu exact, its default for a {source} file)")
    if source == "timm":
        state, metadata = read_state_dict(path)
        heads, told = heads_of(metadata, architecture["num_heads"])
        arrays = released_from_timm(state, heads, path, metadata.get("global_pool"))
        notes = [f"converted from timm's layout; {heads} attention heads, from {told}"]
    elif source == "keras-hub":
        arrays = released_from_keras_hub(*read_backbone(path), path)
        notes = ["converted from keras-hub's ViT layout (" + ("a ViTImageClassifier, with its head)" if "head/kernel"
                                                             in arrays else "a backbone: no head in the file)")]
    else:
        arrays, notes = normalise_keys(read_npz(path), path), []
    compare_architectures(checkpoint_architecture(arrays, path), architecture, path, PRESETS, "ViT", preset_option)
    check_pooling(arrays, classifier, path)
    if ("dist" in arrays) != bool(architecture.get("distillation")):
        raise CheckpointError(f"{path} has a distillation token (a distilled DeiT) and the model has none; build it "
                              "with distillation=True" if "dist" in arrays else
                              f"{path} has no distillation token; load it into a model without distillation (a "
                              "distilled DeiT's timm file has one)")
    return arrays, notes


def model_architecture(model):
    """The columns of `checkpoint_architecture`, read off a built ViT or hybrid."""
    blocks = [layer for layer in model.layers if isinstance(layer, EncoderBlock)]
    stem = [layer.name for layer in stem_layers(model)]
    return dict(patch_size=model.get_layer("patch_embedding").patch_size, hidden_dim=blocks[0].hidden_dim,
                num_layers=len(blocks), mlp_dim=blocks[0].mlp_dim, num_heads=blocks[0].num_heads,
                approximate_gelu=blocks[0].approximate_gelu,
                distillation="distillation_token" in {layer.name for layer in model.layers},
                resnet_width=model.get_layer("conv_root").filters if stem else None,
                resnet_blocks=units_per_stage(stem, r"block(\d+)_unit(\d+)_conv1$") if stem else None)


def preset_option(name, row):
    """The train.py options that build preset `name`."""
    return f"--model {'hybrid' if row.get('resnet_width') else 'vit'} --preset {name}"


def _block_assignments(block, index, attention_shape):
    prefix = f"Transformer/encoderblock_{index}/"
    keys = lambda module, leaf: list(dict.fromkeys(f"{prefix}{name}/{leaf}" for name in BLOCK_MODULES[module]))  # noqa: E731
    same = np.asarray
    flat = lambda array: np.reshape(array, (-1,))  # noqa: E731  (heads, D_h) -> D
    square = lambda array: np.reshape(array, attention_shape)  # noqa: E731  (D, heads, D_h) or (heads, D_h, D) -> D x D
    found = []
    for norm in ("attention_norm", "mlp_norm"):
        layer = getattr(block, norm)
        found += [(layer.gamma, keys(norm, "scale"), same), (layer.beta, keys(norm, "bias"), same)]
    for ours, theirs in ((block.attention.query, "query"), (block.attention.key, "key"),
                         (block.attention.value, "value"), (block.attention.output_projection, "out")):
        bias = same if theirs == "out" else flat
        found += [(ours.kernel, keys("attention", f"{theirs}/kernel"), square),
                  (ours.bias, keys("attention", f"{theirs}/bias"), bias)]
    for ours, theirs in ((block.mlp.dense_in, "Dense_0"), (block.mlp.dense_out, "Dense_1")):
        found += [(ours.kernel, keys("mlp", f"{theirs}/kernel"), same),
                  (ours.bias, keys("mlp", f"{theirs}/bias"), same)]
    return found


def stem_assignments(model):
    """A hybrid's ResNet stem: each layer under its Flax name (`block1_unit1_gn1` <- `block1/unit1/gn1`)."""
    found = []
    for layer in stem_layers(model):
        key = re.sub(r"^(block\d+)_(unit\d+)_", r"\1/\2/", layer.name)
        if isinstance(layer, layers.GroupNormalization):  # scale and bias: (C,), or (1, 1, 1, C) in older files
            found += [(layer.gamma, [f"{key}/scale"], np.ravel), (layer.beta, [f"{key}/bias"], np.ravel)]
        elif layer.weights:
            found.append((layer.kernel, [f"{key}/kernel"], np.asarray))
    return found


def load_pretrained(model, path, keep_head=False):
    """Loads a released ViT or hybrid checkpoint, a timm ViT or DeiT, or a keras-hub ViTBackbone preset into a
    `build_vit` model; returns a LoadReport.

    The architecture must match (a CheckpointError names the preset that would). Position embeddings
    are interpolated when the image size differs. The pre-training head (`pre_logits`, `head`) is
    dropped and the model's head is set to zero, as the paper fine-tunes, unless `keep_head` (same
    number of classes; `pre_logits` is loaded when the model has that layer).
    """
    path = checkpoint_file(path)
    architecture = model_architecture(model)
    arrays, notes = checked_arrays(path, architecture, model.get_layer("pooling").mode)
    has_class_token = model.get_layer("pooling").mode == "token"
    heads = [("head", "head")] + ([("head_distillation", "head_dist")] if architecture["distillation"] else [])
    hidden = model.get_layer("patch_embedding").hidden_dim
    table = model.get_layer("position_embedding").position_embedding
    grid = {}

    def positions(array):
        resized, grid["sides"] = resize_position_embedding(array, table.shape[1], prefix_tokens(model))
        return resized

    projection = model.get_layer("patch_embedding").projection
    same = np.asarray
    assignments = [
        # (P, P, C, D) -> (P^2 C, D)
        (projection.kernel, ["embedding/kernel"], lambda a: np.reshape(a, (-1, a.shape[-1]))),
        (projection.bias, ["embedding/bias"], same),
        (table, ["Transformer/posembed_input/pos_embedding"], positions),
        (model.get_layer("encoder_norm").gamma, ["Transformer/encoder_norm/scale"], same),
        (model.get_layer("encoder_norm").beta, ["Transformer/encoder_norm/bias"], same),
    ]
    if has_class_token:
        assignments.append((model.get_layer("class_token").class_token, ["cls"], same))
    if architecture["distillation"]:
        assignments.append((model.get_layer("distillation_token").distillation_token, ["dist"], same))
    for index, block in enumerate(layer for layer in model.layers if isinstance(layer, EncoderBlock)):
        assignments += _block_assignments(block, index, (hidden, hidden))
    assignments += stem_assignments(model)
    dropped, reinitialised = [], []
    model_pre_logits = "pre_logits" in {layer.name for layer in model.layers}
    file_pre_logits = PRE_LOGITS_KEYS[0] in arrays
    if keep_head and model_pre_logits != file_pre_logits:  # the head's logits would not be the file's
        size = shape_of(arrays, PRE_LOGITS_KEYS[0], 2, path, "(D, representation)")[1] if file_pre_logits else None
        has = "has a pre-logits layer" if file_pre_logits else "has no pre-logits layer"
        raise CheckpointError(f"{path} {has} and the model {'has none' if file_pre_logits else 'has one'}, so its "
                              f"head cannot be kept; build the model with representation_size={size}, or load "
                              "without keep_head (a new head, as for fine-tuning)")
    if model_pre_logits and file_pre_logits:
        pre_logits = model.get_layer("pre_logits")
        assignments += [(pre_logits.kernel, ["pre_logits/kernel"], same), (pre_logits.bias, ["pre_logits/bias"], same)]
    elif model_pre_logits:  # the model's own pre-logits layer keeps its fresh initialisation
        reinitialised.append("pre_logits")
    else:
        dropped += [key for key in PRE_LOGITS_KEYS if key in arrays]
    if keep_head and "head/kernel" not in arrays:
        raise CheckpointError(f"{path} has no classification head to keep (a backbone); load it without keep_head")
    new_head = []
    for layer, key in heads:
        head = model.get_layer(layer)
        if keep_head:
            assignments += [(head.kernel, [f"{key}/kernel"], same), (head.bias, [f"{key}/bias"], same)]
        else:
            dropped += [f"{key}/{leaf}" for leaf in ("kernel", "bias") if f"{key}/{leaf}" in arrays]
            new_head += [head.kernel, head.bias]
    report = load_and_report(assignments, arrays, dropped, path, new_head)
    report.position_grid = grid["sides"]  # known once `positions` has run, inside the loading
    report.reinitialised = reinitialised
    report.notes = notes
    return report
