"""Time-budget training: the duration option, the recipes that use it, the plan and the re-plan."""

import argparse
import json

import keras
import numpy as np
import pytest

from harness.cli import duration
from harness.errors import UserError
from harness.training import time_budget
from harness.training.callbacks import StepLimit
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
    assert (budgeted.epochs, budgeted.time_budget, budgeted.preset) == (None, 1800.0, "fast_cnn")
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


def guarded_model(plan, steps, steps_per_epoch, warmup_steps=0, on_replan=lambda steps, epochs: None):
    """A compiled toy model whose schedule spans `steps`, and the budget guard and step limit of its run."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    schedule = learning_rate_schedule(0.1, total_steps=steps, warmup_steps=warmup_steps)
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    limit = StepLimit(steps, steps_per_epoch)
    guard = time_budget.BudgetGuard(plan, limit, steps_per_epoch, on_replan=on_replan, recorder=StubRecorder())
    for callback in (limit, guard):
        callback.set_model(model)
    return model, schedule, limit, guard


def run_epochs(model, limit, guard, clock, step_seconds, steps_per_epoch, first_epoch=0):
    """Trains on the fake clock until the step limit stops the run; returns the steps taken."""
    done, epoch = first_epoch * steps_per_epoch, first_epoch
    while not model.stop_training:
        limit.on_epoch_begin(epoch)
        guard.on_epoch_begin(epoch)
        for batch in range(steps_per_epoch):
            clock.now += step_seconds
            done += 1
            limit.on_train_batch_end(batch)
            if model.stop_training:
                break
        guard.on_epoch_end(epoch)
        epoch += 1
    return done


def test_the_plan_counts_steps_and_a_slow_run_is_shortened_with_its_schedule(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    plan = time_budget.BudgetPlan(100.0, started=0.0)
    clock.now = 4.0  # the preflight took 4 s
    # 10 steps of 0.5 s and 2 validation batches of 0.5 s: 6 s an epoch (0.6 s a step); 2 s to compile
    steps = plan.choose_steps(0.5, 0.5, 2.0, steps_per_epoch=10, validation_batches=2)
    assert steps == int(time_budget.SAFETY * (100 - 4 - 2) / 0.6) == 155  # 15.5 epochs: the last stops part-way
    replanned = []
    model, schedule, limit, guard = guarded_model(plan, steps, 10, on_replan=lambda *length: replanned.append(length))
    done = run_epochs(model, limit, guard, clock, 0.9, 10)  # really 0.9 s a step: 155 steps no longer fit
    assert replanned and replanned[0][0] < 155 and done == limit.total_steps == replanned[-1][0]
    # spent, within a step, the planning's margins and the time kept for compiling the re-planned step
    assert 100 * (1 - 2 * time_budget.REPLAN_TOLERANCE) - 2.0 - 0.9 <= clock.now <= 100
    assert float(schedule(done)) == pytest.approx(0.0, abs=1e-9)  # the decay ends on the last step
    assert float(schedule(done - 5)) > 0
    record = guard.finish()
    assert record["final_steps"] == done and record["planned_steps"] == 155 and record["replans"]


def test_a_fast_run_is_lengthened_to_fill_its_budget(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    plan = time_budget.BudgetPlan(100.0, started=0.0)
    steps = plan.choose_steps(1.0, 0.0, 0.0, steps_per_epoch=10, validation_batches=0)  # the preflight: 1 s a step
    model, schedule, limit, guard = guarded_model(plan, steps, 10, warmup_steps=5)
    done = run_epochs(model, limit, guard, clock, 0.7, 10)  # the real steps take 0.7 s
    assert done > steps and 100 * (1 - 2 * time_budget.REPLAN_TOLERANCE) - 0.7 <= clock.now <= 100
    assert float(schedule(done)) == pytest.approx(0.0, abs=1e-9) and float(schedule(done - 1)) > 0
    assert schedule.warmup_steps == 5  # the warmup stays as planned


def test_a_run_shortened_below_its_warmup_still_ends_its_schedule(monkeypatch):
    # the preflight plans 99 steps of 0.2 s with a 10-step warmup; the steps then take 2 s: 9 fit in all
    clock = FakeClock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    plan = time_budget.BudgetPlan(20.0, started=0.0)
    steps = plan.choose_steps(0.2, 0.0, 0.0, steps_per_epoch=2, validation_batches=0)
    assert steps == 99
    model, schedule, limit, guard = guarded_model(plan, steps, 2, warmup_steps=10)
    done = run_epochs(model, limit, guard, clock, 2.0, 2)
    assert done == limit.total_steps <= 10 and clock.now <= 20.0
    assert schedule.warmup_steps == done // 5  # a fifth of the steps: the old 10-step warmup would have filled them
    assert float(schedule(done)) == pytest.approx(0.0, abs=1e-9) and float(schedule(done - 1)) > 0


def test_a_run_on_schedule_is_not_replanned(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(time_budget.time, "perf_counter", clock)
    plan = time_budget.BudgetPlan(100.0, started=0.0)
    steps = plan.choose_steps(0.5, 0.0, 0.0, steps_per_epoch=10, validation_batches=0)
    model, _, limit, guard = guarded_model(plan, steps, 10, on_replan=pytest.fail)
    assert run_epochs(model, limit, guard, clock, 0.5, 10) == steps == 199


@pytest.mark.trains
def test_a_steps_run_trains_exactly_its_steps(image_folder, tmp_path):
    """--steps stops part-way through the last epoch, where the schedule ends."""
    from harness.training.run_dir import RunDirectory
    from harness.training.trainer import train

    metrics = train(TrainConfig(model="cnn", preset="resnet_test", data_dir=str(image_folder), steps=7,
                                batch_size=8, run_dir=str(tmp_path / "run")), verbose=0)
    assert metrics["train_images_per_epoch"] == 16 and metrics["steps_trained"] == 7  # 2 steps an epoch
    history = RunDirectory(tmp_path / "run").read_history()
    assert len(history) == 4 and float(history[-1]["learning_rate"]) == 0.0  # the fourth epoch: one step


@pytest.mark.trains
def test_a_budget_run_records_its_plan_and_ends_its_schedule(image_folder, tmp_path):
    from harness.training.run_dir import RunDirectory
    from harness.training.trainer import train

    metrics = train(TrainConfig(model="vit", preset="vit_test", data_dir=str(image_folder), time_budget=20.0,
                                batch_size=8, run_dir=str(tmp_path / "run")), verbose=0)
    record = metrics["time_budget"]
    assert record["budget_seconds"] == 20.0 and record["planned_steps"] >= 1
    assert metrics["epochs"] == record["final_epochs"] == metrics["epochs_trained"]
    run = RunDirectory(tmp_path / "run")
    saved = json.loads(run.config_path.read_text())
    assert (saved["epochs"], saved["steps"]) == (metrics["epochs"], record["final_steps"])  # what a resume trains
    history = run.read_history()
    assert len(history) == metrics["epochs"]
    stopped_short = any(replan["steps"] == replan["after_step"] for replan in record["replans"])
    assert stopped_short or float(history[-1]["learning_rate"]) == 0.0


def test_a_budget_recipe_names_a_smaller_preset_unless_the_preset_or_the_length_is_given():
    budgeted = resolve(TrainConfig(model="cnn", recipe="cpu30"))
    assert (budgeted.smaller_preset, budgeted.needed_epochs) == ("fast_cnn_small", 8.0)
    for given in (dict(preset="fast_cnn"), dict(epochs=3)):
        config = resolve(TrainConfig(model="cnn", recipe="cpu30", **given))
        assert (config.smaller_preset, config.needed_epochs) == (None, None)
    assert resolve(TrainConfig(model="cnn", recipe="cpu10")).smaller_preset is None  # already the small one


@pytest.mark.trains
def test_a_machine_too_slow_for_the_preset_trains_the_smaller_one_and_says_so(image_folder, tmp_path, capsys):
    from harness.training.run_dir import RunDirectory
    from harness.training.trainer import train

    metrics = train(TrainConfig(model="cnn", preset="fast_cnn_test", smaller_preset="resnet_test", needed_epochs=1e6,
                                data_dir=str(image_folder), time_budget=20.0, batch_size=8,
                                run_dir=str(tmp_path / "run")), verbose=0)
    out = capsys.readouterr().out
    assert "plan: fast_cnn_test would train" in out and "fewer than the 1e+06 it needs" in out
    assert "trains the smaller resnet_test instead" in out
    saved = json.loads(RunDirectory(tmp_path / "run").config_path.read_text())
    assert (saved["preset"], saved["smaller_preset"], saved["model_config"]["architecture"]) == (
        "resnet_test", None, "preact")
    assert metrics["preset"] == "resnet_test" and metrics["time_budget"]["budget_seconds"] == 20.0
    assert metrics["epochs_trained"] == metrics["time_budget"]["final_epochs"]


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
