"""The paper's model analyses (section 4.5, appendix D.7-D.8) and Grad-CAM, in numpy."""

import keras
import numpy as np

import vit_tf


def attention_rollout(attention, prefix_tokens=1):
    """Attention rollout (Abnar & Zuidema 2020), as the paper's Figures 6 and 14 use it.

    attention: per block, (B, k, T, T). Heads are averaged, the residual is added as
    0.5 A + 0.5 I (rows renormalised), and the blocks are multiplied, the last one on the left.
    Returns (B, N): how much each patch feeds the class token (or, without one, the mean token);
    `prefix_tokens` (class, distillation) come before the N patches.
    """
    rollout = None
    for weights in attention:
        mixed = 0.5 * np.asarray(weights, dtype=np.float64).mean(axis=1) + 0.5 * np.eye(weights.shape[-1])
        mixed /= mixed.sum(axis=-1, keepdims=True)
        rollout = mixed if rollout is None else mixed @ rollout
    if prefix_tokens:
        return rollout[:, 0, prefix_tokens:]
    return rollout.mean(axis=1)


def mean_attention_distance(attention, grid_size, patch_size, prefix_tokens=1):
    """Mean attention distance in pixels, (L, k): Figure 7 (right) and Figure 11.

    For each head, the distance between query and key patch centres weighted by the attention
    weight, averaged over query patches and images. The class (and distillation) token has no
    position, so its rows and columns are left out and each query's patch weights are renormalised.
    """
    rows, cols = np.divmod(np.arange(grid_size * grid_size), grid_size)
    centres = np.stack([rows, cols], axis=1) * patch_size
    distances = np.linalg.norm(centres[:, None, :] - centres[None, :, :], axis=-1)  # (N, N)
    result = []
    for weights in attention:
        weights = np.asarray(weights, dtype=np.float64)
        weights = weights[..., prefix_tokens:, prefix_tokens:]
        weights = weights / weights.sum(axis=-1, keepdims=True)
        result.append((weights * distances).sum(axis=-1).mean(axis=(0, 2)))  # mean over images, queries
    return np.stack(result)


def position_similarity(model):
    """Cosine similarity of the learned position embeddings, (N, N): Figure 7 (centre)."""
    table = keras.ops.convert_to_numpy(model.get_layer("position_embedding").position_embedding)[0]
    table = table[vit_tf.prefix_tokens(model):]  # the class (and distillation) token rows have no place on the grid
    unit = table / np.linalg.norm(table, axis=1, keepdims=True)
    return unit @ unit.T


def embedding_filter_components(model, count=28):
    """The first principal components of the patch-embedding filters: Figure 7 (left).

    Each of the D columns of E is a P x P x 3 filter; the components of those D filters are
    returned as (count, P, P, 3) images scaled to [0, 1] each.
    """
    layer = model.get_layer("patch_embedding")
    kernel = keras.ops.convert_to_numpy(layer.projection.kernel)  # (P^2 C, D)
    filters = kernel.T - kernel.T.mean(axis=0)
    _, _, components = np.linalg.svd(filters, full_matrices=False)
    components = components[: min(count, len(components))]
    low, high = components.min(axis=1, keepdims=True), components.max(axis=1, keepdims=True)
    scaled = (components - low) / np.maximum(high - low, 1e-12)
    return scaled.reshape(-1, layer.patch_size, layer.patch_size, 3)


def grad_cam(model, images):
    """Grad-CAM maps (B, h, w) in [0, 1] for each image's predicted class, for the ResNet baseline.

    In this network the last activation A (B, h, w, K') is global-average-pooled and fed to one Dense
    layer, so d logit_c / d A^k = W[k, c] / (h w) at every position: Grad-CAM's channel weights are
    the head's weights, and no backward pass is needed (Grad-CAM equals CAM here; Selvaraju et al.
    2017, section 3.1).
    """
    features_model = keras.Model(model.input, [model.get_layer("head_relu").output, model.output])
    features, logits = (keras.ops.convert_to_numpy(t) for t in features_model(images))
    kernel = keras.ops.convert_to_numpy(model.get_layer("head").kernel)  # (K', classes)
    weights = kernel[:, logits.argmax(axis=1)].T / (features.shape[1] * features.shape[2])  # (B, K')
    maps = np.maximum(np.einsum("bhwk,bk->bhw", features, weights), 0)
    return maps / np.maximum(maps.max(axis=(1, 2), keepdims=True), 1e-12)
