"""A run's plan: what one training run does, worked out once and then only passed on.

A `TrainConfig` holds what was asked for; a `RunPlan` holds what the run makes of it on this data and these
devices: the splits, the architecture, the steps and epochs with their warm-up, the placement and the
precision. It is frozen. A time budget gives the one new plan (`with_budget`), once its measured speed has
chosen the length; the run's last re-plan gives the length it ended with (`with_length`).
"""

import dataclasses
import math
from typing import Optional

from harness import data
from harness.models import MODEL_FAMILIES, ModelFamily
from harness.training import devices, inputs, time_budget
from harness.training.config import TrainConfig, model_overrides
from harness.training.precision import resolve_precision


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """What one run trains, on what and where: resolved once by `plan_run`, then only passed on."""

    config: TrainConfig  # every setting; epochs, steps and warmup_epochs as this run trains them
    dataset: data.ImageDataset  # its test split, class names and name
    train_split: data.Split  # the images the run trains on (training_splits)
    val_split: data.Split  # the images it validates on after each epoch
    family: ModelFamily
    model_settings: dict  # image_size, num_classes and the architecture overrides: family.build's keywords
    architecture: dict  # every architecture setting (family.resolve_config), as config.json records it
    steps_per_epoch: int  # an epoch's batches (TrainConfig.steps_per_epoch); a time budget keeps them
    train_images: int  # the images one epoch trains on
    placement: devices.Placement
    on_device: bool  # the training batches made on the accelerator (harness.training.inputs.data_on_device)
    precision: str  # the resolved policy: "float32", "mixed_bfloat16" or "mixed_float16"
    deterministic: bool  # whether the backend's kernels were made deterministic (harness.training.seeding)
    # a time budget's plan; its record (metrics.json "time_budget") grows with every re-plan
    budget: Optional[time_budget.BudgetPlan] = None

    def build_model(self):
        """A fresh model of the planned architecture."""
        return self.family.build(self.config.preset, **self.model_settings)

    def with_budget(self, budget, steps):
        """The plan of a time-budget run whose measured speed chose `steps`: the epochs that hold them, and the
        recipe's or family's warm-up, at most a fifth of the run."""
        epochs = steps / self.steps_per_epoch
        config = dataclasses.replace(self.config, steps=steps, epochs=math.ceil(epochs),
                                     warmup_epochs=time_budget.warmup_for(self.config, epochs))
        return dataclasses.replace(self, config=config, budget=budget)

    def with_preset(self, preset):
        """The plan of the same run with another preset of its family, before a time budget sets its length."""
        config = dataclasses.replace(self.config, preset=preset, smaller_preset=None, needed_epochs=None)
        return dataclasses.replace(self, config=config,
                                   architecture=self.family.resolve_config(preset, **self.model_settings))

    def with_length(self, steps, epochs):
        """The plan as the run ended: `steps` in `epochs`, after a time budget's re-plans."""
        return dataclasses.replace(self, config=dataclasses.replace(self.config, steps=steps, epochs=epochs))


def training_splits(dataset, config):
    """(training, validation) splits: the validation split carved off first, the same for every
    --train-size, then the training images (all, or a nested class-stratified subset)."""
    train_split, val_split = data.split_validation(dataset.train, config.val_fraction, config.seed)
    count = config.train_size or (round(config.train_fraction * len(train_split)) if config.train_fraction else None)
    if count is None:
        return train_split, val_split
    data.check_subset_size(count, len(train_split), dataset.num_classes, "--train-size")
    return data.nested_subset(train_split, max(1, count), config.seed), val_split


def for_data(config, dataset):
    """`config` with a step count turned into epochs of the training split it will have (TrainConfig.for_data)."""
    return config.for_data(len(training_splits(dataset, config)[0]))


def plan_run(config, dataset, deterministic):
    """The RunPlan of a config whose length is known for its data (`for_data`), or left to a time budget
    (`RunPlan.with_budget`). Raises a UserError for devices that cannot be had."""
    precision = resolve_precision(config.precision)
    train_split, val_split = training_splits(dataset, config)
    # An epoch trains on its full batches; with a batch larger than the split, on one batch of all of it.
    placement = devices.resolve_placement(config.devices, config.batch_size, min(config.batch_size, len(train_split)))
    family = MODEL_FAMILIES[config.model]
    settings = dict(image_size=config.image_size, num_classes=dataset.num_classes, **model_overrides(config))
    steps_per_epoch = config.steps_per_epoch(len(train_split))
    return RunPlan(config=config, dataset=dataset, train_split=train_split, val_split=val_split, family=family,
                   model_settings=settings, architecture=family.resolve_config(config.preset, **settings),
                   steps_per_epoch=steps_per_epoch,
                   train_images=min(steps_per_epoch * config.batch_size, len(train_split)),
                   placement=placement,
                   on_device=inputs.data_on_device(config.data_on_device, train_split, placement.count),
                   precision=precision, deterministic=deterministic)
