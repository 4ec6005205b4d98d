"""Loading the released hybrid (R50+ViT) and BiT ResNet-v2 checkpoint formats: logits against numpy forward
passes of the authors' definitions, fine-tuning heads, interpolation and the errors."""

import numpy as np
import pytest
from checkpoint_files import bit_arrays, bit_forward, forward, hybrid_arrays, vit_arrays, write
from keras import ops

import cnn_baseline
import vit_tf
from model_parts.checkpoint import CheckpointError

IMAGES = np.random.default_rng(5).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
OLD_GN_SHAPE = lambda channels: (1, 1, 1, channels)  # noqa: E731  (GroupNorm parameters as some converted files store them)


def weights_of(model):
    return [ops.convert_to_numpy(weight).copy() for weight in model.weights]


@pytest.mark.parametrize("gn_shape", [None, OLD_GN_SHAPE], ids=["flax", "4-d-norms"])
def test_hybrid_logits_equal_a_numpy_forward_pass_of_the_released_layout(tmp_path, gn_shape):
    arrays = hybrid_arrays(**({"gn_shape": gn_shape} if gn_shape else {}))
    model = vit_tf.build_vit("hybrid_test", num_classes=10)
    report = vit_tf.load_pretrained(model, write(tmp_path / "R50+ViT-test.npz", arrays), keep_head=True)
    assert report.loaded_keys == len(arrays) and len(model.weights) == len(arrays) and not report.dropped
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), forward(arrays, IMAGES), rtol=1e-3, atol=1e-3)


def test_hybrid_fine_tuning_at_a_larger_size_interpolates_positions_and_starts_a_zero_head(tmp_path):
    arrays = hybrid_arrays(grid=8, num_classes=21)
    model = vit_tf.build_vit("hybrid_test", image_size=64, num_classes=3)  # 64 px / 4 px per token: 16 x 16
    report = vit_tf.load_pretrained(model, write(tmp_path / "R50+ViT-test.npz", arrays))
    assert report.position_grid == (8, 16) and sorted(report.dropped) == ["head/bias", "head/kernel"]
    assert not np.any(model.predict(np.concatenate([IMAGES, IMAGES], axis=1).repeat(2, axis=2), verbose=0))
    stem = ops.convert_to_numpy(model.get_layer("block1_unit1_conv2").kernel)
    np.testing.assert_array_equal(stem, arrays["block1/unit1/conv2/kernel"])


@pytest.mark.parametrize("arrays, preset, message", [
    (vit_arrays(), "hybrid_test", r"holds a ViT with patch_size 4.*but the model has patch_size 1.*resnet_width 32.*"
                                  r"use --model vit --preset vit_test"),
    (hybrid_arrays(), "vit_test", r"resnet_width 32, resnet_blocks \(1,\), but the model has.*"
                                  r"use --model hybrid --preset hybrid_test"),
    (hybrid_arrays(blocks=(2,)), "hybrid_test", r"resnet_blocks \(2,\), but the model has.*resnet_blocks \(1,\)"),
    (bit_arrays(), "vit_test", "not a ViT checkpoint.*it is a BiT ResNet checkpoint: train it with --model cnn"),
], ids=["vit-file-hybrid-model", "hybrid-file-vit-model", "other-stem", "bit-file"])
def test_a_file_of_another_family_or_stem_is_named_before_anything_loads(tmp_path, arrays, preset, message):
    model = vit_tf.build_vit(preset, num_classes=10)
    before = weights_of(model)
    path = write(tmp_path / "other.npz", arrays)
    with pytest.raises(CheckpointError, match=message):
        vit_tf.check_compatible(path, vit_tf.resolve_config(preset))
    with pytest.raises(CheckpointError, match=message):
        vit_tf.load_pretrained(model, path)
    for old, new in zip(before, weights_of(model)):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("gn_shape", [None, OLD_GN_SHAPE], ids=["plain", "4-d-norms"])
def test_bit_logits_equal_a_numpy_forward_pass_of_the_released_layout(tmp_path, gn_shape):
    arrays = bit_arrays(**({"gn_shape": gn_shape} if gn_shape else {}))
    model = cnn_baseline.build_cnn("bit_test", num_classes=10)
    report = cnn_baseline.load_pretrained(model, write(tmp_path / "BiT-test.npz", arrays), keep_head=True)
    assert report.loaded_keys == len(arrays) and len(model.weights) == len(arrays) and report.position_grid is None
    np.testing.assert_allclose(model.predict(IMAGES, verbose=0), bit_forward(arrays, IMAGES), rtol=1e-3, atol=1e-3)


def test_bit_fine_tuning_drops_the_pretraining_head_and_keeps_the_body(tmp_path):
    arrays = bit_arrays(num_classes=21)
    model = cnn_baseline.build_cnn("bit_test", num_classes=4)
    report = cnn_baseline.load_pretrained(model, write(tmp_path / "BiT-M-test.npz", arrays))
    assert sorted(report.dropped) == ["head/conv2d/bias", "head/conv2d/kernel"]
    assert any("dropped the pre-training head" in line for line in report.describe())
    assert not np.any(model.predict(IMAGES, verbose=0))
    np.testing.assert_array_equal(ops.convert_to_numpy(model.get_layer("block2_unit01_gn1").gamma),
                                  arrays["resnet/block2/unit01/a/group_norm/gamma"])
    np.testing.assert_array_equal(ops.convert_to_numpy(model.get_layer("block2_unit01_conv_proj").kernel),
                                  arrays["resnet/block2/unit01/a/proj/standardized_conv2d/kernel"])


@pytest.mark.parametrize("arrays, preset, message", [
    (bit_arrays(blocks=(2, 2, 2)), "bit_test", r"blocks_per_stage \(2, 2, 2\), but the model has.*"
                                               r"blocks_per_stage \(1, 1\); use --model cnn --preset bit_cifar"),
    (bit_arrays(), "resnet_test", "this CNN is a BatchNorm ResNet; use a BiT preset"),
    (vit_arrays(), "bit_test", "not a BiT checkpoint.*it is a ViT checkpoint"),
], ids=["other-size", "batchnorm-resnet", "vit-file"])
def test_bit_files_that_do_not_fit_are_named(tmp_path, arrays, preset, message):
    path = write(tmp_path / "other.npz", arrays)
    with pytest.raises(CheckpointError, match=message):
        cnn_baseline.check_compatible(path, cnn_baseline.resolve_config(preset))
    with pytest.raises(CheckpointError, match=message):
        cnn_baseline.load_pretrained(cnn_baseline.build_cnn(preset, num_classes=10), path)


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.pop("resnet/block1/unit01/c/group_norm/beta"), "has no block1/unit01/c/group_norm/beta"),
    (lambda a: a.update({"resnet/block1/unit01/d/group_norm/beta": np.zeros(3, np.float32)}),
     r"1 array\(s\) this model has no place for, e.g. block1/unit01/d/group_norm/beta"),
    (lambda a: a.update({"resnet/block1/unit01/b/standardized_conv2d/kernel": np.zeros((1, 1, 32, 32), np.float32)}),
     r"block1/unit01/b/standardized_conv2d/kernel has shape \(1, 1, 32, 32\), which does not fit"),
], ids=["missing", "extra", "wrong-shape"])
def test_a_damaged_bit_file_names_the_key_and_sets_nothing(tmp_path, damage, message):
    arrays = bit_arrays()
    damage(arrays)
    model = cnn_baseline.build_cnn("bit_test", num_classes=10)
    before = weights_of(model)
    with pytest.raises(CheckpointError, match=message):
        cnn_baseline.load_pretrained(model, write(tmp_path / "damaged.npz", arrays))
    for old, new in zip(before, weights_of(model)):
        np.testing.assert_array_equal(old, new)
