"""Small checkpoints in the authors' released .npz format, written by the tests themselves (offline), and a
numpy forward pass that reads those arrays in their own layout: the independent reference for loading.

Layout (VIT_FACTS.md, section 5): embedding/kernel (P, P, C, D) and bias; cls (1, 1, D);
Transformer/posembed_input/pos_embedding (1, N + 1, D); per block LayerNorm scale/bias, attention
query/key/value kernels (D, heads, D_h) with (heads, D_h) biases, out kernel (heads, D_h, D);
MlpBlock Dense_0/Dense_1; Transformer/encoder_norm; optional pre_logits; head.
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
        arrays[f"{prefix}{block_mlp}/Dense_0/kernel"], arrays[f"{prefix}{block_mlp}/Dense_0/bias"] = normal(hidden, mlp), normal(mlp)
        arrays[f"{prefix}{block_mlp}/Dense_1/kernel"], arrays[f"{prefix}{block_mlp}/Dense_1/bias"] = normal(mlp, hidden), normal(hidden)
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
        q, k, v = (np.einsum("btd,dhk->bthk", y, arrays[f"{p}{attention}/{n}/kernel"]) + arrays[f"{p}{attention}/{n}/bias"]
                   for n in ("query", "key", "value"))
        weights = softmax(np.einsum("bthk,bshk->bhts", q, k) / math.sqrt(q.shape[-1]))
        heads_out = np.einsum("bhts,bshk->bthk", weights, v)
        z = z + np.einsum("bthk,hkd->btd", heads_out, arrays[f"{p}{attention}/out/kernel"]) + arrays[f"{p}{attention}/out/bias"]
        y = layer_norm(z, arrays[f"{p}{norm2}/scale"], arrays[f"{p}{norm2}/bias"])
        hidden = gelu_tanh(y @ arrays[f"{p}{block_mlp}/Dense_0/kernel"] + arrays[f"{p}{block_mlp}/Dense_0/bias"])
        z = z + hidden @ arrays[f"{p}{block_mlp}/Dense_1/kernel"] + arrays[f"{p}{block_mlp}/Dense_1/bias"]
    y = layer_norm(z, arrays["Transformer/encoder_norm/scale"], arrays["Transformer/encoder_norm/bias"])[:, 0]
    if "pre_logits/kernel" in arrays:
        y = np.tanh(y @ arrays["pre_logits/kernel"] + arrays["pre_logits/bias"])
    return y @ arrays["head/kernel"] + arrays["head/bias"]
