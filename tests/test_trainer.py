"""Trainer pieces: weight-decay exclusions, the learning-rate schedule, run directories."""

import numpy as np
import pytest
from keras import ops

import cnn_baseline
import vit_tf
from harness.errors import UserError
from harness.models import MODEL_FAMILIES
from harness.training.config import TrainConfig
from harness.training.optimizer import learning_rate_schedule, no_decay_variables
from harness.training.run_dir import RunDirectory


def test_no_weight_decay_on_biases_norms_class_token_and_position_embeddings():
    model = vit_tf.build_vit("vit_test")
    excluded = {v.path for v in no_decay_variables(model)}
    decayed = {v.path for v in model.trainable_variables} - excluded
    assert all(path.endswith("kernel") for path in decayed)
    assert any("class_token" in p for p in excluded) and any("position_embedding" in p for p in excluded)
    assert any(p.endswith("bias") for p in excluded) and any(p.endswith("gamma") for p in excluded)
    # Every Dense kernel is decayed: 2 per block (MLP) + 4 (q, k, v, out), E, and the head.
    assert len(decayed) == 2 * (4 + 2) + 2


def test_cnn_decays_only_convolution_and_dense_kernels():
    model = cnn_baseline.build_cnn("resnet_test")
    decayed = {v.path for v in model.trainable_variables} - {v.path for v in no_decay_variables(model)}
    assert decayed and all(path.endswith("kernel") for path in decayed)


def test_schedule_warms_up_linearly_then_decays_by_cosine_to_zero():
    schedule = learning_rate_schedule(peak=1.0, total_steps=110, warmup_steps=10)
    lr = lambda step: float(ops.convert_to_numpy(schedule(step)))  # noqa: E731
    np.testing.assert_allclose([lr(0), lr(5), lr(10)], [0.0, 0.5, 1.0], atol=1e-6)
    np.testing.assert_allclose(lr(60), 0.5, atol=1e-6)  # half-way through the cosine
    np.testing.assert_allclose(lr(110), 0.0, atol=1e-6)


def test_recipe_defaults_fill_only_what_was_not_given():
    config = TrainConfig(model="vit", epochs=10, learning_rate=3e-3).with_recipe_defaults("vit_cifar_tiny")
    assert config.learning_rate == 3e-3 and config.optimizer == "adamw" and config.weight_decay == 0.05
    assert config.warmup_epochs == 2.0  # 5 by default, but at most a fifth of a 10-epoch run
    cnn = TrainConfig(model="cnn", epochs=100).with_recipe_defaults("resnet20")
    assert (cnn.optimizer, cnn.learning_rate, cnn.warmup_epochs, cnn.preset) == ("sgd", 0.1, 1.0, "resnet20")


def test_run_directory_refuses_to_overwrite_a_run(tmp_path):
    run = RunDirectory.create(tmp_path / "run")
    run.write_config({"a": 1})
    run.append_history({"epoch": 1, "loss": 2.0})
    run.append_history({"epoch": 2, "loss": 1.5})
    assert [row["loss"] for row in run.read_history()] == ["2.0", "1.5"]
    with pytest.raises(UserError, match="already holds a run"):
        RunDirectory.create(tmp_path / "run")
    fresh = RunDirectory.create(tmp_path / "run", overwrite=True)
    assert not fresh.history_path.exists() and not fresh.config_path.exists()


def test_a_budget_recipe_fills_settings_and_the_command_line_still_wins():
    from harness.training.recipes import RECIPES

    course = TrainConfig(model="vit", recipe="course", epochs=3).with_recipe_defaults("vit_cifar_tiny")
    recipe = RECIPES["course"]["vit"]
    assert course.epochs == 3  # given
    assert (course.preset, course.batch_size, course.mixing, course.drop_path_rate) == (
        recipe["preset"], recipe["batch_size"], recipe["mixing"], recipe["drop_path_rate"])
    assert course.warmup_epochs == recipe["warmup_epochs"] and course.optimizer == "adamw"  # family default
    smoke = TrainConfig(model="cnn", recipe="smoke").with_recipe_defaults("resnet20")
    assert (smoke.preset, smoke.epochs, smoke.label_smoothing, smoke.mixing) == ("resnet8", 10, 0.1, "none")
    for name, recipe in RECIPES.items():  # every recipe names real presets
        for model in ("vit", "cnn"):
            assert recipe[model]["preset"] in MODEL_FAMILIES[model].presets, name
