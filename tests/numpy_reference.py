"""The paper's equations written directly in numpy, to check the Keras layers against."""

import math

import numpy as np


def layer_norm(x, scale, bias, epsilon=1e-6):
    mean = x.mean(-1, keepdims=True)
    variance = x.var(-1, keepdims=True)
    return (x - mean) / np.sqrt(variance + epsilon) * scale + bias


def softmax(x):
    e = np.exp(x - x.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def gelu_tanh(x):
    return 0.5 * x * (1 + np.tanh(math.sqrt(2 / math.pi) * (x + 0.044715 * x**3)))


def gelu_exact(x):
    """x Phi(x), Phi the standard normal's distribution function (timm's and keras-hub's GELU)."""
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def self_attention(z, w, num_heads):
    """Appendix A, eqs. 5-8, one head at a time. `w` maps names to (kernel, bias)."""
    tokens, hidden = z.shape
    head_dim = hidden // num_heads
    q, k, v = (z @ w[name][0] + w[name][1] for name in ("query", "key", "value"))
    heads = []
    for h in range(num_heads):
        part = slice(h * head_dim, (h + 1) * head_dim)
        attention = softmax(q[:, part] @ k[:, part].T / math.sqrt(head_dim))  # A, (T, T)
        heads.append(attention @ v[:, part])  # SA
    return np.concatenate(heads, axis=-1) @ w["output"][0] + w["output"][1]


def encoder_block(z, w, num_heads, gelu=gelu_tanh):
    """Eqs. 2 and 3 for one image, z of shape (T, D)."""
    z = self_attention(layer_norm(z, *w["attention_norm"]), w, num_heads) + z
    hidden = gelu(layer_norm(z, *w["mlp_norm"]) @ w["dense_in"][0] + w["dense_in"][1])
    return hidden @ w["dense_out"][0] + w["dense_out"][1] + z
