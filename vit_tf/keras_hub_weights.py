"""keras-hub's ViT, saved locally, as the authors' released layout, so that `vit_tf.checkpoint.load_pretrained`
loads it the one way it loads every checkpoint. A preset folder holds a `ViTBackbone` (`config.json`,
`model.weights.h5`: `backbone.save_to_preset(folder)`) and, when a `ViTImageClassifier` saved it, its head
too (`task.json`, `task.weights.h5`: `classifier.save_to_preset(folder)`).

keras-hub's ViT is the paper's model in Keras with the authors' kernel layouts ((P, P, C, D) patch kernel,
(D, heads, D_h) q/k/v, (heads, D_h, D) output), under its own names: `ln_1`, `mha`, `ln_2`, `mlp/dense_1..2`
per `transformer_block_{i + 1}`, the final `ln`; the classifier's `pre_logits` (tanh) and `predictions`
layers are the authors' `pre_logits` and `head`. It uses the exact GELU (Keras' default), as timm. keras-hub
builds the model from its config and reads the weights (its own format); nothing is unpickled.
"""

import json
import pathlib
import re

import numpy as np

from model_parts.checkpoint import CheckpointError, first_line, json_field

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
         "vit_encoder/ln/beta": "Transformer/encoder_norm/bias",
         **{f"{layer}/{leaf}": f"{ours}/{leaf}" for layer, ours in (("predictions", "head"),
                                                                    ("pre_logits", "pre_logits"))
            for leaf in ("kernel", "bias")}}


def read_backbone(path):
    """(weights by keras-hub's variable path, the backbone's config) of the preset folder holding `path`; with the
    classifier's head (`predictions/...`, `pre_logits/...`) where the folder holds a ViTImageClassifier."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    folder = path.parent
    try:
        config = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        raise CheckpointError(f"{path} has no readable config.json beside it; give the model.weights.h5 of a "
                              "keras-hub preset folder (backbone.save_to_preset(folder))") from None
    if not isinstance(config, dict) or config.get("class_name") != "ViTBackbone":
        raise CheckpointError(f"{folder / 'config.json'} is not a keras-hub ViTBackbone's config "
                              f"(class_name {config.get('class_name') if isinstance(config, dict) else None!r})")
    try:
        import keras_hub
    except ImportError:
        raise CheckpointError(f"{path} is a keras-hub preset, which keras-hub reads: pip install -r "
                              "requirements-peers.txt") from None
    settings = checked_settings(config.get("config"), folder / "config.json", folder / "model.weights.h5")
    if (folder / "task.json").is_file() and (folder / "task.weights.h5").is_file():
        model = read_classifier(keras_hub, folder)
    else:
        try:
            model = keras_hub.models.ViTBackbone.from_config(settings)
        except Exception as error:  # noqa: BLE001  (keras-hub refuses settings with many types)
            raise CheckpointError(f"{folder / 'config.json'} describes no ViTBackbone keras-hub can build "
                                  f"({first_line(error)})") from None
        weights_file = folder / "model.weights.h5" if path.name == "task.weights.h5" else path
        try:
            model.load_weights(str(weights_file))
        except Exception as error:  # noqa: BLE001  (h5py and Keras raise many types for a damaged file)
            raise CheckpointError(f"{weights_file} does not load into the ViTBackbone of its config.json "
                                  f"({first_line(error)})") from None
    weights = {variable.path: np.asarray(variable.numpy()) for variable in model.weights}
    return weights, settings


def checked_settings(settings, where, weights_file):
    """A ViTBackbone's settings from its config.json, once its sizes are whole numbers of at least 1 (the heads
    dividing the width), its switches true or false, and the encoder they describe no larger than its weights
    file holds (keras-hub builds the model before it reads a weight); else a CheckpointError naming the field."""
    if not isinstance(settings, dict):
        raise CheckpointError(f"{where} has no table of the backbone's settings under \"config\"")
    layers, heads, hidden, mlp = (json_field(settings, name, int, where, minimum=1, required=True)
                                  for name in ("num_layers", "num_heads", "hidden_dim", "mlp_dim"))
    for name in ("use_mha_bias", "use_mlp_bias", "use_class_token", "use_patch_bias"):
        json_field(settings, name, bool, where)
    if hidden % heads:
        raise CheckpointError(f"{where}: num_heads {heads} does not divide hidden_dim {hidden}")
    least = layers * (4 * hidden + 2 * mlp) * hidden  # the encoder's kernels alone
    if weights_file.is_file() and least > weights_file.stat().st_size:  # a byte a weight at the least (int8)
        raise CheckpointError(f"{where} describes an encoder of at least {least:,} weights, more than "
                              f"{weights_file.name} ({weights_file.stat().st_size:,} bytes) holds")
    return settings


def read_classifier(keras_hub, folder):
    """The ViTImageClassifier saved in `folder`, weights loaded, once its head computes the authors' head: logits
    (a softmax after them changes no prediction) read out the way its backbone has tokens for."""
    try:
        task = json.loads((folder / "task.json").read_text())
    except (OSError, ValueError):
        raise CheckpointError(f"{folder / 'task.json'} is not readable JSON") from None
    settings = task.get("config") if isinstance(task, dict) else None
    if not isinstance(settings, dict) or task.get("class_name") != "ViTImageClassifier":
        raise CheckpointError(f"{folder / 'task.json'} is not a keras-hub ViTImageClassifier's config "
                              f"(class_name {task.get('class_name') if isinstance(task, dict) else None!r})")
    if settings.get("activation") not in (None, "softmax", "linear"):
        raise CheckpointError(f"{folder / 'task.json'}: the head's activation is {settings['activation']!r}; "
                              "only logits (None) or a softmax over them can be loaded as the model's head")
    class_token = bool(settings.get("backbone", {}).get("config", {}).get("use_class_token", True))
    if settings.get("pooling", "token") != ("token" if class_token else "gap"):
        raise CheckpointError(f"{folder / 'task.json'}: the head reads out {settings.get('pooling')!r} from a "
                              f"backbone {'with' if class_token else 'without'} a class token; these models read "
                              "out the class token (eq. 4), or average the tokens of a backbone without one")
    try:
        return keras_hub.models.ViTImageClassifier.from_preset(str(folder))
    except Exception as error:  # noqa: BLE001  (h5py, Keras and keras-hub raise many types for a damaged file)
        raise CheckpointError(f"{folder} does not load as the keras-hub ViTImageClassifier of its task.json "
                              f"({first_line(error)})") from None


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
