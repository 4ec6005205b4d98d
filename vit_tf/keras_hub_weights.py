"""keras-hub's `ViTBackbone`, saved locally (a preset folder: `config.json` and `model.weights.h5`), as the
authors' released layout, so that `vit_tf.checkpoint.load_pretrained` loads it the one way it loads every
checkpoint.

keras-hub's ViT is the paper's model in Keras with the authors' kernel layouts ((P, P, C, D) patch kernel,
(D, heads, D_h) q/k/v, (heads, D_h, D) output), under its own names: `ln_1`, `mha`, `ln_2`, `mlp/dense_1..2`
per `transformer_block_{i + 1}`, the final `ln`. It uses the exact GELU (Keras' default), as timm. A backbone
has no classification head, so the model's head starts new. keras-hub builds the backbone from its config
and reads the weights (its own format); the file is read by Keras, never unpickled.
"""

import json
import pathlib
import re

import numpy as np

from model_parts.checkpoint import CheckpointError, first_line

BLOCK = re.compile(r"vit_encoder/transformer_block_(\d+)/(.+)")
BLOCK_NAMES = {"ln_1/gamma": "LayerNorm_0/scale", "ln_1/beta": "LayerNorm_0/bias",
               "ln_2/gamma": "LayerNorm_2/scale", "ln_2/beta": "LayerNorm_2/bias",
               **{f"mha/{part}/{leaf}": f"MultiHeadDotProductAttention_1/{part}/{leaf}"
                  for part in ("query", "key", "value") for leaf in ("kernel", "bias")},
               "mha/attention_output/kernel": "MultiHeadDotProductAttention_1/out/kernel",
               "mha/attention_output/bias": "MultiHeadDotProductAttention_1/out/bias",
               "mlp/dense_1/kernel": "MlpBlock_3/Dense_0/kernel", "mlp/dense_1/bias": "MlpBlock_3/Dense_0/bias",
               "mlp/dense_2/kernel": "MlpBlock_3/Dense_1/kernel", "mlp/dense_2/bias": "MlpBlock_3/Dense_1/bias"}
NAMES = {"vit_patching_and_embedding/class_token": "cls",
         "vit_patching_and_embedding/patch_embedding/kernel": "embedding/kernel",
         "vit_patching_and_embedding/patch_embedding/bias": "embedding/bias",
         "vit_patching_and_embedding/position_embedding/embeddings": "Transformer/posembed_input/pos_embedding",
         "vit_encoder/ln/gamma": "Transformer/encoder_norm/scale",
         "vit_encoder/ln/beta": "Transformer/encoder_norm/bias"}


def read_backbone(path):
    """(weights by keras-hub's variable path, the backbone's config) of the preset folder holding `path`."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        config = json.loads(path.with_name("config.json").read_text())
    except (OSError, ValueError):
        raise CheckpointError(f"{path} has no readable config.json beside it; give the model.weights.h5 of a "
                              "keras-hub preset folder (backbone.save_to_preset(folder))") from None
    if not isinstance(config, dict) or config.get("class_name") != "ViTBackbone":
        raise CheckpointError(f"{path.with_name('config.json')} is not a keras-hub ViTBackbone's config "
                              f"(class_name {config.get('class_name') if isinstance(config, dict) else None!r})")
    try:
        import keras_hub
    except ImportError:
        raise CheckpointError(f"{path} is a keras-hub preset, which keras-hub reads: pip install -r "
                              "requirements-peers.txt") from None
    backbone = keras_hub.models.ViTBackbone.from_config(config["config"])
    try:
        backbone.load_weights(str(path))
    except Exception as error:  # noqa: BLE001  (h5py and Keras raise many types for a damaged file)
        raise CheckpointError(f"{path} does not load into the ViTBackbone of its config.json "
                              f"({first_line(error)})") from None
    weights = {variable.path: np.asarray(variable.numpy()) for variable in backbone.weights}
    return weights, config["config"]


def released_from_keras_hub(weights, config, path="the checkpoint"):
    """A ViTBackbone's weights under the authors' .npz names and layouts, or a CheckpointError for a setting
    these layers cannot express."""
    missing = [name for name in ("use_mha_bias", "use_mlp_bias", "use_patch_bias") if not config.get(name, True)]
    if missing:
        raise CheckpointError(f"{path} is a ViTBackbone with {', '.join(missing)}=False; these layers have biases "
                              "everywhere, as the paper's")
    arrays = {}
    for name, value in weights.items():
        block = BLOCK.fullmatch(name)
        if name in NAMES:
            arrays[NAMES[name]] = value
        elif block and block.group(2) in BLOCK_NAMES:
            arrays[f"Transformer/encoderblock_{int(block.group(1)) - 1}/{BLOCK_NAMES[block.group(2)]}"] = value
        else:
            raise CheckpointError(f"{path} has {name}, which these layers have no place for")
    table = "Transformer/posembed_input/pos_embedding"
    arrays[table] = arrays[table][None]  # (T, D) -> (1, T, D)
    return arrays
