"""Training one model on one dataset, from a `TrainConfig` to a finished run directory."""

import dataclasses
import statistics
import sys
import time

import keras

from harness import data, pipeline
from harness.augment import build_augmentation
from harness.config import TrainConfig
from harness.errors import UserError
from harness.models import MODEL_FAMILIES
from harness.precision import resolve_precision
from harness.run_dir import RunDirectory, default_run_name

# Weights that get no weight decay besides biases and normalisation scales (all of rank < 2).
NO_DECAY_NAMES = ("class_token", "position_embedding")


def no_decay_variables(model):
    """Biases, LayerNorm/BatchNorm parameters, the class token and position embeddings."""
    return [v for v in model.trainable_variables if len(v.shape) < 2 or v.name in NO_DECAY_NAMES]


def learning_rate_schedule(peak, total_steps, warmup_steps):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then cosine decay to 0."""
    warmup_steps = min(warmup_steps, total_steps - 1)
    if warmup_steps <= 0:
        return keras.optimizers.schedules.CosineDecay(peak, total_steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total_steps - warmup_steps, warmup_target=peak, warmup_steps=warmup_steps
    )


def build_optimizer(config, model, steps_per_epoch):
    schedule = learning_rate_schedule(
        config.learning_rate,
        total_steps=config.epochs * steps_per_epoch,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
    )
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    else:
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=config.weight_decay)
    optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    return optimizer


class EpochLogger(keras.callbacks.Callback):
    """Appends one history.csv row per epoch, timing the training part apart from validation."""

    def __init__(self, run, train_images):
        super().__init__()
        self.run = run
        self.train_images = train_images
        self.train_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.train_end = None

    def on_test_begin(self, logs=None):  # validation starts once the epoch's training steps are done
        self.train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        train_seconds = (self.train_end or now) - self.epoch_start
        self.train_seconds.append(train_seconds)
        learning_rate = self.model.optimizer.learning_rate
        self.run.append_history(
            {
                **{name: round(float(value), 6) for name, value in (logs or {}).items()},
                "epoch": epoch + 1,
                "seconds": round(now - self.epoch_start, 3),
                "images_per_second": round(self.train_images / train_seconds, 1),
                "learning_rate": round(float(keras.ops.convert_to_numpy(learning_rate)), 8),
            }
        )

    def steady_images_per_second(self):
        """Training throughput of a typical epoch; the first includes compilation, so it is left out."""
        seconds = self.train_seconds[1:] or self.train_seconds
        return self.train_images / statistics.median(seconds)


def print_parameters(model, breakdown):
    total = model.count_params()
    print(f"{model.name}: {total:,} parameters")
    for component, count in breakdown.items():
        print(f"  {component:<16} {count:>12,}  ({100 * count / max(total, 1):.1f}%)")


def train(config: TrainConfig, overwrite=False, verbose=None):
    """Trains, evaluates on the test split once, and fills a run directory. Returns the metrics."""
    if config.model not in MODEL_FAMILIES:
        raise UserError(f"unknown model {config.model!r}; choose one of {', '.join(MODEL_FAMILIES)}")
    family = MODEL_FAMILIES[config.model]
    config = config.with_recipe_defaults(family.default_preset)
    try:
        image_size = family.resolve_config(config.preset, image_size=config.image_size)["image_size"]
    except ValueError as error:
        raise UserError(str(error)) from None
    config = dataclasses.replace(config, image_size=image_size)
    if config.run_dir:  # refuse an occupied folder before the data loads, which can take a while
        RunDirectory(config.run_dir).check_available(overwrite)

    keras.utils.set_random_seed(config.seed)
    precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(precision)

    dataset = data.load_dataset(config.dataset, config.data_dir, image_size)
    run = RunDirectory.create(config.run_dir or f"runs/{default_run_name(config, dataset.name)}", overwrite)
    config = dataclasses.replace(config, run_dir=str(run.path))
    train_split, val_split = data.split_validation(dataset.train, config.val_fraction, config.seed)
    model = family.build(config.preset, image_size=image_size, num_classes=dataset.num_classes)
    print_parameters(model, family.parameter_breakdown(model))

    run.write_config(
        {
            **config.to_dict(),
            "dataset": dataset.name,
            "resolved_precision": precision,
            "backend": keras.backend.backend(),
            "keras_version": keras.__version__,
            "model_config": family.resolve_config(config.preset, image_size, dataset.num_classes),
            "class_names": dataset.class_names,
            "split_sizes": {"train": len(train_split), "validation": len(val_split), "test": len(dataset.test)},
            "params": model.count_params(),
        }
    )
    print(
        f"data: {dataset.name}, {dataset.num_classes} classes, {len(train_split)} train / "
        f"{len(val_split)} validation / {len(dataset.test)} test images at {image_size}x{image_size}; "
        f"precision {precision}; run directory {run.path}"
    )

    batches = lambda split, **kw: pipeline.make_dataset(  # noqa: E731
        split, dataset.num_classes, config.batch_size, seed=config.seed, **kw
    )
    train_data = batches(
        train_split, training=True, augmentation=build_augmentation(config.augmentation, image_size, config.seed)
    )
    val_data = batches(val_split) if len(val_split) else None
    steps_per_epoch = max(1, len(train_split) // config.batch_size)
    model.compile(
        optimizer=build_optimizer(config, model, steps_per_epoch),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=config.label_smoothing),
        metrics=[keras.metrics.CategoricalAccuracy(name="accuracy")],
    )
    logger = EpochLogger(run, train_images=steps_per_epoch * config.batch_size)
    verbose = verbose if verbose is not None else (1 if sys.stdout.isatty() else 2)
    start = time.perf_counter()
    history = model.fit(
        train_data,
        validation_data=val_data,
        epochs=config.epochs,
        callbacks=[logger],
        verbose=verbose,
        shuffle=False,  # the tf.data pipeline shuffles; Keras would only warn that it cannot
    )
    train_seconds = time.perf_counter() - start

    test_loss, test_accuracy = model.evaluate(batches(dataset.test), verbose=0)
    run.save_model(model)
    val_accuracies = history.history.get("val_accuracy", [])
    metrics = {
        "model": config.model,
        "preset": config.preset,
        "dataset": dataset.name,
        "test_accuracy": float(test_accuracy),
        "test_loss": float(test_loss),
        "best_val_accuracy": max(val_accuracies) if val_accuracies else None,
        "params": model.count_params(),
        "epochs": config.epochs,
        "train_seconds": round(train_seconds, 2),
        "images_per_second": round(logger.steady_images_per_second(), 1),
        "precision": precision,
        "backend": keras.backend.backend(),
    }
    run.write_metrics(metrics)
    print(
        f"done: {config.model} {config.preset} | {metrics['params']:,} params | test accuracy "
        f"{100 * test_accuracy:.2f}% ({len(dataset.test)} images) | {train_seconds:.0f}s training, "
        f"{metrics['images_per_second']:.0f} img/s | {run.path}"
    )
    return metrics
