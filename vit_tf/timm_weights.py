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
import pathlib

import numpy as np

from model_parts.checkpoint import CheckpointError, first_line
from model_parts.safetensors_file import read_safetensors

TIMM_HEADS = {"tiny": 3, "small": 6, "base": 12, "large": 16, "huge": 16}  # timm's ViT and DeiT sizes
# timm parts with no counterpart in these layers: loading them would give another model's logits
NOT_EXPRESSED = {"fc_norm": "a LayerNorm after average pooling", "ls1": "layer scale (DeiT III, CaiT)",
                 "ls2": "layer scale (DeiT III, CaiT)", "reg_token": "register tokens", "norm_pre": "a LayerNorm "
                 "before the encoder (CLIP)", "q_norm": "query normalisation", "k_norm": "key normalisation",
                 "attn_pool": "attention pooling (MAP head)", "head_hid": "a hidden head layer",
                 "norm1_post": "post-normalisation", "pos_embed_prefix": "separate prefix position embeddings"}


def read_state_dict(path):
    """(arrays by timm key, what the file says of its model: a dict, maybe empty) of a .safetensors file or, with
    PyTorch installed, a .pth/.bin loaded with `weights_only=True` (which refuses pickled code)."""
    path = pathlib.Path(path)
    if path.suffix == ".safetensors":
        arrays, metadata = read_safetensors(path)
    else:
        arrays, metadata = _read_torch(path), {}
    beside = path.with_name("config.json")  # the Hugging Face hub keeps timm's model arguments there
    if beside.is_file():
        try:
            config = json.loads(beside.read_text())
            metadata = {**config.get("model_args", {}), **config, **metadata}
        except (OSError, ValueError, AttributeError):
            pass  # a config.json of something else: the file's own arrays decide
    return arrays, metadata


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
    if not isinstance(state, dict) or not all(hasattr(value, "numpy") for value in state.values()):
        raise CheckpointError(f"{path} does not hold a state dict of tensors")
    return {key: value.detach().float().numpy() if value.dtype.is_floating_point else value.numpy()
            for key, value in state.items()}


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
    state = {key.removeprefix("module."): value for key, value in state.items()}
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

    def take(key):
        taken.add(key)
        return np.asarray(state[key])

    hidden = state["patch_embed.proj.weight"].shape[0]
    if hidden % num_heads:
        raise CheckpointError(f"{path}: {num_heads} heads do not divide its hidden size {hidden}")
    split = (hidden, num_heads, hidden // num_heads)
    arrays = {"embedding/kernel": take("patch_embed.proj.weight").transpose(2, 3, 1, 0),  # (D,C,P,P) -> (P,P,C,D)
              "embedding/bias": take("patch_embed.proj.bias"),
              "Transformer/posembed_input/pos_embedding": take("pos_embed"),
              "Transformer/encoder_norm/scale": take("norm.weight"),
              "Transformer/encoder_norm/bias": take("norm.bias")}
    prefix_rows = int("cls_token" in state) + int("dist_token" in state)
    patches = arrays["Transformer/posembed_input/pos_embedding"].shape[1] - prefix_rows
    if prefix_rows and int(np.sqrt(patches)) ** 2 != patches:
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
        qkv = take(f"{block}attn.qkv.weight").reshape(3, *split[1:], hidden)  # rows: q, k, v, head after head
        bias = take(f"{block}attn.qkv.bias").reshape(3, *split[1:])
        for number, name in enumerate(("query", "key", "value")):
            arrays[f"{attention}{name}/kernel"] = qkv[number].transpose(2, 0, 1)  # (D, heads, D_h)
            arrays[f"{attention}{name}/bias"] = bias[number]
        arrays[f"{attention}out/kernel"] = take(f"{block}attn.proj.weight").T.reshape(split[1:] + split[:1])
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
