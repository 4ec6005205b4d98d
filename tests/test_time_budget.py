"""Time-budget training: the duration option, the recipes that use it, the plan and the re-plan."""

import argparse
import json

import keras
import numpy as np
import pytest

from harness.cli import duration
from harness.errors import UserError
from harness.training import time_budget
from harness.training.config import TrainConfig, resolve
from harness.training.optimizer import learning_rate_schedule


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("1h", 3600), ("90s", 90), ("1h30m", 5400), ("1.5h", 5400),
                                           (" 2M ", 120)])
def test_a_duration_reads_as_seconds(text, seconds):
    assert duration(text) == seconds


@pytest.mark.parametrize("text", ["30", "m", "-1m", "0s", "1h30", "1x", "", "1..5m", "31d", "9999h"])
def test_a_bad_duration_says_how_to_write_one(text):
    with pytest.raises(argparse.ArgumentTypeError):
        duration(text)


def test_a_budget_recipe_leaves_the_epochs_to_the_plan_and_epochs_given_win():
    budgeted = resolve(TrainConfig(model="cnn", recipe="cpu30"))
    assert (budgeted.epochs, budgeted.time_budget, budgeted.preset) == (None, 1800.0, "resnet20")
    fixed = resolve(TrainConfig(model="vit", recipe="cpu30", epochs=3))
    assert (fixed.epochs, fixed.time_budget) == (3, None)  # the recipe's budget does not apply to fixed epochs
    assert resolve(TrainConfig(model="vit", time_budget=60.0)).warmup_epochs is None  # set by the plan
    with pytest.raises(UserError, match="one of --epochs, --steps and --time-budget"):
        resolve(TrainConfig(model="vit", epochs=3, time_budget=60.0))
    with pytest.raises(UserError, match="time_budget"):
        resolve(TrainConfig(model="vit", time_budget=float("nan")))


def test_the_planned_warmup_is_at_most_a_fifth_of_the_run():
    config = resolve(TrainConfig(model="vit", time_budget=60.0))
    assert time_budget.warmup_for(config, 100) == 5.0  # the ViT family's
    assert time_budget.warmup_for(config, 10) == 2.0


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


class StubRecorder:
    resets = 0

    def reset_schedule(self):
        self.resets += 1


def test_the_plan_fits_the_budget_and_a_slow_run_is_shortened_with_its_schedule(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    plan = time_budget.BudgetPlan(100.0, started=0.0)
    clock.now = 4.0  # the preflight took 4 s
    # 10 steps of 0.5 s and 2 validation batches of 0.5 s: 6 s an epoch; 2 s to compile the real model
    epochs = plan.choose_epochs(0.5, 0.5, 2.0, steps_per_epoch=10, validation_batches=2)
    assert epochs == int(0.97 * (100 - 4 - 2) / 6) == 15
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = learning_rate_schedule(0.1, total_steps=epochs * 10, warmup_steps=10)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    replanned = []
    guard = time_budget.BudgetGuard(plan, epochs, 10, on_replan=replanned.append, recorder=StubRecorder())
    guard.set_model(model)
    for epoch, seconds in enumerate([8.0, 9.0, 9.0]):  # really 9 s an epoch: 15 epochs no longer fit
        guard.on_epoch_begin(epoch)
        clock.now += seconds
        guard.on_epoch_end(epoch)
    # after epoch 2 (elapsed 21 s, 9 s an epoch): 2 + floor((100 - 21 - 2) / 9) = 10 epochs
    assert replanned[0] == 10 and guard.epochs == replanned[-1] <= 10
    final = guard.epochs
    assert float(schedule(final * 10)) == pytest.approx(0.0, abs=1e-9)  # the decay ends on the last step
    assert float(schedule(final * 10 - 5)) > 0
    for epoch in range(3, final):
        guard.on_epoch_begin(epoch)
        clock.now += 9.0
        guard.on_epoch_end(epoch)
    assert model.stop_training and clock.now <= 100
    record = guard.finish()
    assert record["final_epochs"] == final and record["planned_epochs"] == 15 and record["replans"]


def test_a_run_shortened_below_its_warmup_still_ends_its_schedule(monkeypatch):
    # the preflight plans 48 epochs of 0.4 s with a 5-epoch warmup; the epochs then take 4 s: 5 fit in all
    clock = FakeClock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    plan = time_budget.BudgetPlan(20.0, started=0.0)
    epochs = plan.choose_epochs(0.2, 0.0, 0.0, steps_per_epoch=2, validation_batches=0)
    assert epochs == 48
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = learning_rate_schedule(0.1, total_steps=epochs * 2, warmup_steps=10)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    guard = time_budget.BudgetGuard(plan, epochs, 2, on_replan=lambda epochs: None, recorder=StubRecorder())
    guard.set_model(model)
    epoch = 0
    while not model.stop_training:
        guard.on_epoch_begin(epoch)
        clock.now += 4.0
        guard.on_epoch_end(epoch)
        epoch += 1
    assert guard.epochs == epoch == 5 and clock.now <= 20.0  # re-planned once, from the first epoch's time
    assert schedule.warmup_steps == 2  # a fifth of the 10 steps: the old 10-step warmup would have filled them
    assert float(schedule(5 * 2)) == pytest.approx(0.0, abs=1e-9) and float(schedule(5 * 2 - 1)) > 0


def test_a_run_on_schedule_is_not_replanned(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    plan = time_budget.BudgetPlan(100.0, started=0.0)
    epochs = plan.choose_epochs(0.5, 0.0, 0.0, steps_per_epoch=10, validation_batches=0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(learning_rate_schedule(0.1, epochs * 10, 0)), loss="mse")
    guard = time_budget.BudgetGuard(plan, epochs, 10, on_replan=pytest.fail, recorder=StubRecorder())
    guard.set_model(model)
    for epoch in range(epochs):
        guard.on_epoch_begin(epoch)
        clock.now += 5.0
        guard.on_epoch_end(epoch)
        assert model.stop_training == (epoch + 1 == epochs)


def test_a_budget_run_records_its_plan_and_ends_its_schedule(image_folder, tmp_path):
    from harness.training.run_dir import RunDirectory
    from harness.training.trainer import train

    metrics = train(TrainConfig(model="vit", preset="vit_test", data_dir=str(image_folder), time_budget=20.0,
                                batch_size=8, run_dir=str(tmp_path / "run")), verbose=0)
    record = metrics["time_budget"]
    assert record["budget_seconds"] == 20.0 and record["planned_epochs"] >= 1
    assert metrics["epochs"] == record["final_epochs"] == metrics["epochs_trained"]
    run = RunDirectory(tmp_path / "run")
    assert json.loads(run.config_path.read_text())["epochs"] == metrics["epochs"]  # what a resume would train
    history = run.read_history()
    assert len(history) == metrics["epochs"]
    stopped_short = any(replan["epochs"] == replan["after_epoch"] for replan in record["replans"])
    assert stopped_short or float(history[-1]["learning_rate"]) == 0.0


def test_randaugment_changes_training_images_only_and_is_reproducible():
    from harness.training.augment import build_augmentation, reseed

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3)).astype("float32")
    augmentation = build_augmentation("randaugment", seed=3)
    assert [layer.name for layer in augmentation.layers] == ["random_shift", "random_flip", "rand_augment",
                                                            "random_erasing"]
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(augmentation(images, training=False)), images)
    reseed(augmentation, 7)
    first = keras.ops.convert_to_numpy(augmentation(images, training=True))
    reseed(augmentation, 7)
    again = keras.ops.convert_to_numpy(augmentation(images, training=True))
    np.testing.assert_array_equal(first, again)
    assert first.shape == images.shape and 0 <= first.min() and first.max() <= 255
    assert not np.array_equal(first, images)
