"""A run's plan (harness/training/run_plan.py): worked out once from the config and the data, then frozen; a time
budget gives the one new plan. The warm-up cap is computed in one place (config.capped_warmup)."""

import dataclasses

import numpy as np
import pytest

from harness.data import ImageDataset, Split
from harness.training import time_budget
from harness.training.config import TrainConfig, capped_warmup, resolve
from harness.training.run_plan import for_data, plan_run


def tiny_dataset(train=40, test=8):
    rng = np.random.default_rng(0)
    splits = [Split(rng.integers(0, 256, (count, 32, 32, 3)), np.arange(count) % 2) for count in (train, test)]
    return ImageDataset("tiny", ["a", "b"], *splits)


def test_a_warmup_is_at_most_a_fifth_of_the_run_in_epochs_or_in_steps():
    assert capped_warmup(5.0, 100) == 5.0 and capped_warmup(5.0, 10) == 2.0
    assert capped_warmup(50, 100) == 20


def test_the_plan_holds_what_the_run_trains_and_cannot_be_changed():
    dataset = tiny_dataset()
    config = for_data(resolve(TrainConfig(model="vit", preset="vit_test", steps=7, batch_size=8)), dataset)
    plan = plan_run(config, dataset, deterministic=False)
    assert (len(plan.train_split), len(plan.val_split), plan.steps_per_epoch, plan.train_images) == (36, 4, 4, 32)
    # 7 steps of 4 an epoch: 2 epochs, the last stopped part-way; the ViT's 5-epoch warmup capped at a fifth
    assert (plan.config.steps, plan.config.epochs) == (7, 2)
    assert plan.config.warmup_epochs == pytest.approx(0.4)
    assert plan.architecture["num_classes"] == 2 and plan.placement.count == 1 and plan.budget is None
    assert plan.build_model().count_params() > 0
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.steps_per_epoch = 5


def test_a_time_budget_gives_a_new_plan_with_its_length_and_a_capped_warmup():
    dataset = tiny_dataset()
    config = resolve(TrainConfig(model="vit", preset="vit_test", time_budget=60.0, batch_size=8))
    plan = plan_run(for_data(config, dataset), dataset, deterministic=False)
    assert plan.config.epochs is None and plan.steps_per_epoch == 4
    budget = time_budget.BudgetPlan(60.0, started=0.0)
    budgeted = plan.with_budget(budget, steps=10)
    assert (budgeted.config.steps, budgeted.config.epochs, budgeted.budget) == (10, 3, budget)
    assert budgeted.config.warmup_epochs == pytest.approx(0.5)  # a fifth of 2.5 epochs
    assert plan.config.epochs is None and plan.budget is None  # the plan it came from is as it was
    ended = budgeted.with_length(steps=12, epochs=3)  # after a re-plan
    assert (ended.config.steps, ended.config.epochs, ended.budget) == (12, 3, budget)
