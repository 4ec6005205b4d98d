"""The ResNet baseline: parameter counts from its definition, shapes, saving, errors."""

import json

import keras
import numpy as np
import pytest
from keras import ops

import cnn_baseline


def preact_resnet_parameter_count(stem_width, stage_widths, blocks_per_stage, num_classes=10):
    """Counted by hand: bias-free 3x3 convolutions, 2 BN parameters per channel (+2 moving stats)."""
    count = 3 * 3 * 3 * stem_width
    channels = stem_width
    for stage, (width, blocks) in enumerate(zip(stage_widths, blocks_per_stage)):
        for block in range(blocks):
            count += 4 * channels + 9 * channels * width  # BN1 (4 values/channel) + conv1
            count += 4 * width + 9 * width * width  # BN2 + conv2
            if (stage > 0 and block == 0) or channels != width:
                count += channels * width  # 1x1 projection shortcut
            channels = width
    return count + 4 * channels + channels * num_classes + num_classes  # head BN + Dense


@pytest.mark.parametrize("preset", [name for name, row in cnn_baseline.PRESETS.items() if "architecture" not in row])
def test_presets_have_the_counted_parameters_and_predict_logits(preset):
    model = cnn_baseline.build_cnn(preset, num_classes=10)
    assert model.count_params() == preact_resnet_parameter_count(**cnn_baseline.PRESETS[preset])
    assert sum(cnn_baseline.parameter_breakdown(model).values()) == model.count_params()
    logits = model(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32"))
    assert logits.shape == (2, 10)


def test_resnet20_is_the_classic_size():
    assert cnn_baseline.build_cnn("resnet20").count_params() == 273_658  # He et al.: 0.27 M


def test_saved_model_loads_back_and_predicts_identically(tmp_path):
    model = cnn_baseline.build_cnn("resnet_test", num_classes=5)
    images = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    model.save(tmp_path / "cnn.keras")
    loaded = keras.saving.load_model(tmp_path / "cnn.keras")
    np.testing.assert_allclose(ops.convert_to_numpy(loaded(images)), ops.convert_to_numpy(model(images)), rtol=1e-6)
    assert json.dumps(loaded.get_config(), sort_keys=True) == json.dumps(model.get_config(), sort_keys=True)


def test_unknown_preset_and_setting_fail_clearly():
    with pytest.raises(ValueError, match="unknown CNN preset 'resnet1000'"):
        cnn_baseline.build_cnn("resnet1000")
    with pytest.raises(ValueError, match="unknown CNN setting"):
        cnn_baseline.build_cnn("resnet_test", width=3)


def test_flops_match_the_published_count():
    """He et al. (2016) give resnet20 about 41 M multiply-adds at 32 px."""
    assert cnn_baseline.flops_per_image(cnn_baseline.build_cnn("resnet20")) / 2 == pytest.approx(40.8e6, rel=1e-2)


def test_the_projection_shortcut_is_a_strided_1x1_convolution():
    """Written as subsample-then-1x1-conv (to avoid a oneDNN crash), it must stay the same function."""
    model = cnn_baseline.build_cnn("resnet_test")
    probe = keras.Model(model.input, [model.get_layer("stage1_block0_relu1").output,
                                      model.get_layer("stage1_block0_shortcut").output])
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    preactivated, shortcut = (ops.convert_to_numpy(t) for t in probe(images))
    kernel = ops.convert_to_numpy(model.get_layer("stage1_block0_shortcut").kernel)  # (1, 1, C_in, C_out)
    strided = ops.convert_to_numpy(ops.conv(preactivated, kernel, strides=2))
    assert shortcut.shape == (3, 16, 16, 16)
    np.testing.assert_allclose(shortcut, strided, rtol=1e-5, atol=1e-5)
