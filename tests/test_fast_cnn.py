"""The fast CNN (cnn_baseline.fast_cnn, model_parts.fast_conv): whitening against NumPy, the boosted bias's
step, the Dirac start, saving, and test-time augmentation against a NumPy reference."""

import keras
import numpy as np
import pytest
from keras import ops

import cnn_baseline
from harness.training.test_time import shifted, with_test_time_augmentation
from model_parts.fast_conv import BoostedBias, Dirac, PatchWhitening, adapt_to_data


def correlated_images(count=300, size=8, seed=0):
    """Smooth, colour-correlated images: neighbouring pixels and channels far from independent."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(count, size + 1, size + 1, 1))
    smooth = base[:, 1:, 1:] + base[:, :-1, :-1] + 0.3 * rng.normal(size=(count, size, size, 3))
    return (smooth * np.array([1.0, 2.0, 0.5]) + np.array([3.0, -1.0, 0.0])).astype("float32")


def test_whitening_decorrelates_the_patches_it_was_adapted_to():
    images = correlated_images()
    layer = PatchWhitening(patch_size=2, epsilon=1e-6)
    layer.build(images.shape)
    layer.adapt(images)
    out = ops.convert_to_numpy(layer(images)).reshape(-1, 24)
    assert out.shape[0] == 300 * 7 * 7
    np.testing.assert_allclose(out.mean(axis=0), 0, atol=1e-3)
    half = out[:, :12]  # the second half is its negative
    np.testing.assert_allclose(np.cov(half, rowvar=False), np.eye(12), atol=2e-3)
    np.testing.assert_allclose(out[:, 12:], -half, rtol=1e-6, atol=1e-6)


def test_whitening_filters_read_patches_in_the_kernel_layout():
    """A filter applied with the convolution equals the same filter dotted with the patch NumPy cuts out."""
    images = correlated_images(count=20, size=5)
    layer = PatchWhitening(patch_size=2)
    layer.build(images.shape)
    layer.adapt(images)
    kernel = ops.convert_to_numpy(layer.kernel).reshape(12, 24)  # (P, P, C) rows, as the module flattens
    patch = images[3, 1:3, 2:4, :].reshape(12)  # the patch at row 1, column 2
    expected = patch @ kernel + ops.convert_to_numpy(layer.bias)
    np.testing.assert_allclose(ops.convert_to_numpy(layer(images))[3, 1, 2], expected, rtol=1e-4, atol=1e-4)


def test_boosted_bias_learns_boost_squared_faster():
    """One SGD step of rate lr on y = x + 8b with loss sum(y) moves the output by 8² lr per channel."""
    layer = BoostedBias(boost=8.0)
    inputs = np.zeros((2, 3), dtype="float32")
    layer.build(inputs.shape)
    optimizer = keras.optimizers.SGD(0.01)
    if keras.backend.backend() != "tensorflow":
        pytest.skip("the gradient step is written with TensorFlow's tape")
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(inputs))
    optimizer.apply_gradients(zip(tape.gradient(loss, layer.trainable_variables), layer.trainable_variables))
    np.testing.assert_allclose(ops.convert_to_numpy(layer(inputs)), -64 * 0.01 * 2, rtol=1e-6)


def test_dirac_start_passes_the_first_channels_through():
    conv = keras.layers.Conv2D(6, 3, padding="same", use_bias=False, kernel_initializer=Dirac())
    images = np.random.default_rng(0).normal(size=(2, 5, 5, 4)).astype("float32")
    out = ops.convert_to_numpy(conv(images))
    np.testing.assert_allclose(out[..., :4], images, rtol=1e-6, atol=1e-6)
    kernel = ops.convert_to_numpy(conv.kernel)[..., 4:]
    bound = 1 / np.sqrt(3 * 3 * 4)
    assert np.all(np.abs(kernel) <= bound) and kernel.std() > bound / 4  # random, PyTorch's default range


def test_fast_presets_build_save_and_load_back(tmp_path):
    model = cnn_baseline.build_cnn("fast_cnn_test", num_classes=5)
    images = np.random.default_rng(1).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    adapt_to_data(model, images)
    assert np.abs(ops.convert_to_numpy(model.get_layer("stem_whitening").kernel)).max() > 0
    model.save(tmp_path / "fast.keras")
    loaded = keras.saving.load_model(tmp_path / "fast.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(images)), ops.convert_to_numpy(model(images)), rtol=1e-5,
                               atol=1e-6)
    assert cnn_baseline.build_cnn("fast_cnn").count_params() == 1_973_944  # airbench94's layout
    assert sum(cnn_baseline.parameter_breakdown(model).values()) == model.count_params()


def test_shift_moves_pixels_and_reflects_the_edge():
    images = np.arange(2 * 4 * 4 * 1, dtype="float32").reshape(2, 4, 4, 1)
    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    np.testing.assert_array_equal(ops.convert_to_numpy(shifted(images, 1)), padded[:, 0:4, 0:4])
    np.testing.assert_array_equal(ops.convert_to_numpy(shifted(images, -1)), padded[:, 2:6, 2:6])


def test_test_time_augmentation_averages_six_views():
    inputs = keras.Input((6, 6, 2))
    model = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Flatten()(inputs)))
    images = np.random.default_rng(2).normal(size=(4, 6, 6, 2)).astype("float32")
    kernel, bias = (ops.convert_to_numpy(w) for w in model.layers[-1].weights)

    def logits(x):
        return x.reshape(len(x), -1) @ kernel + bias

    padded = np.pad(images, [(0, 0), (1, 1), (1, 1), (0, 0)], mode="reflect")
    expected = 0
    for view, weight in ((images, 0.5), (padded[:, :6, :6], 0.25), (padded[:, 2:, 2:], 0.25)):
        expected = expected + weight / 2 * (logits(view) + logits(view[:, :, ::-1]))
    np.testing.assert_allclose(ops.convert_to_numpy(with_test_time_augmentation(model)(images)), expected,
                               rtol=1e-5, atol=1e-5)


def test_a_hybrid_on_the_conv_stem_reads_64_tokens_and_loads_back(tmp_path):
    import vit_tf

    model = vit_tf.build_vit("hybrid_fast_test", num_classes=3)
    images = np.random.default_rng(3).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    vit_tf.adapt_to_data(model, images)
    assert model.get_layer("position_embedding").position_embedding.shape[1] == 8 * 8 + 1  # stride 4, class token
    breakdown = vit_tf.parameter_breakdown(model)
    assert breakdown["conv stem"] > 0 and sum(breakdown.values()) == model.count_params()
    model.save(tmp_path / "hybrid.keras")
    loaded = keras.saving.load_model(tmp_path / "hybrid.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(images)), ops.convert_to_numpy(model(images)), rtol=1e-5,
                               atol=1e-6)
    with pytest.raises(ValueError, match="one stem"):
        vit_tf.resolve_config("hybrid_fast_test", resnet_width=32, resnet_blocks=(1,))
    with pytest.raises(ValueError, match="4 px per token"):
        vit_tf.resolve_config("hybrid_fast_test", image_size=30)


def test_whitening_with_same_padding_keeps_the_map_size():
    images = correlated_images(count=10, size=6)
    layer = PatchWhitening(padding="same")
    assert layer.compute_output_shape(images.shape) == (10, 6, 6, 24) == tuple(layer(images).shape)


@pytest.mark.trains
def test_a_run_with_tta_reports_both_accuracies_and_evaluate_agrees(image_folder, tmp_path):
    """The fast CNN trains end to end (its whitening adapted to the training images), and --tta puts the
    augmented accuracy beside the plain one, in training's metrics and in evaluate.py's alike."""
    from harness.reporting.evaluate_run import evaluate_run
    from harness.training.config import TrainConfig
    from harness.training.trainer import train

    run_dir = tmp_path / "run"
    metrics = train(TrainConfig(model="cnn", preset="fast_cnn_test", data_dir=str(image_folder), epochs=1,
                                batch_size=8, test_time_augmentation=True, run_dir=str(run_dir)), verbose=0)
    assert 0 <= metrics["test_accuracy_tta"] <= 1 and metrics["test_seconds"] > 0
    evaluated, _ = evaluate_run(run_dir, test_time_augmentation=True)
    assert evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert evaluated["accuracy_tta"] == pytest.approx(metrics["test_accuracy_tta"])
