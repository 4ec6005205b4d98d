"""Training to a time budget (`train.py --time-budget 30m`): as many steps as fit, with the whole schedule.

The budget covers the wall-clock time from the timed preflight to the end of the last step's epoch (its
validation included); loading the data before and the final test evaluation after are not in it.

1. Plan: a throwaway copy of the training model, compiled as the real one is, trains a few batches
   and validates a few; their measured times give seconds per step (validation spread over the steps,
   compilation counted once), and the run gets the number of steps that ends it at SAFETY of the budget.
   The last epoch stops part-way, at the planned step (`harness.training.callbacks.StepLimit`).
2. Re-plan, both ways: after every epoch the measured epoch times say when the planned steps will end.
   Where that is past the budget or more than 2 x REPLAN_TOLERANCE before it, the run gets the steps that
   end it at SAFETY of the budget, fewer or more, and the schedule's decay is shortened or stretched with
   them (the warmup to at most a fifth of the run), so the learning rate still reaches its end value (0)
   on the last step. A run therefore ends within about 1% of its budget, less the last epoch's noise.

The plan, every re-plan and the actual time are recorded in metrics.json ("time_budget").
"""

import math
import statistics
import time

import keras
import numpy as np

from harness.training.config import FAMILY_DEFAULTS, capped_warmup
from harness.training.keras_internals import learning_rate_schedule, retrace_train_step

REPLAN_TOLERANCE = 0.005  # on time: the planned end lies within twice this share of the budget before its end
SAFETY = 1 - REPLAN_TOLERANCE  # plan to end here, in the middle of that window: noise in the step times
ROOM_TO_GROW = 1.5  # a run may be re-planned up to this many times its planned epochs
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
    return capped_warmup(wanted, epochs)


class BudgetPlan:
    """The epochs chosen for a budget, how they were chosen, and what happened to them."""

    def __init__(self, budget_seconds, started):
        self.budget_seconds, self.started = budget_seconds, started
        self.record = {"budget_seconds": budget_seconds}

    def elapsed(self):
        return time.perf_counter() - self.started

    def choose_steps(self, step_seconds, validation_seconds, compile_seconds, steps_per_epoch, validation_batches):
        """The planned number of steps (at least 1) from the preflight's measurements."""
        epoch_seconds = step_seconds * steps_per_epoch + validation_seconds * validation_batches
        left = self.budget_seconds - self.elapsed() - compile_seconds  # the real model compiles once more
        steps = max(1, math.floor(SAFETY * left / epoch_seconds * steps_per_epoch))
        self.record.update(
            preflight_seconds=round(self.elapsed(), 2), seconds_per_step=round(step_seconds, 5),
            seconds_per_validation_batch=round(validation_seconds, 5), compile_seconds=round(compile_seconds, 2),
            estimated_epoch_seconds=round(epoch_seconds, 2), planned_steps=steps,
            planned_epochs=math.ceil(steps / steps_per_epoch),
            estimated_seconds=round(self.elapsed() + compile_seconds + steps / steps_per_epoch * epoch_seconds, 1),
            replans=[])
        return steps

    def describe(self):
        r = self.record
        return (f"time budget {r['budget_seconds'] / 60:.1f} min: {r['planned_steps']} steps ({r['planned_epochs']} "
                f"epochs of about {r['estimated_epoch_seconds']:.0f} s; measured {1000 * r['seconds_per_step']:.0f} ms "
                f"per step; preflight {r['preflight_seconds']:.0f} s), the whole schedule ending at about "
                f"{r['estimated_seconds'] / 60:.1f} min; re-planned after each epoch from the measured times"
                + ("; the budget is too short for one step, which trains anyway"
                   if r["estimated_seconds"] > r["budget_seconds"] else ""))


class BudgetGuard(keras.callbacks.Callback):
    """After each epoch: re-plans the run's steps from the measured epoch times when the planned end is off
    the budget, fewer or more, with the schedule's decay ending on the new last step. It sets the
    `limit` (a StepLimit) that stops the run there. Runs after the epoch recorder, which has then saved
    the epoch. `on_replan(steps, epochs)` records the new length where a resumed run reads it (config.json)."""

    def __init__(self, plan, limit, steps_per_epoch, on_replan, recorder):
        super().__init__()
        self.plan, self.limit, self.steps_per_epoch = plan, limit, steps_per_epoch
        self.on_replan, self.recorder = on_replan, recorder
        self.max_steps = math.ceil(ROOM_TO_GROW * limit.total_steps / steps_per_epoch) * steps_per_epoch
        self.epoch_seconds = []
        self.compiling = {0}  # epochs (from 0) whose time includes compiling the step: not typical

    @property
    def max_epochs(self):
        """The epochs `fit` is given room for: the run may grow to this many."""
        return self.max_steps // self.steps_per_epoch

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        done = min((epoch + 1) * self.steps_per_epoch, self.limit.total_steps)
        self.epoch_seconds.append(time.perf_counter() - self.epoch_start)
        if done >= self.limit.total_steps:
            return  # the StepLimit has stopped the run
        steady = [seconds for index, seconds in enumerate(self.epoch_seconds) if index not in self.compiling]
        if steady:
            typical = statistics.median(steady)
        else:  # every epoch so far compiled: the quickest, less a compilation (at most half of it)
            quickest = min(self.epoch_seconds)
            typical = max(quickest - self.plan.record["compile_seconds"], quickest / 2)
        step_seconds = typical / self.steps_per_epoch  # validation spread over the epoch's steps
        budget, elapsed = self.plan.budget_seconds, self.plan.elapsed()
        if budget * (1 - 2 * REPLAN_TOLERANCE) <= elapsed + (self.limit.total_steps - done) * step_seconds <= budget:
            return  # on time
        # to end at SAFETY of the budget; a new length compiles the step again: that time is not training
        left = SAFETY * budget - elapsed - self.plan.record["compile_seconds"]
        steps = min(self.max_steps, done + max(0, math.floor(left / step_seconds)))
        if steps != self.limit.total_steps:
            self.replan(done, steps)

    def replan(self, done, steps):
        """The run now ends after `steps` in all; the schedule's decay ends at its last step."""
        if steps > done:
            schedule = learning_rate_schedule(self.model.optimizer)
            # a warmup planned for a longer run may not fit a shorter one: at most a fifth of it, in whole steps
            schedule.warmup_steps = math.floor(capped_warmup(schedule.warmup_steps, steps))
            schedule.decay_steps = steps - schedule.warmup_steps
            retrace_train_step(self.model)  # the step compiled the old length in
            self.compiling.add(len(self.epoch_seconds))  # the next epoch compiles it again
            self.recorder.reset_schedule()
        else:
            steps = done
            self.model.stop_training = True
        epochs = math.ceil(steps / self.steps_per_epoch)
        self.plan.record["replans"].append({"after_step": done, "steps": steps, "epochs": epochs,
                                            "elapsed_seconds": round(self.plan.elapsed(), 1)})
        change = "no more fit: ending now, short of the schedule's end" if steps == done else (
            f"{'more' if steps > self.limit.total_steps else 'fewer'} steps fit: ending after step {steps} "
            f"(epoch {epochs}) instead of {self.limit.total_steps}")
        print(f"time budget: {change}", flush=True)
        self.limit.total_steps = steps
        self.on_replan(steps, epochs)

    def finish(self):
        """The record for metrics.json: the plan, its re-plans and the actual time."""
        self.plan.record.update(actual_seconds=round(self.plan.elapsed(), 1), epochs_trained=len(self.epoch_seconds),
                                final_steps=self.limit.total_steps,
                                final_epochs=math.ceil(self.limit.total_steps / self.steps_per_epoch))
        return self.plan.record
