"""Loading Big Transfer's released ResNet-v2 checkpoints (`BiT-M-R50x1.npz`, `BiT-S-R50x1.npz`, ...) into
the BiT presets of `build_cnn`, with the design of `model_parts.checkpoint`: one list of assignments, checked
as a whole before any weight is set (every key used once, every weight set, the first misfit named).

Names (`big_transfer/bit_pytorch/models.py`, `load_from`): everything under `resnet/`; the root
convolution `root_block/standardized_conv2d/kernel`; unit `block{s}/unit{uu}/` has parts a, b, c (our
gn1/conv1, gn2/conv2, gn3/conv3: each part's GroupNorm comes before its convolution, BiT being
pre-activation) as `{a,b,c}/group_norm/{gamma,beta}` and `{a,b,c}/standardized_conv2d/kernel`, and
the projection shortcut `a/proj/standardized_conv2d/kernel`; the final GroupNorm is `group_norm/`, the
head a 1x1 convolution `head/conv2d/{kernel,bias}`. Kernels are TensorFlow's (kh, kw, in, out), as Keras'.
"""

import pathlib
import re

import numpy as np

from cnn_baseline.presets import PRESETS
from model_parts.checkpoint import (
    CheckpointError,
    compare_architectures,
    load_and_report,
    normalise_keys,
    read_npz,
    shape_of,
    strip_prefix,
    units_per_stage,
)

ROOT_KEY = "root_block/standardized_conv2d/kernel"
PARTS = {"1": "a", "2": "b", "3": "c"}  # our gn{n}/conv{n} <- BiT's part
HEAD_KEYS = ("head/conv2d/kernel", "head/conv2d/bias")
UNIT_LAYER = re.compile(r"(block\d+)_(unit\d+)_(gn|conv)(1|2|3|_proj)")


def bit_arrays(path):
    """The arrays of a BiT file with the `resnet/` prefix (and any training-state prefix) stripped."""
    return strip_prefix(normalise_keys(read_npz(path), path), "resnet/")


def checkpoint_architecture(arrays, path="the checkpoint"):
    """root_width and blocks_per_stage read off the arrays."""
    if ROOT_KEY not in arrays:
        vit = "embedding/kernel" in arrays
        hint = "; it is a ViT checkpoint: train it with --model vit (or --model hybrid)" if vit else ""
        raise CheckpointError(f"{path} has no resnet/{ROOT_KEY}: not a BiT checkpoint "
                              f"(its first keys: {', '.join(sorted(arrays)[:4])}){hint}")
    return dict(root_width=shape_of(arrays, ROOT_KEY, 4, path, "(7, 7, 3, width)")[-1],
                blocks_per_stage=units_per_stage(arrays, r"block(\d+)/unit(\d+)/"))


def preset_option(name, row):
    return f"--model cnn --preset {name}"


def _compare(found, ours, path):
    if ours["architecture"] != "bit":
        raise CheckpointError(f"{path}: the released CNN checkpoints are BiT ResNet-v2s, and this CNN is a BatchNorm "
                              "ResNet; use a BiT preset (--model cnn --preset bit_r50x1)")
    bit_presets = {name: row for name, row in PRESETS.items() if row.get("architecture") == "bit"}
    compare_architectures(found, ours, path, bit_presets, "BiT ResNet", preset_option)


def check_compatible(path, architecture):
    """Raises a CheckpointError unless the file holds a BiT ResNet of `architecture` (a `resolve_config` dict):
    a check before any data is loaded."""
    _compare(checkpoint_architecture(bit_arrays(path), path), architecture, path)


def model_architecture(model):
    names = {layer.name for layer in model.layers}
    if "conv_root" not in names:
        return dict(architecture="preact")
    return dict(architecture="bit", root_width=model.get_layer("conv_root").filters,
                blocks_per_stage=units_per_stage(names, r"block(\d+)_unit(\d+)_conv1$"))


def load_pretrained(model, path, keep_head=False):
    """Loads a released BiT checkpoint into a BiT `build_cnn` model; returns a LoadReport.

    The pre-training head (`head/conv2d`) is dropped and the model's head set to zero, as BiT
    fine-tunes, unless `keep_head` (same number of classes).
    """
    path = pathlib.Path(path)
    arrays = bit_arrays(path)
    _compare(checkpoint_architecture(arrays, path), model_architecture(model), path)
    assignments = [(model.get_layer("conv_root").kernel, [ROOT_KEY], np.asarray)]
    for layer in model.layers:
        match = UNIT_LAYER.fullmatch(layer.name)
        if not match:
            continue
        block, unit, kind, part = match.groups()
        prefix = f"{block}/{unit}/" + ("a/proj/" if part == "_proj" else f"{PARTS[part]}/")
        if kind == "conv":
            assignments.append((layer.kernel, [f"{prefix}standardized_conv2d/kernel"], np.asarray))
        else:  # gamma and beta: (C,), or (1, 1, 1, C) in files converted from TensorFlow
            assignments += [(layer.gamma, [f"{prefix}group_norm/gamma"], np.ravel),
                            (layer.beta, [f"{prefix}group_norm/beta"], np.ravel)]
    head_norm, head = model.get_layer("head_gn"), model.get_layer("head")
    assignments += [(head_norm.gamma, ["group_norm/gamma"], np.ravel), (head_norm.beta, ["group_norm/beta"], np.ravel)]
    dropped = []
    if keep_head:  # the head is a 1x1 convolution (1, 1, C, K): our Dense kernel (C, K)
        assignments += [(head.kernel, [HEAD_KEYS[0]], lambda a: np.reshape(a, a.shape[-2:])),
                        (head.bias, [HEAD_KEYS[1]], np.asarray)]
    else:
        dropped = [key for key in HEAD_KEYS if key in arrays]
    return load_and_report(assignments, arrays, dropped, path, () if keep_head else (head.kernel, head.bias))
