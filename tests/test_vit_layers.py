"""Each ViT layer against the paper's equations in numpy (tests/numpy_reference.py)."""

import keras
import numpy as np
import numpy_reference as ref
import pytest
from helpers import numpy_of

from vit_tf import layers as vit_layers
from vit_tf.layers import (
    ClassToken,
    DistillationToken,
    EncoderBlock,
    HeadFusion,
    MlpBlock,
    MultiHeadSelfAttention,
    PatchEmbedding,
    PositionEmbedding,
    TokenPooling,
    extract_patches,
)


def test_patches_are_row_major_and_flattened_row_column_channel():
    image = np.arange(8 * 8 * 3, dtype="float32").reshape(1, 8, 8, 3)
    patches = numpy_of(extract_patches(image, 4))
    assert patches.shape == (1, 4, 48)
    # Patch 1 is the top-right 4x4 block (row-major over the 2x2 grid); inside it, rows, then columns, then channels.
    np.testing.assert_array_equal(patches[0, 1], image[0, 0:4, 4:8, :].reshape(-1))
    np.testing.assert_array_equal(patches[0, 2], image[0, 4:8, 0:4, :].reshape(-1))
    for index, (row, col) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        np.testing.assert_array_equal(patches[0, index],
                                      image[0, 4 * row : 4 * row + 4, 4 * col : 4 * col + 4].reshape(-1))


def test_patch_embedding_is_patches_times_E_plus_bias():
    images = np.random.default_rng(0).normal(size=(2, 8, 8, 3)).astype("float32")
    layer = PatchEmbedding(patch_size=4, hidden_dim=8)
    output = numpy_of(layer(images))
    kernel, bias = (numpy_of(w) for w in layer.projection.weights)
    assert kernel.shape == (48, 8)  # E: (P^2 C, D)
    expected = numpy_of(extract_patches(images, 4)) @ kernel + bias
    np.testing.assert_allclose(output, expected, rtol=1e-5, atol=1e-5)


def test_patch_embedding_equals_stride_p_convolution():
    """The authors implement E as a P x P convolution with stride P; both must agree."""
    images = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    layer = PatchEmbedding(patch_size=4, hidden_dim=8)
    tokens = numpy_of(layer(images))
    conv = keras.layers.Conv2D(8, 4, strides=4)
    conv.build((None, 8, 8, 3))
    kernel, bias = layer.projection.get_weights()
    conv.set_weights([kernel.reshape(4, 4, 3, 8), bias])
    np.testing.assert_allclose(tokens, numpy_of(conv(images)).reshape(2, 4, 8), rtol=1e-5, atol=1e-5)


def test_class_token_is_prepended_at_index_zero():
    tokens = np.random.default_rng(2).normal(size=(3, 4, 8)).astype("float32")
    layer = ClassToken()
    layer.build(tokens.shape)
    np.testing.assert_array_equal(numpy_of(layer.class_token), 0)  # zeros at init, as the authors
    layer.class_token.assign(np.arange(8, dtype="float32").reshape(1, 1, 8))
    output = numpy_of(layer(tokens))
    assert output.shape == (3, 5, 8)
    for b in range(3):
        np.testing.assert_array_equal(output[b, 0], np.arange(8))
    np.testing.assert_array_equal(output[:, 1:], tokens)


def test_position_embedding_adds_one_learned_row_per_token():
    tokens = np.random.default_rng(3).normal(size=(2, 5, 8)).astype("float32")
    layer = PositionEmbedding()
    output = numpy_of(layer(tokens))
    table = numpy_of(layer.position_embedding)
    assert table.shape == (1, 5, 8)
    assert 0.005 < table.std() < 0.05  # N(0, 0.02) init
    np.testing.assert_allclose(output, tokens + table, rtol=1e-6)


def test_attention_on_two_tokens_matches_hand_computation():
    """Two tokens, one head, D = 2, weights chosen so every step can be done by hand."""
    layer = MultiHeadSelfAttention(hidden_dim=2, num_heads=1)
    layer.build((None, 2, 2))
    identity, zero = np.eye(2, dtype="float32"), np.zeros(2, dtype="float32")
    for dense in (layer.query, layer.key, layer.value, layer.output_projection):
        dense.set_weights([identity, zero])
    z = np.array([[[1.0, 0.0], [0.0, 2.0]]], dtype="float32")
    output, weights = layer(z, return_attention_scores=True)
    # Scores q.k / sqrt(2): token 0 -> [1, 0] / sqrt(2); token 1 -> [0, 4] / sqrt(2).
    a0 = np.exp(1 / np.sqrt(2)) / (np.exp(1 / np.sqrt(2)) + 1)
    a1 = 1 / (1 + np.exp(4 / np.sqrt(2)))
    expected_weights = np.array([[a0, 1 - a0], [a1, 1 - a1]])
    np.testing.assert_allclose(numpy_of(weights)[0, 0], expected_weights, rtol=1e-5)
    expected_output = expected_weights @ z[0]  # identity value and output projections
    np.testing.assert_allclose(numpy_of(output)[0], expected_output, rtol=1e-5)


def _block_weights(block):
    """The block's weights by the names numpy_reference.encoder_block uses."""
    attention = block.attention
    pairs = {
        "attention_norm": block.attention_norm,
        "mlp_norm": block.mlp_norm,
        "query": attention.query,
        "key": attention.key,
        "value": attention.value,
        "output": attention.output_projection,
        "dense_in": block.mlp.dense_in,
        "dense_out": block.mlp.dense_out,
    }
    return {name: [numpy_of(w) for w in layer.weights] for name, layer in pairs.items()}


@pytest.mark.parametrize("fused, approximate_gelu", [(True, True), (False, True), (True, False)],
                         ids=["fused", "written-out", "exact-gelu"])
def test_encoder_block_matches_equations_2_and_3(fused, approximate_gelu):
    block = EncoderBlock(hidden_dim=8, num_heads=2, mlp_dim=16, fused_attention=fused,
                         approximate_gelu=approximate_gelu)
    z = np.random.default_rng(4).normal(size=(3, 5, 8)).astype("float32")
    block.build(z.shape)
    rng = np.random.default_rng(5)
    for weight in block.weights:  # non-trivial LayerNorm scales and biases too
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype("float32"))
    output = numpy_of(block(z))
    weights = _block_weights(block)
    for b in range(3):
        gelu = ref.gelu_tanh if approximate_gelu else ref.gelu_exact
        expected = ref.encoder_block(z[b], weights, num_heads=2, gelu=gelu)
        np.testing.assert_allclose(output[b], expected, rtol=1e-4, atol=1e-4)


def test_encoder_block_returns_attention_rows_that_sum_to_one():
    block = EncoderBlock(hidden_dim=8, num_heads=2, mlp_dim=16)
    z = np.random.default_rng(6).normal(size=(2, 5, 8)).astype("float32")
    output, weights = block(z, return_attention_scores=True)
    assert weights.shape == (2, 2, 5, 5)
    np.testing.assert_allclose(numpy_of(weights).sum(-1), 1.0, rtol=1e-5)
    # (atol: the fused attention, SDPA on PyTorch, rounds a few values differently)
    np.testing.assert_allclose(numpy_of(output), numpy_of(block(z)), rtol=1e-6, atol=1e-6)


def test_fused_attention_equals_the_written_out_equation(monkeypatch):
    monkeypatch.setattr(vit_layers, "has_attention_kernel", lambda: True)  # the kernel on every backend
    written_out = MultiHeadSelfAttention(hidden_dim=12, num_heads=3, fused=False)
    fused = MultiHeadSelfAttention(hidden_dim=12, num_heads=3, fused=True)
    z = np.random.default_rng(10).normal(size=(4, 7, 12)).astype("float32")
    written_out.build(z.shape)
    fused.build(z.shape)
    fused.set_weights(written_out.get_weights())
    np.testing.assert_allclose(numpy_of(fused(z)), numpy_of(written_out(z)), rtol=1e-5, atol=1e-6)
    # Weights asked for: the written-out path runs, with the same output.
    output, weights = fused(z, return_attention_scores=True)
    np.testing.assert_allclose(numpy_of(output), numpy_of(written_out(z)), rtol=1e-5, atol=1e-6)
    assert weights.shape == (4, 3, 7, 7)


def test_the_fused_kernel_runs_only_where_the_backend_has_one(monkeypatch):
    """TensorFlow's dot_product_attention, and JAX's on a CPU, are einsums slower than the written-out matmuls."""
    calls = []
    kernel = keras.ops.dot_product_attention
    monkeypatch.setattr(keras.ops, "dot_product_attention", lambda *a, **k: calls.append(1) or kernel(*a, **k))
    attention = MultiHeadSelfAttention(hidden_dim=12, num_heads=3, fused=True)
    attention(np.random.default_rng(12).normal(size=(2, 5, 12)).astype("float32"))
    if keras.backend.backend() == "jax":
        import jax

        assert len(calls) == (0 if jax.default_backend() == "cpu" else 1)
    else:
        assert len(calls) == (1 if keras.backend.backend() == "torch" else 0)


def test_stochastic_depth_drops_whole_residual_branches_per_example():
    z = np.random.default_rng(11).normal(size=(64, 5, 8)).astype("float32")
    always = EncoderBlock(hidden_dim=8, num_heads=2, mlp_dim=16, drop_path_rate=0.999999)
    np.testing.assert_allclose(numpy_of(always(z, training=True)), z)  # both branches skipped: identity
    half = EncoderBlock(hidden_dim=8, num_heads=2, mlp_dim=16, drop_path_rate=0.5)
    plain = EncoderBlock(hidden_dim=8, num_heads=2, mlp_dim=16)
    half.build(z.shape)
    plain.build(z.shape)
    plain.set_weights(half.get_weights())
    np.testing.assert_allclose(numpy_of(half(z, training=False)), numpy_of(plain(z)), rtol=1e-6)  # off at inference
    trained = numpy_of(half(z, training=True))
    unchanged = np.all(np.isclose(trained, z), axis=(1, 2))
    assert 0 < unchanged.sum() < 64  # about a quarter of the examples skip both branches, the rest do not


def test_encoder_without_position_embeddings_is_permutation_equivariant():
    block = EncoderBlock(hidden_dim=8, num_heads=2, mlp_dim=16)
    z = np.random.default_rng(7).normal(size=(1, 6, 8)).astype("float32")
    order = np.random.default_rng(8).permutation(6)
    np.testing.assert_allclose(numpy_of(block(z[:, order])), numpy_of(block(z))[:, order], rtol=1e-5, atol=1e-5)


def test_token_pooling_reads_class_token_or_mean():
    tokens = np.random.default_rng(9).normal(size=(2, 5, 8)).astype("float32")
    np.testing.assert_array_equal(numpy_of(TokenPooling("token")(tokens)), tokens[:, 0])
    np.testing.assert_allclose(numpy_of(TokenPooling("gap")(tokens)), tokens.mean(1), rtol=1e-6)
    with pytest.raises(ValueError, match="classifier"):
        TokenPooling("max")


def test_layer_norm_epsilon_is_the_papers():
    assert vit_layers.LAYER_NORM_EPSILON == 1e-6
    assert EncoderBlock(8, 2, 16).attention_norm.epsilon == 1e-6


def test_bad_sizes_fail_with_a_clear_message():
    with pytest.raises(ValueError, match="not divisible by 3 heads"):
        MultiHeadSelfAttention(hidden_dim=8, num_heads=3)
    with pytest.raises(ValueError, match="not divisible by patch size 4"):
        PatchEmbedding(4, 8)(np.zeros((1, 10, 10, 3), "float32"))


LAYERS = [
    (PatchEmbedding, dict(patch_size=4, hidden_dim=8)),
    (ClassToken, {}),
    (PositionEmbedding, {}),
    (MultiHeadSelfAttention, dict(hidden_dim=8, num_heads=2, attention_dropout_rate=0.1, fused=False)),
    (MlpBlock, dict(hidden_dim=8, mlp_dim=16, dropout_rate=0.1, approximate_gelu=False)),
    (EncoderBlock, dict(hidden_dim=8, num_heads=2, mlp_dim=16, dropout_rate=0.1, attention_dropout_rate=0.2,
                        drop_path_rate=0.1, fused_attention=False, approximate_gelu=False)),
    (TokenPooling, dict(mode="gap")),
    (TokenPooling, dict(mode="distillation")),
    (DistillationToken, {}),
    (HeadFusion, {}),
]


@pytest.mark.parametrize("layer_class, arguments", LAYERS,
                         ids=[f"{c.__name__}-{'-'.join(map(str, a.values()))}".rstrip("-") for c, a in LAYERS])
def test_get_config_returns_exactly_the_constructor_arguments(layer_class, arguments):
    layer = layer_class(**arguments, name="probe")
    config = layer.get_config()
    base = keras.layers.Layer(name="probe").get_config()
    assert {k: v for k, v in config.items() if k not in base} == arguments
    clone = layer_class.from_config(config)
    assert clone.get_config() == config
