"""Small checkpoints in the authors' released .npz format, written by the tests themselves (offline), and a
numpy forward pass that reads those arrays in their own layout: the independent reference for loading.

Layout (VIT_FACTS.md, section 5): embedding/kernel (P, P, C, D) and bias; cls (1, 1, D);
Transformer/posembed_input/pos_embedding (1, N + 1, D); per block LayerNorm scale/bias, attention
query/key/value kernels (D, heads, D_h) with (heads, D_h) biases, out kernel (heads, D_h, D);
MlpBlock Dense_0/Dense_1; Transformer/encoder_norm; optional pre_logits; head.
Hybrids add the ResNet stem of `vit_jax/models_resnet.py` (`conv_root`, `gn_root`,
`block{s}/unit{u}/{conv,gn}{1,2,3,_proj}`); BiT files are `big_transfer`'s (`resnet/root_block/...`,
`resnet/block{s}/unit{uu:02d}/{a,b,c}/...`, `resnet/group_norm`, `resnet/head/conv2d`). The numpy
forward passes below follow those codebases' definitions, not our layers.
"""

import math

import numpy as np
from numpy_reference import gelu_tanh, layer_norm, softmax

PRE_LINEN = ("LayerNorm_0", "MultiHeadDotProductAttention_1", "LayerNorm_2", "MlpBlock_3")
LINEN = ("LayerNorm_0", "MultiHeadDotProductAttention_0", "LayerNorm_1", "MlpBlock_0")


def vit_arrays(patch=4, hidden=16, layers=2, mlp=32, heads=2, grid=8, num_classes=10, representation=None,
               names=PRE_LINEN, seed=0):
    """Random weights of a ViT in the released key names and layouts."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(0, 0.2, shape).astype(np.float32)  # noqa: E731
    head_dim = hidden // heads
    arrays = {
        "embedding/kernel": normal(patch, patch, 3, hidden), "embedding/bias": normal(hidden),
        "cls": normal(1, 1, hidden), "Transformer/posembed_input/pos_embedding": normal(1, grid * grid + 1, hidden),
        "Transformer/encoder_norm/scale": 1 + normal(hidden), "Transformer/encoder_norm/bias": normal(hidden),
    }
    norm1, attention, norm2, block_mlp = names
    for index in range(layers):
        prefix = f"Transformer/encoderblock_{index}/"
        for norm in (norm1, norm2):
            arrays[f"{prefix}{norm}/scale"], arrays[f"{prefix}{norm}/bias"] = 1 + normal(hidden), normal(hidden)
        for name in ("query", "key", "value"):
            arrays[f"{prefix}{attention}/{name}/kernel"] = normal(hidden, heads, head_dim)
            arrays[f"{prefix}{attention}/{name}/bias"] = normal(heads, head_dim)
        arrays[f"{prefix}{attention}/out/kernel"] = normal(heads, head_dim, hidden)
        arrays[f"{prefix}{attention}/out/bias"] = normal(hidden)
        (arrays[f"{prefix}{block_mlp}/Dense_0/kernel"],
         arrays[f"{prefix}{block_mlp}/Dense_0/bias"]) = normal(hidden, mlp), normal(mlp)
        (arrays[f"{prefix}{block_mlp}/Dense_1/kernel"],
         arrays[f"{prefix}{block_mlp}/Dense_1/bias"]) = normal(mlp, hidden), normal(hidden)
    width = hidden
    if representation:
        arrays["pre_logits/kernel"], arrays["pre_logits/bias"] = normal(hidden, representation), normal(representation)
        width = representation
    arrays["head/kernel"], arrays["head/bias"] = normal(width, num_classes), normal(num_classes)
    return arrays


def write(path, arrays):
    np.savez(path, **arrays)
    return path


def forward(arrays, images, names=PRE_LINEN):
    """Logits of the released model on raw [0, 255] images, computed from the arrays as stored."""
    norm1, attention, norm2, block_mlp = names
    x = images.astype(np.float64) / 127.5 - 1
    if "conv_root/kernel" in arrays:  # a hybrid: the patches are those of the ResNet's feature map
        x = hybrid_stem(arrays, x)
    kernel = arrays["embedding/kernel"]
    patch = kernel.shape[0]
    batch, size = x.shape[0], x.shape[1]
    grid = size // patch
    tokens = np.zeros((batch, grid * grid, kernel.shape[-1]))
    for i in range(grid):  # the stride-P, PxP convolution, written out
        for j in range(grid):
            window = x[:, i * patch:(i + 1) * patch, j * patch:(j + 1) * patch, :]
            tokens[:, i * grid + j] = np.einsum("bpqc,pqcd->bd", window, kernel) + arrays["embedding/bias"]
    cls = np.broadcast_to(arrays["cls"], (batch, 1, tokens.shape[-1]))
    z = np.concatenate([cls, tokens], axis=1) + arrays["Transformer/posembed_input/pos_embedding"]
    layers = len({key.split("/")[1] for key in arrays if key.startswith("Transformer/encoderblock_")})
    for index in range(layers):
        p = f"Transformer/encoderblock_{index}/"
        y = layer_norm(z, arrays[f"{p}{norm1}/scale"], arrays[f"{p}{norm1}/bias"])
        q, k, v = (np.einsum("btd,dhk->bthk", y, arrays[f"{p}{attention}/{n}/kernel"])
                   + arrays[f"{p}{attention}/{n}/bias"]
                   for n in ("query", "key", "value"))
        weights = softmax(np.einsum("bthk,bshk->bhts", q, k) / math.sqrt(q.shape[-1]))
        heads_out = np.einsum("bhts,bshk->bthk", weights, v)
        z = (z + np.einsum("bthk,hkd->btd", heads_out, arrays[f"{p}{attention}/out/kernel"])
             + arrays[f"{p}{attention}/out/bias"])
        y = layer_norm(z, arrays[f"{p}{norm2}/scale"], arrays[f"{p}{norm2}/bias"])
        hidden = gelu_tanh(y @ arrays[f"{p}{block_mlp}/Dense_0/kernel"] + arrays[f"{p}{block_mlp}/Dense_0/bias"])
        z = z + hidden @ arrays[f"{p}{block_mlp}/Dense_1/kernel"] + arrays[f"{p}{block_mlp}/Dense_1/bias"]
    y = layer_norm(z, arrays["Transformer/encoder_norm/scale"], arrays["Transformer/encoder_norm/bias"])[:, 0]
    if "pre_logits/kernel" in arrays:
        y = np.tanh(y @ arrays["pre_logits/kernel"] + arrays["pre_logits/bias"])
    return y @ arrays["head/kernel"] + arrays["head/bias"]


# ---- ResNets: the hybrid's stem (vit_jax/models_resnet.py) and BiT (big_transfer/bit_pytorch/models.py) ----

def conv(x, kernel, stride=1, padding="SAME"):
    """A convolution; padding "SAME" as TensorFlow/Flax (the extra row and column at the end), or explicit
    ((top, bottom), (left, right))."""
    kh, kw = kernel.shape[:2]
    if padding == "SAME":
        padding = []
        for size, k in ((x.shape[1], kh), (x.shape[2], kw)):
            total = max((-(-size // stride) - 1) * stride + k - size, 0)
            padding.append((total // 2, total - total // 2))
    x = np.pad(x, ((0, 0), *padding, (0, 0)))
    out_h, out_w = (x.shape[1] - kh) // stride + 1, (x.shape[2] - kw) // stride + 1
    out = np.zeros((x.shape[0], out_h, out_w, kernel.shape[-1]))
    for i in range(kh):
        for j in range(kw):
            window = x[:, i:i + stride * (out_h - 1) + 1:stride, j:j + stride * (out_w - 1) + 1:stride]
            out += window @ kernel[i, j]
    return out


def max_pool_same(x):
    """3x3 / 2 max-pool, "SAME" padding (padded cells never win), as Flax's nn.max_pool."""
    size = x.shape[1]
    total = max((-(-size // 2) - 1) * 2 + 3 - size, 0)
    x = np.pad(x, ((0, 0), (total // 2, total - total // 2), (total // 2, total - total // 2), (0, 0)),
               constant_values=-np.inf)
    return max_pool_valid(x)


def max_pool_valid(x):
    out_size = (x.shape[1] - 3) // 2 + 1
    windows = [x[:, i:i + 2 * (out_size - 1) + 1:2, j:j + 2 * (out_size - 1) + 1:2] for i in range(3) for j in range(3)]
    return np.max(windows, axis=0)


def group_norm(x, scale, bias, epsilon, groups=32):
    batch, height, width, channels = x.shape
    grouped = x.reshape(batch, height, width, groups, channels // groups)
    mean = grouped.mean(axis=(1, 2, 4), keepdims=True)
    variance = grouped.var(axis=(1, 2, 4), keepdims=True)
    normalised = ((grouped - mean) / np.sqrt(variance + epsilon)).reshape(x.shape)
    return normalised * np.ravel(scale) + np.ravel(bias)


def hybrid_standardise(kernel):
    """models_resnet.weight_standardize: (w - mean) / (std + 1e-5) over (kh, kw, in)."""
    kernel = kernel - kernel.mean(axis=(0, 1, 2), keepdims=True)
    return kernel / (kernel.std(axis=(0, 1, 2), keepdims=True) + 1e-5)


def bit_standardise(kernel):
    """bit_pytorch StdConv2d: (w - mean) / sqrt(var + 1e-10)."""
    mean, variance = kernel.mean(axis=(0, 1, 2), keepdims=True), kernel.var(axis=(0, 1, 2), keepdims=True)
    return (kernel - mean) / np.sqrt(variance + 1e-10)


def relu(x):
    return np.maximum(x, 0)


def resnet_units(arrays, pattern):
    """{stage: [unit names in order]} of the keys matching `pattern` (groups: stage, unit)."""
    import re
    units = {}
    for key in sorted(arrays):
        match = re.match(pattern, key)
        if match and match.group(2) not in units.setdefault(int(match.group(1)), []):
            units[int(match.group(1))].append(match.group(2))
    return {stage: sorted(names, key=lambda name: int(name[4:])) for stage, names in sorted(units.items())}


def hybrid_stem(arrays, x):
    """The R50 stem of a hybrid: root conv 7x7/2, GN, ReLU, max-pool 3x3/2; post-activation bottlenecks."""
    gn = lambda x, name: group_norm(x, arrays[f"{name}/scale"], arrays[f"{name}/bias"], 1e-6)  # noqa: E731
    wsconv = lambda x, name, stride=1: conv(x, hybrid_standardise(arrays[f"{name}/kernel"]), stride)  # noqa: E731
    x = max_pool_same(relu(gn(wsconv(x, "conv_root", 2), "gn_root")))
    for stage, units in resnet_units(arrays, r"block(\d+)/(unit\d+)/").items():
        for index, unit in enumerate(units):
            p = f"block{stage}/{unit}/"
            stride = 2 if stage > 1 and index == 0 else 1
            shortcut = gn(wsconv(x, p + "conv_proj", stride), p + "gn_proj") if p + "conv_proj/kernel" in arrays else x
            y = relu(gn(wsconv(x, p + "conv1"), p + "gn1"))
            y = relu(gn(wsconv(y, p + "conv2", stride), p + "gn2"))
            x = relu(shortcut + gn(wsconv(y, p + "conv3"), p + "gn3"))
    return x


def resnet_stem_arrays(width=32, blocks=(1,), seed=1, gn_shape=lambda c: (c,)):
    """Random weights of a hybrid's ResNet stem in the authors' Flax names."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)  # noqa: E731
    arrays = {"conv_root/kernel": normal(7, 7, 3, width), "gn_root/scale": 1 + normal(*gn_shape(width)),
              "gn_root/bias": normal(*gn_shape(width))}
    channels = width
    for stage, units in enumerate(blocks):
        mid = width * 2**stage
        for unit in range(units):
            p = f"block{stage + 1}/unit{unit + 1}/"
            shapes = {"conv1": (1, 1, channels, mid), "conv2": (3, 3, mid, mid), "conv3": (1, 1, mid, 4 * mid)}
            if unit == 0:
                shapes["conv_proj"] = (1, 1, channels, 4 * mid)
            for name, shape in shapes.items():
                arrays[f"{p}{name}/kernel"] = normal(*shape)
                norm = name.replace("conv", "gn")
                arrays[f"{p}{norm}/scale"], arrays[f"{p}{norm}/bias"] = (1 + normal(*gn_shape(shape[-1])),
                                                                         normal(*gn_shape(shape[-1])))
            channels = 4 * mid
    return arrays


def hybrid_arrays(width=32, blocks=(1,), hidden=16, layers=2, mlp=32, heads=2, grid=8, num_classes=10, **options):
    """A hybrid checkpoint: the stem, then a ViT with 1x1 patches of the stem's 4 * width * 2^(s-1) channels."""
    arrays = resnet_stem_arrays(width, blocks, **options)
    vit = vit_arrays(patch=1, hidden=hidden, layers=layers, mlp=mlp, heads=heads, grid=grid, num_classes=num_classes)
    channels = 4 * width * 2 ** (len(blocks) - 1)
    vit["embedding/kernel"] = np.random.default_rng(2).normal(0, 0.2, (1, 1, channels, hidden)).astype(np.float32)
    return {**arrays, **vit}


def bit_arrays(width=32, blocks=(1, 1), num_classes=10, seed=3, gn_shape=lambda c: (c,)):
    """Random weights of a BiT ResNet-v2 in big_transfer's names (with the resnet/ prefix)."""
    rng = np.random.default_rng(seed)
    normal = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32)  # noqa: E731
    arrays = {"resnet/root_block/standardized_conv2d/kernel": normal(7, 7, 3, width)}
    channels = width
    for stage, units in enumerate(blocks):
        mid = width * 2**stage
        for unit in range(units):
            p = f"resnet/block{stage + 1}/unit{unit + 1:02d}/"
            for part, (cin, shape) in {"a": (channels, (1, 1, channels, mid)), "b": (mid, (3, 3, mid, mid)),
                                       "c": (mid, (1, 1, mid, 4 * mid))}.items():
                arrays[f"{p}{part}/standardized_conv2d/kernel"] = normal(*shape)
                arrays[f"{p}{part}/group_norm/gamma"] = 1 + normal(*gn_shape(cin))
                arrays[f"{p}{part}/group_norm/beta"] = normal(*gn_shape(cin))
            if unit == 0:
                arrays[f"{p}a/proj/standardized_conv2d/kernel"] = normal(1, 1, channels, 4 * mid)
            channels = 4 * mid
    arrays["resnet/group_norm/gamma"], arrays["resnet/group_norm/beta"] = 1 + normal(channels), normal(channels)
    arrays["resnet/head/conv2d/kernel"] = normal(1, 1, channels, num_classes)
    arrays["resnet/head/conv2d/bias"] = normal(num_classes)
    return arrays


def bit_forward(arrays, images):
    """Logits of BiT's ResNet-v2 (bit_pytorch's ResNetV2) on raw [0, 255] images, from the stored arrays."""
    gn = lambda x, name: group_norm(x, arrays[f"{name}/gamma"], arrays[f"{name}/beta"], 1e-5)  # noqa: E731
    kernel = lambda name: bit_standardise(arrays[f"{name}/standardized_conv2d/kernel"])  # noqa: E731
    x = images.astype(np.float64) / 127.5 - 1
    x = conv(x, kernel("resnet/root_block"), 2, ((3, 3), (3, 3)))
    x = max_pool_valid(np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0))))  # zero padding, then the pool
    for stage, units in resnet_units(arrays, r"resnet/block(\d+)/(unit\d+)/").items():
        for index, unit in enumerate(units):
            p = f"resnet/block{stage}/{unit}/"
            stride = 2 if stage > 1 and index == 0 else 1
            out = relu(gn(x, p + "a/group_norm"))
            shortcut = (conv(out, kernel(p + "a/proj"), stride, ((0, 0), (0, 0)))
                        if p + "a/proj/standardized_conv2d/kernel" in arrays else x)
            y = conv(out, kernel(p + "a"), 1, ((0, 0), (0, 0)))
            y = conv(relu(gn(y, p + "b/group_norm")), kernel(p + "b"), stride, ((1, 1), (1, 1)))
            y = conv(relu(gn(y, p + "c/group_norm")), kernel(p + "c"), 1, ((0, 0), (0, 0)))
            x = y + shortcut
    x = relu(gn(x, "resnet/group_norm")).mean(axis=(1, 2))
    return x @ arrays["resnet/head/conv2d/kernel"][0, 0] + arrays["resnet/head/conv2d/bias"]
