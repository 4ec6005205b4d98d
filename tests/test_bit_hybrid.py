"""The paper's other two families: BiT's ResNet-v2 (GroupNorm, weight standardisation) and the hybrid."""

import keras
import numpy as np
import pytest
from helpers import numpy_of

import cnn_baseline
import vit_tf
from model_parts.bit import StandardizedConv2D, group_norm


def standardised(kernel, epsilon, inside_sqrt):
    mean = kernel.mean(axis=(0, 1, 2), keepdims=True)
    variance = ((kernel - mean) ** 2).mean(axis=(0, 1, 2), keepdims=True)
    return (kernel - mean) / (np.sqrt(variance + epsilon) if inside_sqrt else np.sqrt(variance) + epsilon)


def numpy_conv_valid(x, kernel):
    """A stride-1 'valid' convolution, written out."""
    kh, kw = kernel.shape[:2]
    out = np.zeros((x.shape[0], x.shape[1] - kh + 1, x.shape[2] - kw + 1, kernel.shape[-1]))
    for i in range(out.shape[1]):
        for j in range(out.shape[2]):
            out[:, i, j] = np.einsum("bhwc,hwco->bo", x[:, i:i + kh, j:j + kw], kernel)
    return out


@pytest.mark.parametrize("epsilon, inside_sqrt", [(1e-10, True), (1e-5, False)], ids=["bit", "vit-hybrid"])
def test_weight_standardised_convolution_matches_numpy(epsilon, inside_sqrt):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 6, 6, 3)).astype("float32")
    layer = StandardizedConv2D(4, 3, use_bias=False, epsilon=epsilon, epsilon_inside_sqrt=inside_sqrt)
    layer.build(x.shape)
    kernel = rng.normal(2.0, 3.0, size=(3, 3, 3, 4)).astype("float32")  # far from standardised
    layer.kernel.assign(kernel)
    expected = numpy_conv_valid(x.astype(np.float64), standardised(kernel.astype(np.float64), epsilon, inside_sqrt))
    np.testing.assert_allclose(numpy_of(layer(x)), expected, rtol=1e-4, atol=1e-4)
    # Scaling or shifting a filter's kernel changes nothing: only its standardised shape counts.
    layer.kernel.assign(kernel * 5.0 + 1.0)
    np.testing.assert_allclose(numpy_of(layer(x)), expected, rtol=1e-3, atol=1e-3)


def test_group_norm_matches_numpy_over_32_groups():
    rng = np.random.default_rng(1)
    x = rng.normal(3.0, 2.0, size=(2, 4, 4, 64)).astype("float32")
    layer = group_norm("gn", epsilon=1e-5)
    grouped = x.astype(np.float64).reshape(2, 4, 4, 32, 2)
    mean = grouped.mean(axis=(1, 2, 4), keepdims=True)
    variance = grouped.var(axis=(1, 2, 4), keepdims=True)
    expected = ((grouped - mean) / np.sqrt(variance + 1e-5)).reshape(x.shape)
    np.testing.assert_allclose(numpy_of(layer(x)), expected, rtol=1e-4, atol=1e-4)


def bit_parameters(blocks, width, classes):
    """BiT ResNet-v2's parameters, counted from its description (BiT's bit_jax/models.py)."""
    total, channels = 7 * 7 * 3 * width, width  # root conv, no bias, no norm
    for stage, units in enumerate(blocks):
        mid = width * 2**stage
        for unit in range(units):
            total += 2 * channels + channels * mid + 2 * mid + 9 * mid * mid + 2 * mid + mid * 4 * mid  # gn1..conv3
            total += channels * 4 * mid if unit == 0 else 0  # the projection of each stage's first unit
            channels = 4 * mid
    return total + 2 * channels + channels * classes + classes  # pre-head GN, head


def hybrid_parameters(blocks, width, hidden, layers, mlp, tokens, classes):
    """R50+ViT parameters, counted from the authors' models_resnet.py and models_vit.py."""
    total, channels = 7 * 7 * 3 * width + 2 * width, width  # conv_root, gn_root
    for stage, units in enumerate(blocks):
        mid = width * 2**stage
        for unit in range(units):
            total += channels * mid + 2 * mid + 9 * mid * mid + 2 * mid + mid * 4 * mid + 2 * 4 * mid  # conv1..gn3
            total += channels * 4 * mid + 2 * 4 * mid if unit == 0 else 0  # conv_proj, gn_proj
            channels = 4 * mid
    embedding = channels * hidden + hidden + hidden + tokens * hidden  # E (1x1), bias, class token, E_pos
    block = 4 * hidden + (4 * hidden * hidden + 4 * hidden) + (2 * hidden * mlp + mlp + hidden)  # 2 LN, MSA, MLP
    return total + embedding + layers * block + 2 * hidden + hidden * classes + classes


def test_bit_r50x1_has_the_released_architectures_parameter_count():
    for classes, published in ((1000, 25.5e6), (21843, 68.3e6)):  # timm's model cards of BiT-M-R50x1: 25.5 M, 68.3 M
        model = cnn_baseline.build_cnn("bit_r50x1", num_classes=classes)
        assert model.count_params() == bit_parameters((3, 4, 6, 3), 64, classes)
        assert round(model.count_params() / 1e5) * 1e5 == published
    assert model.count_params() == 68_256_659
    breakdown = cnn_baseline.parameter_breakdown(model)
    assert breakdown["stem"] == 7 * 7 * 3 * 64 and sum(breakdown.values()) == model.count_params()


@pytest.mark.parametrize("preset", ["bit_cifar", "bit_test"])
def test_small_bit_presets_have_the_counted_parameters_and_predict_logits(preset):
    row = cnn_baseline.PRESETS[preset]
    model = cnn_baseline.build_cnn(preset, num_classes=10)
    assert model.count_params() == bit_parameters(row["blocks_per_stage"], row["root_width"], 10)
    assert model(np.zeros((2, 32, 32, 3), "float32")).shape == (2, 10)


def test_r50_vit_b16_has_the_released_architectures_parameter_count():
    model = vit_tf.build_vit("r50_vit_b16", num_classes=1000, image_size=384)
    assert model.count_params() == hybrid_parameters((3, 4, 9), 64, 768, 12, 3072, 24 * 24 + 1, 1000)
    assert model.count_params() == 98_950_952  # timm's vit_base_r50_s16_384: 98.95 M
    breakdown = vit_tf.parameter_breakdown(model)
    assert list(breakdown) == ["resnet stem", "patch embedding", "encoder", "head"]
    assert sum(breakdown.values()) == model.count_params()
    assert "resnet stem" not in vit_tf.parameter_breakdown(vit_tf.build_vit("vit_test"))


@pytest.mark.parametrize("preset, blocks, hidden, layers, mlp", [("r26_vit_s32", (2, 2, 2, 2), 384, 12, 1536),
                                                                 ("r26_vit_b32", (2, 2, 2, 2), 768, 12, 3072)])
def test_the_stride_32_hybrids_have_the_counted_parameters_and_7x7_tokens(preset, blocks, hidden, layers, mlp):
    model = vit_tf.build_vit(preset, num_classes=1000)
    assert model.count_params() == hybrid_parameters(blocks, 64, hidden, layers, mlp, 7 * 7 + 1, 1000)
    assert model.get_layer("position_embedding").position_embedding.shape[1] == 7 * 7 + 1


@pytest.mark.parametrize("preset, image_size, tokens", [("r50_vit_b16", 224, 14 * 14 + 1),
                                                        ("hybrid_cifar_tiny", 32, 8 * 8 + 1),
                                                        ("hybrid_test", 64, 16 * 16 + 1)])
def test_the_hybrid_cuts_the_feature_map_into_one_token_per_position(preset, image_size, tokens):
    model = vit_tf.build_vit(preset, image_size=image_size)
    assert model.get_layer("position_embedding").position_embedding.shape[1] == tokens
    assert model.get_layer("patch_embedding").patch_size == 1


def test_hybrid_units_start_as_their_shortcut_and_bad_sizes_are_refused():
    model = vit_tf.build_vit("hybrid_test")
    np.testing.assert_array_equal(numpy_of(model.get_layer("block1_unit1_gn3").gamma), 0.0)
    with pytest.raises(ValueError, match="not divisible by the hybrid's 4 px per token"):
        vit_tf.build_vit("hybrid_test", image_size=30)
    with pytest.raises(ValueError, match="multiple of 32"):
        vit_tf.build_vit("hybrid_test", resnet_width=48)
    with pytest.raises(ValueError, match="multiple of 32"):
        cnn_baseline.build_cnn("bit_test", root_width=16)


@pytest.mark.parametrize("build", [lambda: cnn_baseline.build_cnn("bit_test", num_classes=3),
                                   lambda: vit_tf.build_vit("hybrid_test", num_classes=3)], ids=["bit", "hybrid"])
def test_saved_models_load_back_and_predict_identically(tmp_path, build):
    model = build()
    rng = np.random.default_rng(2)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype("float32") for w in model.get_weights()])
    images = rng.uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_array_equal(numpy_of(loaded(images)), numpy_of(model(images)))
