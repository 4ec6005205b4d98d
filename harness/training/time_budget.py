"""Training to a time budget (`train.py --time-budget 30m`): as many epochs as fit, with the whole schedule.

The budget covers the wall-clock time from the timed preflight to the end of the last epoch (its
validation included); loading the data before and the final test evaluation after are not in it.

1. Plan: a throwaway copy of the training model, compiled as the real one is, trains a few batches
   and validates a few; their measured times give seconds per epoch (compilation counted once), and
   the run gets the largest number of epochs that fits, at SAFETY of the time left.
2. Re-plan: after every epoch the measured epoch times say when the planned run would end. If that is
   past the budget, the run is shortened to the epochs that still fit and the cosine decay is shortened
   with it (the warmup too, to at most a fifth of the new run), so the learning rate still reaches its
   end value (0) on the last step: the schedule is counted in steps, and the number of steps follows
   the measured speed. An epoch is the smallest unit, so a run may end at most one epoch's time short
   of the budget, never past it by more than the last epoch's misjudged share.

The plan, every re-plan and the actual time are recorded in metrics.json ("time_budget").
"""

import math
import statistics
import time

import keras
import numpy as np

from harness.training.config import FAMILY_DEFAULTS, WARMUP_FRACTION_LIMIT

SAFETY = 0.97  # plan to this share of the time left: noise in the step times, the epoch-end writes
TIMED_STEPS = 5  # the preflight times at least this many training steps (after one that compiles) ...
TIMED_SECONDS = 10.0  # ... and for at least this long, or MAX_TIMED_SHARE of the budget if that is less
MAX_TIMED_SHARE = 0.01
VALIDATION_BATCHES_TIMED = 3


def _timed(function, calls, seconds):
    """(seconds per call of `function` over at least `calls` calls and `seconds`, seconds of the untimed first)."""
    start = time.perf_counter()
    function()
    first = time.perf_counter() - start
    done, start = 0, time.perf_counter()
    while done < calls or time.perf_counter() - start < seconds:
        function()
        done += 1
    return (time.perf_counter() - start) / done, first


def measure(trainee, split, num_classes, batch_size, validation_batches, budget_seconds):
    """(seconds per training step, seconds per validation batch, seconds of the first of each: compilation).

    `trainee` is a compiled throwaway training model; it trains on the split's first batch."""
    count = min(batch_size, len(split))
    images = split.images[:count].astype("float32")
    labels = np.eye(num_classes, dtype="float32")[split.labels[:count]]
    seconds = min(TIMED_SECONDS, MAX_TIMED_SHARE * budget_seconds)
    step, compile_train = _timed(lambda: trainee.train_on_batch(images, labels), TIMED_STEPS, seconds)
    if not validation_batches:
        return step, 0.0, compile_train
    evaluate, compile_test = _timed(lambda: trainee.test_on_batch(images, labels), VALIDATION_BATCHES_TIMED, 0.0)
    return step, evaluate, compile_train + compile_test


def warmup_for(config, epochs):
    """The warmup of a budgeted run of `epochs`: the recipe's or family's, at most a fifth of the run."""
    wanted = (config.warmup_epochs if config.warmup_epochs is not None
              else FAMILY_DEFAULTS[config.model]["warmup_epochs"])
    return min(wanted, epochs * WARMUP_FRACTION_LIMIT)


class BudgetPlan:
    """The epochs chosen for a budget, how they were chosen, and what happened to them."""

    def __init__(self, budget_seconds, started):
        self.budget_seconds, self.started = budget_seconds, started
        self.record = {"budget_seconds": budget_seconds}

    def elapsed(self):
        return time.perf_counter() - self.started

    def choose_epochs(self, step_seconds, validation_seconds, compile_seconds, steps_per_epoch, validation_batches):
        """The planned number of epochs (at least 1) from the preflight's measurements."""
        epoch_seconds = step_seconds * steps_per_epoch + validation_seconds * validation_batches
        left = self.budget_seconds - self.elapsed() - compile_seconds  # the real model compiles once more
        epochs = max(1, math.floor(SAFETY * left / epoch_seconds))
        self.record.update(
            preflight_seconds=round(self.elapsed(), 2), seconds_per_step=round(step_seconds, 5),
            seconds_per_validation_batch=round(validation_seconds, 5), compile_seconds=round(compile_seconds, 2),
            estimated_epoch_seconds=round(epoch_seconds, 2), planned_epochs=epochs,
            estimated_seconds=round(self.elapsed() + compile_seconds + epochs * epoch_seconds, 1), replans=[])
        return epochs

    def describe(self):
        r = self.record
        return (f"time budget {r['budget_seconds'] / 60:.1f} min: {r['planned_epochs']} epochs of about "
                f"{r['estimated_epoch_seconds']:.0f} s (measured {1000 * r['seconds_per_step']:.0f} ms per step; "
                f"preflight {r['preflight_seconds']:.0f} s), the whole schedule ending at about "
                f"{r['estimated_seconds'] / 60:.1f} min"
                + ("; the budget is too short for one epoch, which trains anyway"
                   if r["estimated_seconds"] > r["budget_seconds"] else ""))


class BudgetGuard(keras.callbacks.Callback):
    """After each epoch: shortens the run (and its cosine decay) when the planned epochs no longer fit
    the budget, and stops it at the planned end. Runs after the epoch recorder, which has then saved the
    epoch. `on_replan(epochs)` records the new length where a resumed run reads it (config.json)."""

    def __init__(self, plan, epochs, steps_per_epoch, on_replan, recorder):
        super().__init__()
        self.plan, self.epochs, self.steps_per_epoch = plan, epochs, steps_per_epoch
        self.on_replan, self.recorder = on_replan, recorder
        self.epoch_seconds = []
        self.compiling = {0}  # epochs (from 0) whose time includes compiling the step: not typical

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        done = epoch + 1
        self.epoch_seconds.append(time.perf_counter() - self.epoch_start)
        steady = [seconds for index, seconds in enumerate(self.epoch_seconds) if index not in self.compiling]
        if steady:
            typical = statistics.median(steady)
        else:  # every epoch so far compiled: the quickest, less a compilation, unless the preflight said more
            typical = max(self.plan.record["estimated_epoch_seconds"],
                          min(self.epoch_seconds) - self.plan.record["compile_seconds"])
        left = self.plan.budget_seconds - self.plan.elapsed()
        if done < self.epochs and done + math.floor(left / typical) < self.epochs:
            # shortening compiles the step again: that time is not training
            self.shorten(done, done + max(0, math.floor((left - self.plan.record["compile_seconds"]) / typical)))
        if done >= self.epochs:
            self.model.stop_training = True

    def shorten(self, done, epochs):
        """The run now ends after `epochs`; the schedule's decay ends at its last step."""
        schedule = self.model.optimizer._learning_rate  # Keras keeps the schedule object here
        total_steps = epochs * self.steps_per_epoch
        if epochs > done:
            # a warmup planned for the longer run may not fit the shorter one: at most a fifth of it, as planned
            schedule.warmup_steps = min(schedule.warmup_steps, math.floor(total_steps * WARMUP_FRACTION_LIMIT))
            schedule.decay_steps = total_steps - schedule.warmup_steps
            self.model.make_train_function(force=True)  # the step compiled the old length in
            self.compiling.add(done)  # the next epoch compiles it again
            self.recorder.reset_schedule()
        self.plan.record["replans"].append({"after_epoch": done, "epochs": epochs,
                                            "elapsed_seconds": round(self.plan.elapsed(), 1)})
        print(f"time budget: the planned {self.epochs} epochs would not fit; ending after epoch {epochs}"
              + ("" if epochs > done else " (now: the schedule stops short of its end)"), flush=True)
        self.epochs = epochs
        self.on_replan(epochs)

    def finish(self):
        """The record for metrics.json: the plan, its re-plans and the actual time."""
        self.plan.record.update(actual_seconds=round(self.plan.elapsed(), 1), epochs_trained=len(self.epoch_seconds),
                                final_epochs=self.epochs)
        return self.plan.record
