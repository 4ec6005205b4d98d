"""The assembled ViT: exact paper parameter counts, shapes, saving, gradients, mixed precision."""

import json

import keras
import numpy as np
import pytest
from backend_gradients import loss_gradients
from keras import ops

import vit_tf
from vit_tf.presets import CIFAR_PRESETS, PAPER_PRESETS


def paper_parameter_count(patch_size, hidden_dim, num_layers, mlp_dim, image_size=224, num_classes=1000, token=True):
    """The count written out from the paper's architecture (section 3.1, appendix A)."""
    D, M, P = hidden_dim, mlp_dim, patch_size
    N = (image_size // P) ** 2
    patch_projection = P * P * 3 * D + D
    class_token = D if token else 0
    position_embedding = (N + int(token)) * D
    block = 2 * 2 * D + 4 * (D * D + D) + (D * M + M) + (M * D + D)  # 2 LNs, q/k/v/out, MLP
    return (patch_projection + class_token + position_embedding + num_layers * block + 2 * D
            + D * num_classes + num_classes)


# The authors' vit_jax/models_test.py lists the same numbers.
PAPER_COUNTS = {"vit_b16": 86_567_656, "vit_b32": 88_224_232, "vit_l16": 304_326_632,
                "vit_l32": 306_535_400, "vit_h14": 632_045_800, "vit_s16": 22_050_664, "vit_ti16": 5_717_416}


BIG_PRESETS = ("vit_l16", "vit_l32", "vit_h14")  # seconds and gigabytes to build: once, on the default backend


@pytest.mark.parametrize("preset", list(PAPER_PRESETS))
def test_paper_presets_have_the_exact_parameter_count(preset):
    if preset in BIG_PRESETS and keras.backend.backend() != "tensorflow":
        pytest.skip("built on TensorFlow only: a layer's weight shapes do not depend on the backend")
    row = PAPER_PRESETS[preset]
    expected = paper_parameter_count(row["patch_size"], row["hidden_dim"], row["num_layers"], row["mlp_dim"])
    assert expected == PAPER_COUNTS[preset]
    model = vit_tf.build_vit(preset, image_size=224, num_classes=1000)
    assert model.count_params() == expected
    assert model.output_shape == (None, 1000)
    assert sum(vit_tf.parameter_breakdown(model).values()) == expected


def test_flops_match_the_published_count():
    assert vit_tf.flops_per_image(vit_tf.build_vit("vit_b16", num_classes=1000)) / 2 == pytest.approx(17.56e9, rel=1e-3)


def test_gap_classifier_drops_the_class_token():
    model = vit_tf.build_vit("vit_b16", num_classes=1000, classifier="gap")
    assert model.count_params() == paper_parameter_count(16, 768, 12, 3072, token=False) == 86_566_120


@pytest.mark.parametrize("preset", list(CIFAR_PRESETS))
def test_cifar_presets_build_and_predict_float32_logits(preset):
    model = vit_tf.build_vit(preset, num_classes=10)
    row = CIFAR_PRESETS[preset]
    assert model.count_params() == paper_parameter_count(
        row["patch_size"], row["hidden_dim"], row["num_layers"], row["mlp_dim"], image_size=32, num_classes=10
    )
    logits = model(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
    assert logits.shape == (2, 10)


def test_preset_and_override_errors_are_clear():
    with pytest.raises(ValueError, match="unknown ViT preset 'vit_xl'"):
        vit_tf.build_vit("vit_xl")
    with pytest.raises(ValueError, match="image size 30 is not divisible by patch size 4"):
        vit_tf.build_vit("vit_test", image_size=30)
    with pytest.raises(ValueError, match="hidden size 16 is not divisible by 3 heads"):
        vit_tf.build_vit("vit_test", num_heads=3)
    with pytest.raises(ValueError, match="unknown ViT setting"):
        vit_tf.build_vit("vit_test", depth=3)


def test_layers_are_named_like_the_paper():
    model = vit_tf.build_vit("vit_test")
    names = [layer.name for layer in model.layers]
    for name in ("patch_embedding", "class_token", "position_embedding", "encoder_block_0", "encoder_block_1",
                 "encoder_norm", "head"):
        assert name in names
    weight_names = {w.name for w in model.weights}
    assert {"class_token", "position_embedding"} <= weight_names


def test_saved_model_loads_back_and_predicts_identically(tmp_path):
    model = vit_tf.build_vit("vit_test", num_classes=10, dropout_rate=0.1)
    head = model.get_layer("head")  # zero at init: give it weights so the comparison means something
    head.set_weights([np.random.default_rng(0).normal(size=w.shape).astype("float32") for w in head.get_weights()])
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "vit.keras")
    loaded = keras.saving.load_model(tmp_path / "vit.keras")
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(images)), ops.convert_to_numpy(model(images)))
    as_json = lambda m: json.dumps(m.get_config(), sort_keys=True)  # noqa: E731 (tuples become lists)
    assert as_json(loaded) == as_json(model)


def test_every_weight_gets_a_finite_gradient():
    """Catches an unused weight, e.g. a class token the head never reads."""
    model = vit_tf.build_vit("vit_test", num_classes=10)
    head = model.get_layer("head")  # zero at init, which would block every gradient below it
    head.set_weights([np.random.default_rng(0).normal(size=w.shape).astype("float32") for w in head.get_weights()])
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    labels = keras.utils.to_categorical([0, 1, 2, 3], 10)
    for variable, grad in zip(model.trainable_variables, loss_gradients(model, images, labels)):
        assert np.all(np.isfinite(grad)), variable.path
        assert np.any(grad != 0), f"{variable.path} gets no gradient"


def test_mixed_bfloat16_agrees_with_float32_on_a_fixed_batch():
    """Under mixed precision matmuls run in bfloat16 (8 bits of mantissa): logits agree to ~1e-2."""
    reference = vit_tf.build_vit("vit_test", num_classes=10)
    rng = np.random.default_rng(0)
    weights = [rng.normal(scale=0.2, size=w.shape).astype("float32") for w in reference.get_weights()]
    reference.set_weights(weights)
    images = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    expected = ops.convert_to_numpy(reference(images))

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    mixed = vit_tf.build_vit("vit_test", num_classes=10)
    mixed.set_weights(weights)
    tokens, attention = vit_tf.encoder_outputs(mixed, images)
    logits = mixed(images)
    dtype = keras.backend.standardize_dtype  # a backend's dtype object as a name
    assert all(dtype(w.dtype) == "float32" for w in mixed.weights)  # variables stay float32
    assert dtype(tokens.dtype) == "bfloat16" and dtype(attention[0].dtype) == "bfloat16"  # compute in bfloat16
    assert dtype(logits.dtype) == "float32"  # the head returns float32 logits
    assert mixed.get_layer("encoder_norm").dtype_policy.name == "mixed_bfloat16"
    np.testing.assert_allclose(ops.convert_to_numpy(logits), expected, atol=0.05 * np.abs(expected).max())


@pytest.mark.parametrize("preset", ["vit_test", "hybrid_test"])  # the hybrid's stem is a graph, not a chain
def test_encoder_outputs_expose_tokens_and_attention(preset):
    model = vit_tf.build_vit(preset, num_classes=10)
    model.get_layer("head").kernel.assign(np.random.default_rng(0).normal(size=(16, 10)))
    images = np.random.default_rng(1).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    tokens, attention = vit_tf.encoder_outputs(model, images)
    assert tokens.shape == (3, 65, 16)
    assert len(attention) == 2 and attention[0].shape == (3, 2, 65, 65)
    np.testing.assert_allclose(ops.convert_to_numpy(model.get_layer("head")(tokens[:, 0])),
                               ops.convert_to_numpy(model(images)), rtol=1e-5, atol=1e-5)  # eq. 4 on these tokens


def test_stochastic_depth_rises_linearly_from_the_first_block_to_the_last():
    model = vit_tf.build_vit("vit_test", num_layers=5, drop_path_rate=0.2)
    rates = [layer.drop_path_rate for layer in model.layers if isinstance(layer, vit_tf.layers.EncoderBlock)]
    np.testing.assert_allclose(rates, [0.0, 0.05, 0.1, 0.15, 0.2])
    assert vit_tf.resolve_config("vit_test")["drop_path_rate"] == 0.0  # off unless asked for
