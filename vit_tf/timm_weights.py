"""timm's ViT weights (`vit_*`, `deit_*`), in both directions: a timm state dict as the authors' released
layout, so that `vit_tf.checkpoint.load_pretrained` loads it the one way it loads every checkpoint, and a
`build_vit` model as a timm state dict with the arguments that rebuild it.

timm's `VisionTransformer` is the paper's model under other names: `patch_embed.proj` is E as a (D, C, P, P)
convolution, `blocks.i.norm1/attn/norm2/mlp` are eqs. 2-3, `norm` is eq. 4's LayerNorm, PyTorch Linear
weights are (out, in), the transpose of a Keras kernel. `attn.qkv` stacks q, k and v (each D rows, head
after head), and the number of heads is not in the file: it comes from the file's metadata or the
`config.json` beside it when they say, else from the model (the report says which). timm's ViTs use exact
GELU (the authors: tanh), so the model must be built with `approximate_gelu=False`. Pixels: timm's AugReg
ViTs take (x - 0.5) / 0.5, as our `rescale`; DeiT's weights were trained on ImageNet's mean and std.
"""

import json
import math
import pathlib

import numpy as np

from model_parts.checkpoint import CheckpointError, first_line, json_field
from model_parts.safetensors_file import read_safetensors

TIMM_HEADS = {"tiny": 3, "small": 6, "base": 12, "large": 16, "huge": 16}  # timm's ViT and DeiT sizes
# timm parts with no counterpart in these layers: loading them would give another model's logits
NOT_EXPRESSED = {"fc_norm": "a LayerNorm after average pooling", "ls1": "layer scale (DeiT III, CaiT)",
                 "ls2": "layer scale (DeiT III, CaiT)", "reg_token": "register tokens", "norm_pre": "a LayerNorm "
                 "before the encoder (CLIP)", "q_norm": "query normalisation", "k_norm": "key normalisation",
                 "attn_pool": "attention pooling (MAP head)", "head_hid": "a hidden head layer",
                 "norm1_post": "post-normalisation", "pos_embed_prefix": "separate prefix position embeddings"}
# What loading reads of a timm model's description (its file's metadata, or the config.json beside it), and the
# sizes such a description gives: checked, so that a config that lies is refused rather than half-believed
DESCRIPTION = {"num_heads": int, "architecture": str, "global_pool": str}
SIZES = ("num_classes", "num_features", "embed_dim", "depth")


def read_state_dict(path):
    """(arrays by timm key, what the file says of its model: a dict of the checked `DESCRIPTION` fields, maybe
    empty) of a .safetensors file or, with PyTorch installed, a .pth/.bin loaded with `weights_only=True` (which
    refuses pickled code). A config.json beside it (as the Hugging Face hub keeps timm's model arguments) is read
    too; the file's own metadata wins."""
    path = pathlib.Path(path)
    if path.suffix == ".safetensors":
        arrays, metadata = read_safetensors(path)
    else:
        arrays, metadata = _read_torch(path), {}
    beside = path.with_name("config.json")
    described = _config_description(beside) if beside.is_file() else {}
    return arrays, {**described, **_metadata_description(metadata, path)}


def _config_description(path):
    """The `DESCRIPTION` fields of a timm config.json (its model_args, then its top level, which wins), each of
    its JSON type and range, and its `SIZES` whole numbers of at least 0; else a CheckpointError naming the field."""
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as error:
        raise CheckpointError(f"{path}, beside the weights, is not readable JSON ({first_line(error)}); fix it or "
                              "move it away") from None
    if not isinstance(config, dict):
        raise CheckpointError(f"{path}, beside the weights, is not a table of a timm model's arguments")
    described = {}
    for table, where in ((json_field(config, "model_args", dict, path) or {}, f"{path} (model_args)"), (config, path)):
        for name in SIZES:
            json_field(table, name, int, where, minimum=0)
        for name, kind in DESCRIPTION.items():
            value = json_field(table, name, kind, where, minimum=1 if kind is int else None)
            if value is not None:
                described[name] = value
    return described


def _metadata_description(metadata, path):
    """The `DESCRIPTION` fields of a .safetensors file's metadata, where every value is text (the format's rule):
    num_heads must be the digits of a whole number of at least 1."""
    described = {name: metadata[name] for name in DESCRIPTION if name in metadata}
    heads = described.get("num_heads")
    if heads is not None:
        if not (heads.isascii() and heads.isdigit() and int(heads) >= 1):
            raise CheckpointError(f"{path}: its metadata gives num_heads as {heads[:40]!r}; it must be a whole "
                                  "number of at least 1")
        described["num_heads"] = int(heads)
    return described


def _read_torch(path):
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path} is a PyTorch pickle, which needs PyTorch to read (pip install torch); or "
                              "give the .safetensors file of the same weights") from None
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # refuses pickled code
    except Exception as error:  # noqa: BLE001  (torch raises many types for a bad or unsafe file)
        raise CheckpointError(f"{path} is not a PyTorch state dict that loads without running code "
                              f"({first_line(error)})") from None
    state = state.get("state_dict", state.get("model", state)) if isinstance(state, dict) else state
    if not isinstance(state, dict) or not all(isinstance(key, str) and hasattr(value, "numpy")
                                              for key, value in state.items()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors by name")
    try:
        return {key: value.detach().float().numpy() if value.dtype.is_floating_point else value.numpy()
                for key, value in state.items()}
    except (TypeError, RuntimeError) as error:  # a sparse or quantized tensor has no plain numpy form
        raise CheckpointError(f"{path} holds a tensor that is not a plain array ({first_line(error)})") from None


def heads_of(metadata, model_heads):
    """(heads, where that came from): the file's metadata or config.json (its model arguments, or the size in
    timm's model name, e.g. vit_small_patch16_224), else the model's."""
    if metadata.get("num_heads") is not None:
        return int(metadata["num_heads"]), "the file's metadata"
    name = str(metadata.get("architecture", ""))
    family, _, rest = name.partition("_")
    size = rest.partition("_")[0]
    if family in ("vit", "deit") and size in TIMM_HEADS:
        return TIMM_HEADS[size], f"timm's name {name} in config.json"
    return model_heads, "the model's (timm files do not store it)"


def released_from_timm(state, num_heads, path="the checkpoint", global_pool=None):
    """A timm ViT or DeiT state dict under the authors' .npz names and layouts (plus `dist` and `head_dist/*` for
    DeiT's distillation token and head), or a CheckpointError for a part these layers cannot express."""
    stripped = {key.removeprefix("module."): value for key, value in state.items()}  # DataParallel's prefix
    if len(stripped) != len(state):
        raise CheckpointError(f"{path} has keys both with and without the prefix module.; which to load is unclear")
    state = stripped
    for key in state:
        part = next((name for name in NOT_EXPRESSED if f".{name}." in f".{key}"), None)
        if part:
            raise CheckpointError(f"{path} has timm's {key}: {NOT_EXPRESSED[part]}, which vit_tf's layers do not "
                                  "have; this model cannot be loaded exactly")
    if "patch_embed.proj.weight" not in state:
        raise CheckpointError(f"{path} has no patch_embed.proj.weight: not a timm ViT state dict "
                              f"(its first keys: {', '.join(sorted(state)[:4])})")
    if global_pool not in (None, "token", "avg", ""):
        raise CheckpointError(f"{path} pools with timm's global_pool={global_pool!r}; these layers read out the "
                              "class token or the mean of the tokens")
    if global_pool == "avg" and "cls_token" in state:
        raise CheckpointError(f"{path} averages the patch tokens of a model with a class token; these layers "
                              "average only where there is no class token (classifier 'gap')")
    taken = set()
    weight = np.asarray(state["patch_embed.proj.weight"])
    if weight.ndim != 4 or min(weight.shape) < 1:
        raise CheckpointError(f"{path}: patch_embed.proj.weight has shape {weight.shape}, not timm's (D, 3, P, P)")
    hidden = weight.shape[0]
    if hidden % num_heads:
        raise CheckpointError(f"{path}: {num_heads} heads do not divide its hidden size {hidden}")
    split = (hidden, num_heads, hidden // num_heads)

    def take(key, shape=None, ndim=None):
        """state[key], once there and, where the conversion reshapes it, of the shape that allows."""
        if key not in state:
            raise CheckpointError(f"{path} has no {key}, which a timm ViT has; is it damaged, or another model?")
        taken.add(key)
        value = np.asarray(state[key])
        if (shape is not None and value.shape != shape) or (ndim is not None and value.ndim != ndim):
            raise CheckpointError(f"{path}: {key} has shape {value.shape}, not {shape or f'{ndim} axes'}, as in a "
                                  f"timm ViT of hidden size {hidden}")
        return value

    arrays = {"embedding/kernel": take("patch_embed.proj.weight").transpose(2, 3, 1, 0),  # (D,C,P,P) -> (P,P,C,D)
              "embedding/bias": take("patch_embed.proj.bias"),
              "Transformer/posembed_input/pos_embedding": take("pos_embed", ndim=3),
              "Transformer/encoder_norm/scale": take("norm.weight"),
              "Transformer/encoder_norm/bias": take("norm.bias")}
    prefix_rows = int("cls_token" in state) + int("dist_token" in state)
    patches = arrays["Transformer/posembed_input/pos_embedding"].shape[1] - prefix_rows
    if prefix_rows and patches > 0 and math.isqrt(patches) ** 2 != patches:
        raise CheckpointError(f"{path}: pos_embed has no row for the class token (timm's no_embed_class); these "
                              "layers add a position to every token")
    for ours, theirs in (("cls", "cls_token"), ("dist", "dist_token"), ("head/kernel", "head.weight"),
                         ("head/bias", "head.bias"), ("head_dist/kernel", "head_dist.weight"),
                         ("head_dist/bias", "head_dist.bias"), ("pre_logits/kernel", "pre_logits.fc.weight"),
                         ("pre_logits/bias", "pre_logits.fc.bias")):
        if theirs in state:
            value = take(theirs)
            arrays[ours] = value.T if theirs.endswith("weight") else value
    index = 0
    while f"blocks.{index}.norm1.weight" in state:
        block, to = f"blocks.{index}.", f"Transformer/encoderblock_{index}/"
        attention = f"{to}MultiHeadDotProductAttention_1/"
        for norm, name in (("norm1", "LayerNorm_0"), ("norm2", "LayerNorm_2")):
            arrays[f"{to}{name}/scale"], arrays[f"{to}{name}/bias"] = (take(f"{block}{norm}.weight"),
                                                                      take(f"{block}{norm}.bias"))
        # rows: q, k, v, head after head
        qkv = take(f"{block}attn.qkv.weight", (3 * hidden, hidden)).reshape(3, *split[1:], hidden)
        bias = take(f"{block}attn.qkv.bias", (3 * hidden,)).reshape(3, *split[1:])
        for number, name in enumerate(("query", "key", "value")):
            arrays[f"{attention}{name}/kernel"] = qkv[number].transpose(2, 0, 1)  # (D, heads, D_h)
            arrays[f"{attention}{name}/bias"] = bias[number]
        out = take(f"{block}attn.proj.weight", (hidden, hidden))
        arrays[f"{attention}out/kernel"] = out.T.reshape(split[1:] + split[:1])
        arrays[f"{attention}out/bias"] = take(f"{block}attn.proj.bias")
        for dense, name in (("fc1", "Dense_0"), ("fc2", "Dense_1")):
            arrays[f"{to}MlpBlock_3/{name}/kernel"] = take(f"{block}mlp.{dense}.weight").T
            arrays[f"{to}MlpBlock_3/{name}/bias"] = take(f"{block}mlp.{dense}.bias")
        index += 1
    left = sorted(set(state) - taken)
    if left:
        raise CheckpointError(f"{path} has {len(left)} timm array(s) these layers have no place for, e.g. {left[0]}; "
                              "is it a timm ViT of another kind?")
    return arrays


def timm_state_dict(model):
    """A `build_vit` model's weights as a timm VisionTransformer (or VisionTransformerDistilled) state dict of
    numpy arrays."""
    from vit_tf.layers import EncoderBlock

    names = {layer.name for layer in model.layers}
    embedding = model.get_layer("patch_embedding")
    kernel, bias = _values(embedding.projection)
    patch, hidden = embedding.patch_size, embedding.hidden_dim
    state = {"patch_embed.proj.weight": kernel.reshape(patch, patch, -1, hidden).transpose(3, 2, 0, 1),
             "patch_embed.proj.bias": bias}
    if "class_token" in names:
        state["cls_token"] = _values(model.get_layer("class_token"))[0]
    if "distillation_token" in names:
        state["dist_token"] = _values(model.get_layer("distillation_token"))[0]
    state["pos_embed"] = _values(model.get_layer("position_embedding"))[0]
    for index, block in enumerate(layer for layer in model.layers if isinstance(layer, EncoderBlock)):
        to = f"blocks.{index}."
        attention = block.attention
        state[f"{to}norm1.weight"], state[f"{to}norm1.bias"] = _values(block.attention_norm)
        state[f"{to}attn.qkv.weight"] = np.concatenate([_values(dense)[0].T for dense in
                                                        (attention.query, attention.key, attention.value)])
        state[f"{to}attn.qkv.bias"] = np.concatenate([_values(dense)[1] for dense in
                                                      (attention.query, attention.key, attention.value)])
        state[f"{to}attn.proj.weight"], state[f"{to}attn.proj.bias"] = _linear(attention.output_projection)
        state[f"{to}norm2.weight"], state[f"{to}norm2.bias"] = _values(block.mlp_norm)
        state[f"{to}mlp.fc1.weight"], state[f"{to}mlp.fc1.bias"] = _linear(block.mlp.dense_in)
        state[f"{to}mlp.fc2.weight"], state[f"{to}mlp.fc2.bias"] = _linear(block.mlp.dense_out)
    state["norm.weight"], state["norm.bias"] = _values(model.get_layer("encoder_norm"))
    state["head.weight"], state["head.bias"] = _linear(model.get_layer("head"))
    if "head_distillation" in names:
        state["head_dist.weight"], state["head_dist.bias"] = _linear(model.get_layer("head_distillation"))
    return state


def timm_arguments(model):
    """(the timm class, its keyword arguments) that build the architecture of `timm_state_dict(model)`, or a
    CheckpointError for a model timm's VisionTransformer does not express."""
    from vit_tf.hybrid import stem_layers
    from vit_tf.layers import EncoderBlock

    names = {layer.name for layer in model.layers}
    if "pre_logits" in names:
        raise CheckpointError("timm's VisionTransformer has no pre-logits layer (representation_size); export a "
                              "model built without one")
    if stem_layers(model):
        raise CheckpointError("the hybrid's ResNet stem is not exported to timm; export a plain ViT")
    blocks = [layer for layer in model.layers if isinstance(layer, EncoderBlock)]
    embedding = model.get_layer("patch_embedding")
    token = "class_token" in names
    arguments = dict(img_size=int(model.input_shape[1]), patch_size=embedding.patch_size, num_classes=int(
        model.get_layer("head").units), embed_dim=embedding.hidden_dim, depth=len(blocks),
        num_heads=blocks[0].num_heads, mlp_ratio=blocks[0].mlp_dim / embedding.hidden_dim, qkv_bias=True,
        class_token=token, global_pool="token" if token else "avg", fc_norm=False,
        act_layer="gelu" if not blocks[0].approximate_gelu else "gelu_tanh")
    kind = "timm.models.deit.VisionTransformerDistilled" if "distillation_token" in names else \
        "timm.models.vision_transformer.VisionTransformer"
    return kind, arguments


def _values(layer):
    return [np.asarray(variable.numpy()) for variable in layer.weights]


def _linear(dense):
    """A Keras Dense layer's (kernel, bias) as PyTorch Linear's (weight (out, in), bias)."""
    kernel, bias = _values(dense)
    return kernel.T, bias
