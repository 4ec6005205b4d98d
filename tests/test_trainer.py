"""Trainer pieces: weight-decay exclusions, the learning-rate schedule, run directories."""

import keras
import numpy as np
import pytest
from entry_points import REPO, run
from helpers import run_train
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
    run.unlock()  # the process that trained here has ended
    with pytest.raises(UserError, match="already holds a run"):
        RunDirectory.create(tmp_path / "run")
    fresh = RunDirectory.create(tmp_path / "run", overwrite=True)
    assert not fresh.history_path.exists() and not fresh.config_path.exists()
    fresh.unlock()


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
    fields = set(TrainConfig.__dataclass_fields__)
    for name, recipe in RECIPES.items():  # every recipe names real presets and real settings
        for model in ("vit", "cnn"):
            if recipe[model] is None:  # not for this family (finetune: there is no pretrained CNN)
                continue
            assert recipe[model]["preset"] in MODEL_FAMILIES[model].presets, name
            assert set(recipe[model]) <= fields, (name, set(recipe[model]) - fields)


@pytest.mark.trains
def test_throughput_counts_the_images_really_trained_on(image_folder, tmp_path):
    """A batch larger than the split trains one batch of the whole split, not batch-size images."""
    result = run_train("--preset", "vit_test", "--data-dir", image_folder, "--epochs", 2, "--batch-size", 64,
                       "--val-fraction", 0.2, "--run-dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    run = RunDirectory(tmp_path / "run")
    assert run.read_metrics()["train_images_per_epoch"] == 14
    for row in run.read_history():
        # Both are rounded (0.1 img/s, 1 ms), so the product is bounded, not exact; counting 64 would be 4.6x off.
        rate, seconds = float(row["images_per_second"]), float(row["train_seconds"])
        assert (rate - 0.05) * (seconds - 0.0005) <= 14 <= (rate + 0.05) * (seconds + 0.0005)


@pytest.mark.trains
def test_one_test_loss_everywhere_and_keep_best_saves_the_best_epoch(image_folder, tmp_path):
    """metrics.json's test loss is plain cross-entropy, as evaluate.py's; --keep best --patience keeps
    the weights of the best validation epoch, which the saved model reproduces on the validation split."""
    import json

    from harness.data import load_dataset, split_validation

    run_dir = tmp_path / "run"
    result = run_train("--preset", "vit_test", "--data-dir", image_folder, "--epochs", 6, "--batch-size", 64,
                       "--learning-rate", 0.01, "--val-fraction", 0.3, "--patience", 2, "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = RunDirectory(run_dir).read_metrics()
    rows = RunDirectory(run_dir).read_history()
    assert metrics["keep"] == "best" and metrics["stopped_early"] and len(rows) == metrics["epochs_trained"] < 6
    best = max(float(row["val_accuracy"]) for row in rows)
    saved = next(row for row in rows if float(row["val_accuracy"]) == best)  # the first epoch that reached it
    assert metrics["saved_epoch"] == int(saved["epoch"]) and len(rows) - metrics["saved_epoch"] == 2

    model = keras.saving.load_model(run_dir / "model.keras")
    _, validation = split_validation(load_dataset(data_dir=image_folder).train, 0.3, 0)
    probabilities = ops.convert_to_numpy(ops.softmax(model.predict(validation.images.astype("float32"), verbose=0)))
    cross_entropy = -np.mean(np.log(probabilities[np.arange(len(validation)), validation.labels]))
    assert cross_entropy == pytest.approx(float(saved["val_cross_entropy"]), abs=1e-4)
    assert cross_entropy != pytest.approx(float(rows[-1]["val_cross_entropy"]), abs=1e-3)  # not the last epoch's

    assert run("evaluate.py", run_dir, cwd=REPO).returncode == 0
    evaluated = json.loads((run_dir / "eval" / "metrics.json").read_text())
    assert evaluated["loss"] == pytest.approx(metrics["test_loss"], abs=1e-4)
    assert evaluated["accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)


@pytest.mark.trains
def test_steps_shorter_than_an_epoch_train_exactly_that_many_steps(image_folder, tmp_path):
    from harness.training.trainer import train

    # 18 training images less the validation split: 4 full batches of 4 make an epoch; --steps 2 is half of one
    metrics = train(TrainConfig(model="vit", preset="vit_test", data_dir=str(image_folder), steps=2, batch_size=4,
                                run_dir=str(tmp_path / "run")), verbose=0)
    assert (metrics["epochs"], metrics["train_images_per_epoch"]) == (1, 8)
    history = RunDirectory(tmp_path / "run").read_history()
    assert len(history) == 1 and float(history[-1]["learning_rate"]) == 0.0  # the whole schedule, in two steps


def test_the_interruption_line_says_what_is_saved_and_never_contradicts_itself(tmp_path):
    from harness.training.trainer import interrupted

    run = RunDirectory(tmp_path / "run")
    nothing = str(interrupted(run, 10, terminated=False))
    assert nothing.startswith("interrupted before epoch 1 finished, so no epoch is saved") and "continue" not in nothing
    run.saved_epochs = 1
    assert "in epoch 2: epoch 1 is saved (of 10) in " in str(interrupted(run, 10, terminated=False))
    run.saved_epochs = 3
    line = str(interrupted(run, 10, terminated=True))
    assert line.startswith("terminated (SIGTERM) in epoch 4: epochs 1-3 are saved (of 10) in ")
    assert line.endswith(f"continue with: python train.py --resume {run.path}")
