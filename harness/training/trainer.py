"""Training one model on one dataset, from a `TrainConfig` to a finished run directory.

A run checkpoints after every epoch, so `resume(run_dir)` continues a killed run from its last
completed epoch; with the same seed on a CPU, the resumed run ends exactly as an uninterrupted one.
"""

import contextlib
import dataclasses
import math
import pathlib
import sys
import time

import keras
import numpy as np

from harness import data
from harness.errors import Interrupted, Terminated, UserError
from harness.models import MODEL_FAMILIES
from harness.training import devices, distillation, inputs, preflight, time_budget
from harness.training.augment import build_augmentation, with_augmentation
from harness.training.callbacks import (
    EpochRecorder,
    NonFiniteLossGuard,
    StepLimit,
    augmentation_reseeder,
    backfill_tensorboard,
    tensorboard_logger,
)
from harness.training.config import TrainConfig, model_overrides, resolve
from harness.training.manifest import build_manifest
from harness.training.optimizer import build_optimizer
from harness.training.precision import describe_device
from harness.training.run_dir import RunDirectory, default_run_path, open_unfinished_run, write_json
from harness.training.run_plan import RunPlan, for_data, plan_run
from harness.training.seeding import seed_everything
from harness.training.test_time import with_test_time_augmentation
from model_parts.checkpoint import CheckpointError


def training_model(model, config, steps_per_epoch, teacher=None):
    """The model that trains: augmentation (active in training only) in front of `model` (and, with a
    `teacher`, DeiT's distillation graph), compiled with the run's optimizer, loss, metrics and
    compilation setting. It shares `model`'s weights."""
    if config.freeze_backbone:  # feature extraction: the pretrained encoder stays as it is, only the head learns
        for layer in model.layers:
            layer.trainable = layer.name == "head"
    augmentation = build_augmentation(config.augmentation, seed=config.seed)
    if teacher is None:
        trainee = with_augmentation(model, augmentation)
        # (mean over the weighted images: a padded evaluation batch, weighted 0, counts its real images only)
        loss = keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing,
                                                    reduction="mean_with_sample_weight")
        # Plain cross-entropy beside the training objective: the one loss every report and test figure uses.
        metrics = [keras.metrics.CategoricalAccuracy(name="accuracy"),
                   keras.metrics.CategoricalCrossentropy(from_logits=True, name="cross_entropy")]
    else:
        trainee = distillation.trainee(model, teacher, augmentation)
        loss = distillation.DistillationLoss(config.distillation, config.distillation_alpha,
                                             config.distillation_temperature, config.label_smoothing)
        metrics = distillation.metrics()  # of the student's fused answer, as it will be saved
    trainee.compile(optimizer=build_optimizer(config, model, steps_per_epoch), loss=loss, weighted_metrics=metrics,
                    jit_compile={"auto": "auto", "on": True, "off": False}[config.jit_compile])
    return trainee


@contextlib.contextmanager
def checkpoint_errors():
    """A checkpoint that does not fit is the user's to fix: one line, as every other such error."""
    try:
        yield
    except CheckpointError as error:  # raised by every family's loader
        raise UserError(str(error)) from None


def check_pretrained(config):
    """A released checkpoint of another model or size answers (a UserError) before any data loads."""
    if config.pretrained:
        family = MODEL_FAMILIES[config.model]
        architecture = family.resolve_config(config.preset, config.image_size, **model_overrides(config))
        with checkpoint_errors():
            family.check_pretrained(config.pretrained, architecture)


def print_parameters(model, breakdown):
    total = model.count_params()
    print(f"{model.name}: {total:,} parameters")
    for component, count in breakdown.items():
        print(f"  {component:<16} {count:>12,}  ({100 * count / max(total, 1):.1f}%)")


def train(config: TrainConfig, overwrite=False, verbose=None):
    """Trains, evaluates on the test split once, and fills a run directory. Returns the metrics."""
    config = resolve(config)
    if config.run_dir:  # refuse an occupied folder before the data loads, which can take a while
        RunDirectory(config.run_dir).check_available(overwrite)
    if config.teacher:  # a teacher of another image size answers before the data loads
        distillation.check_teacher(config.teacher, config.image_size)
    check_pretrained(config)
    dataset = data.load_dataset(config.dataset, config.data_dir, config.image_size)
    config = for_data(config, dataset)  # its epochs name the default folder
    run = RunDirectory.create(config.run_dir or default_run_path(config, dataset.name), overwrite)
    return _train_in(run, dataclasses.replace(config, run_dir=str(run.path)), dataset, verbose=verbose)


def resume(run_dir, verbose=None):
    """Continues a killed run from its last completed epoch, with its optimizer state and history."""
    run, config = open_unfinished_run(run_dir)
    run.lock()
    try:
        dataset = data.load_dataset(config.dataset, config.data_dir, config.image_size)
    except BaseException:
        run.unlock()
        raise
    return _train_in(run, config, dataset, resuming=True, verbose=verbose)


def _train_in(run, config, dataset, resuming=False, verbose=None):
    """Trains in an existing, locked run directory; Ctrl-C or SIGTERM from here on says what it holds."""
    try:
        plan = plan_run(config, dataset, deterministic=seed_everything(config.seed))
        keras.mixed_precision.set_global_policy(plan.precision)
        with devices.data_parallel(plan.placement):  # variables replicated, batches split, from the model's build on
            prepared = _prepare(run, plan, resuming)
            plan, recorder = _fit(run, prepared, verbose)
            return _finish(run, plan, prepared.model, prepared.trainee, recorder)
    except KeyboardInterrupt as interrupt:
        raise interrupted(run, config.epochs, isinstance(interrupt, Terminated)) from None
    finally:
        run.unlock()


@dataclasses.dataclass(frozen=True)
class Prepared:
    """A run ready to fit: its plan (with a time budget's length), its models, and the epochs it has done."""

    plan: RunPlan
    model: keras.Model  # the plain model, saved as model.keras
    trainee: keras.Model  # the model that trains (training_model), sharing `model`'s weights
    first_epoch: int  # the epochs a resumed run's checkpoint holds; 0 for a new run
    history: list  # their history.csv rows


def _prepare(run, plan, resuming):
    """The models (released weights, a teacher, a resumed run's checkpoint), config.json, manifest.json and
    the preflight's estimate. A time budget chooses the run's length here, from the measured speed."""
    model, pretrained = _built_model(run, plan, resuming)
    teacher, teacher_run = _teacher(plan)
    if plan.config.epochs is None:  # a time budget: as many epochs as the measured speed fits in it
        preset = plan.config.preset
        plan = plan_time_budget(plan, teacher)
        if plan.config.preset != preset:  # too slow a machine for the preset: the recipe's smaller one
            model, pretrained = _built_model(run, plan, resuming)
    trainee = training_model(model, plan.config, plan.steps_per_epoch, teacher)
    first_epoch, history = 0, []
    if resuming:
        first_epoch = run.restore_checkpoint(trainee, plan.steps_per_epoch)
        history = run.read_history() if run.history_path.exists() else []
        backfill_tensorboard(run, history)
        print(f"resuming {run.path} after epoch {first_epoch} of {plan.config.epochs}")
    else:
        run.write_config(_run_settings(plan, model, pretrained, teacher_run))
    _describe(run, plan, model, first_epoch if resuming else None)
    return Prepared(plan, model, trainee, first_epoch, history)


def _built_model(run, plan, resuming):
    """(the model, what config.json records of the released checkpoint it starts from, or None)."""
    family, config = plan.family, plan.config
    model = plan.build_model()
    pretrained = None
    if config.pretrained and not (resuming and run.checkpoint_path.exists()):  # a checkpoint holds newer weights
        with checkpoint_errors():
            report = family.load_pretrained(model, config.pretrained)
        print("\n".join(report.describe()))
        pretrained = {"file": pathlib.Path(report.path).name, "path": report.path, "sha256": report.sha256,
                      "dropped": report.dropped,
                      "position_grid": list(report.position_grid) if report.position_grid else None}
    family.adapt_to_data(model, plan.train_split.images)  # a resumed run's checkpoint then restores the same values
    print_parameters(model, family.parameter_breakdown(model))
    return model, pretrained


def _teacher(plan):
    """(the frozen teacher, what config.json records of its run) for DeiT's distillation, or (None, None)."""
    config = plan.config
    if not config.teacher:
        return None, None
    run_of_teacher, teacher_config = distillation.check_teacher(config.teacher, config.image_size,
                                                                plan.dataset.class_names)
    teacher = distillation.load_teacher(run_of_teacher)
    teacher_run = {"path": str(run_of_teacher.path), "model": teacher_config["model"],
                   "preset": teacher_config["preset"],
                   "test_accuracy": run_of_teacher.read_metrics()["test_accuracy"]}
    print(f"teacher: {teacher_config['model']} {teacher_config['preset']} from {run_of_teacher.path} "
          f"(test accuracy {100 * teacher_run['test_accuracy']:.2f}%), frozen; {config.distillation} distillation")
    return teacher, teacher_run


def _run_settings(plan, model, pretrained, teacher_run):
    """config.json: every setting, and what the run resolved them to."""
    dataset, train_split = plan.dataset, plan.train_split
    return {
        **plan.config.to_dict(),
        "dataset": dataset.name,
        "resolved_precision": plan.precision,
        "backend": keras.backend.backend(),
        "keras_version": keras.__version__,
        "model_config": plan.architecture,
        "class_names": dataset.class_names,
        "split_sizes": {"train": len(train_split), "validation": len(plan.val_split), "test": len(dataset.test),
                        "train_per_class": np.bincount(train_split.labels, minlength=dataset.num_classes).tolist()},
        "params": model.count_params(),
        "pretrained_checkpoint": pretrained,
        "teacher_run": teacher_run,
        "placement": dataclasses.asdict(plan.placement),  # the devices it started on (resume may use others)
    }


def _describe(run, plan, model, resumed_after_epoch):
    """manifest.json, then what the run will do: its data, devices and the preflight's estimate and warnings."""
    config, dataset, placement = plan.config, plan.dataset, plan.placement
    pipeline = inputs.pipeline_name(plan.on_device)
    write_json(run.manifest_path, {**build_manifest(run.read_config(), dataset, plan.precision, describe_device()),
                                   "placement": dataclasses.asdict(placement),
                                   "input_pipeline": pipeline,
                                   "resumed_after_epoch": resumed_after_epoch})
    print(
        f"data: {dataset.name}, {dataset.num_classes} classes, {len(plan.train_split)} train / "
        f"{len(plan.val_split)} validation / {len(dataset.test)} test images at {config.image_size}x"
        f"{config.image_size}; precision {plan.precision}{', deterministic' if plan.deterministic else ''}; "
        f"batches {pipeline}; run directory {run.path}"
    )
    if placement.count > 1:
        print(f"data parallel: {placement.describe()}")
    estimate = preflight.check(model, plan.family, plan.architecture, config, dataset, plan.train_images,
                               plan.precision, preflight.has_accelerator(), describe_device())
    if plan.budget is not None:  # measured, not estimated from FLOPs: the time per epoch the budget was planned with
        estimate.seconds_per_epoch = plan.budget.record["estimated_epoch_seconds"]
    print(estimate.line(config.batch_size, config.epochs), flush=True)
    for warning in estimate.warnings:
        print(f"warning: {warning}", file=sys.stderr, flush=True)


def _fit(run, prepared, verbose):
    """Trains the epochs left, recorded, guarded and (a time budget) re-planned by the callbacks.
    Returns (the plan as the run ended, the epoch recorder); a loss that became NaN is a UserError."""
    plan, model, first_epoch = prepared.plan, prepared.model, prepared.first_epoch
    config, steps_per_epoch = plan.config, plan.steps_per_epoch
    guard = NonFiniteLossGuard()
    recorder = EpochRecorder(run, plan.train_images, steps_per_epoch, guard, model, config.keep, config.patience,
                             prepared.history)
    if config.keep == "best" and first_epoch and recorder.best[0] == first_epoch:
        run.save_best(model)  # killed before the best weights were written: the checkpoint holds them
    step_limit = [] if config.steps is None else [StepLimit(config.steps, steps_per_epoch)]
    budget_guard = [] if plan.budget is None else [time_budget.BudgetGuard(
        plan.budget, step_limit[0], steps_per_epoch, recorder=recorder,
        on_replan=lambda steps, epochs: run.write_config({**run.read_config(), "steps": steps, "epochs": epochs}))]
    # a budget run may be re-planned to more epochs than planned: room for them
    last_epoch = budget_guard[0].max_epochs if budget_guard else config.epochs
    if budget_guard:
        print(f"(Keras counts the epochs up to {last_epoch}, the room a re-plan may take; the run ends after step "
              f"{config.steps}, in epoch {config.epochs}, unless re-planned)", flush=True)
    if first_epoch < config.epochs and not recorder.should_stop():
        classes, shard = plan.dataset.num_classes, plan.placement.shard
        train_data = inputs.training_batches(
            plan.train_split, classes, config.batch_size, range(first_epoch, last_epoch), config.seed,
            config.mixing, config.mixing_alpha, plan.deterministic, shard, plan.on_device,
        )
        val_data = (inputs.evaluation_batches(plan.val_split, classes, config.batch_size, plan.placement.count, shard)
                    if len(plan.val_split) else None)
        prepared.trainee.fit(
            train_data,
            validation_data=val_data,
            epochs=last_epoch,
            initial_epoch=first_epoch,
            steps_per_epoch=steps_per_epoch,
            # the budget guard comes after the recorder: it may re-plan the run the recorder has saved
            callbacks=[guard, *step_limit, recorder, *tensorboard_logger(run, recorder),
                       *augmentation_reseeder(prepared.trainee, config.seed), *budget_guard],
            shuffle=False,  # the pipeline shuffles each epoch itself; Keras would only warn that it cannot
            verbose=verbose if verbose is not None else (1 if sys.stdout.isatty() else 2),
        )
    if guard.failure:
        raise loss_failure(run, plan, *guard.failure)
    if budget_guard:
        record = budget_guard[0].finish()
        plan = plan.with_length(record["final_steps"], record["final_epochs"])
    return plan, recorder


def loss_failure(run, plan, epoch, step, loss):
    """The UserError for a loss that became NaN or infinite: where, what the run keeps, what to change."""
    hint = "; or train with --precision float32" if plan.precision != "float32" else ""
    kept = f"keeps the checkpoint of epoch {epoch - 1}" if epoch > 1 else "has no checkpoint yet"
    return UserError(
        f"the loss became {loss} at epoch {epoch}, step {step}, and training stopped ({run.path} {kept}). "
        f"Lower --learning-rate (it was {plan.config.learning_rate:g}){hint}"
    )


def plan_time_budget(plan, teacher, started=None):
    """The plan of a time-budget run, with its steps, epochs and warmup: a throwaway copy of the training
    model times its steps (harness.training.time_budget). Where that gives the preset fewer epochs than a
    recipe's `needed_epochs`, the plan of its `smaller_preset` instead, timed the same way in what is left."""
    config = plan.config
    started = time.perf_counter() if started is None else started
    budget = time_budget.BudgetPlan(config.time_budget, started)
    copy = plan.build_model()
    trial = training_model(copy, dataclasses.replace(config, epochs=1, warmup_epochs=0.0), plan.steps_per_epoch,
                           teacher)
    validation_batches = math.ceil(len(plan.val_split) / config.batch_size)
    measured = time_budget.measure(trial, plan.train_split, plan.dataset.num_classes, config.batch_size,
                                   validation_batches, config.time_budget)
    del trial, copy
    steps = budget.choose_steps(*measured, plan.steps_per_epoch, validation_batches)
    print(budget.describe(), flush=True)
    epochs = steps / plan.steps_per_epoch
    if config.smaller_preset and config.needed_epochs and epochs < config.needed_epochs:
        print(f"plan: {config.preset} would train {epochs:.1f} epochs in {config.time_budget / 60:g} minutes on this "
              f"machine, fewer than the {config.needed_epochs:g} it needs, so this run trains the smaller "
              f"{config.smaller_preset} instead (the recipe's choice for a slower machine)", flush=True)
        return plan_time_budget(plan.with_preset(config.smaller_preset), teacher, started)
    return plan.with_budget(budget, steps)


def interrupted(run, epochs, terminated):
    """What Ctrl-C or SIGTERM leaves: the epochs the checkpoint holds, and the command that continues."""
    cause = "terminated (SIGTERM)" if terminated else "interrupted"
    if not run.saved_epochs:  # config.json is written, so --resume starts the same run over from epoch 1
        return Interrupted(f"{cause} before epoch 1 finished, so no epoch is saved; a new run may use {run.path} "
                           f"again, or start this one over with: python train.py --resume {run.path}", terminated)
    saved = "epoch 1 is" if run.saved_epochs == 1 else f"epochs 1-{run.saved_epochs} are"
    return Interrupted(f"{cause} in epoch {run.saved_epochs + 1}: {saved} saved (of {epochs}) in {run.path}; "
                       f"continue with: python train.py --resume {run.path}", terminated)


def test_batches(plan):
    placement = plan.placement
    return inputs.evaluation_batches(plan.dataset.test, plan.dataset.num_classes, plan.config.batch_size,
                                     placement.count, placement.shard)


def test_accuracy_with_tta(model, trainee, plan):
    """The test accuracy of `model` with test-time augmentation, compiled as `trainee` is."""
    augmented = with_test_time_augmentation(model)
    augmented.compile(loss=keras.losses.CategoricalCrossentropy(from_logits=True),
                      weighted_metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
                      jit_compile=trainee.jit_compile)
    return float(augmented.evaluate(test_batches(plan), verbose=0, return_dict=True)["accuracy"])


def _finish(run, plan, model, trainee, recorder):
    """Tests the saved weights, saves model.keras, writes metrics.json (the run is finished) and returns its metrics."""
    config, dataset = plan.config, plan.dataset
    history = run.read_history()
    saved_epoch = len(history)
    if config.keep == "best" and recorder.best[0]:
        model.load_weights(run.best_path)  # trainee shares these weights
        saved_epoch = recorder.best[0]
    print(f"testing on the {len(dataset.test):,} test images ...", flush=True)  # minutes on a CPU: say so
    started = time.perf_counter()
    results = trainee.evaluate(test_batches(plan), verbose=1 if sys.stdout.isatty() else 0, return_dict=True)
    with_tta = None
    if config.test_time_augmentation:
        print("testing again with test-time augmentation (6 views of each image) ...", flush=True)
        with_tta = test_accuracy_with_tta(model, trainee, plan)
    test_seconds = time.perf_counter() - started
    run.save_model(model)
    train_seconds = sum(float(row["seconds"]) for row in history)
    metrics = {
        "model": config.model,
        "preset": config.preset,
        "dataset": dataset.name,
        "test_accuracy": float(results["accuracy"]),
        "test_loss": float(results["cross_entropy"]),  # plain cross-entropy, as evaluate.py computes it
        # the mean logits of six views of each image (harness.training.test_time); None: not asked for
        "test_accuracy_tta": with_tta,
        "best_val_accuracy": recorder.best[1],
        "saved_epoch": saved_epoch,  # whose weights model.keras holds (--keep)
        "keep": config.keep,
        "epochs_trained": len(history),
        "steps_trained": int(keras.ops.convert_to_numpy(trainee.optimizer.iterations)),
        "stopped_early": len(history) < config.epochs,
        "train_images_per_epoch": recorder.train_images,
        "params": model.count_params(),
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 2),
        "test_seconds": round(test_seconds, 2),  # the final evaluation(s), outside any time budget
        "images_per_second": round(recorder.steady_images_per_second() or 0.0, 1),
        "precision": plan.precision,
        "backend": keras.backend.backend(),
        **({"time_budget": plan.budget.record} if plan.budget else {}),
    }
    run.write_metrics(metrics)  # from here on, the run counts as finished
    run.remove_checkpoint()
    kept = f" (weights of epoch {saved_epoch}, the best validation accuracy)" if config.keep == "best" else ""
    if with_tta is not None:
        kept += f"; {100 * with_tta:.2f}% with test-time augmentation"
    stopped = f" | stopped early after epoch {len(history)} of {config.epochs}" if metrics["stopped_early"] else ""
    print(
        f"done: {config.model} {config.preset} | {metrics['params']:,} params | test accuracy "
        f"{100 * metrics['test_accuracy']:.2f}%{kept} ({len(dataset.test)} images){stopped} | "
        f"{train_seconds:.0f}s training, "
        f"{metrics['images_per_second']:.0f} img/s | {run.path}"
    )
    return metrics
