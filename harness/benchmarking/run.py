"""Benchmark configurations: our models as train.py trains them, and the straightforward baseline ViT."""

import dataclasses

import keras

from harness.benchmarking import baseline_vit
from harness.benchmarking.measure import measure
from harness.benchmarking.synthetic import timing_splits
from harness.errors import UserError
from harness.models import MODEL_FAMILIES
from harness.training import inputs
from harness.training.callbacks import NonFiniteLossGuard
from harness.training.config import TrainConfig, model_overrides
from harness.training.devices import data_parallel, resolve_placement
from harness.training.precision import resolve_precision
from harness.training.trainer import training_model


def run_variant(kind, preset, settings):
    """One row of the benchmark table, measured in this process with `settings` (a RowSettings): ours as train.py
    trains it (its NaN guard, in-model augmentation, mixing in the input pipeline, batches from the host or made
    on the device) on the data-parallel devices asked for, or the baseline ViT of the preset's size."""
    family = MODEL_FAMILIES["vit" if kind == "baseline" else kind]
    image_size = family.resolve_config(preset)["image_size"]
    split, eval_split = timing_splits(settings, image_size)
    if kind == "baseline":
        return _run_baseline(preset, family, image_size, split, eval_split, settings)

    config = TrainConfig(model=kind, preset=preset, batch_size=settings.batch_size, epochs=1,
                         precision=settings.precision, jit_compile=settings.jit_compile, mixing=settings.mixing,
                         augmentation=settings.augmentation, gelu=settings.gelu if family.transformer else None
                         ).with_recipe_defaults(family.default_preset)
    resolved_precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(resolved_precision)
    placement = resolve_placement(settings.devices, settings.batch_size, settings.batch_size)
    on_device = inputs.data_on_device(settings.data_on_device, split, placement.count)
    guard = NonFiniteLossGuard()
    with data_parallel(placement):
        model = family.build(preset, image_size=image_size, num_classes=settings.num_classes,
                             **model_overrides(config))
        trainee = training_model(model, config, steps_per_epoch=max(settings.warmup_steps, settings.steps))
        data = inputs.training_batches(split, settings.num_classes, settings.batch_size, range(1), seed=0,
                                       mixing=config.mixing, mixing_alpha=config.mixing_alpha, deterministic=False,
                                       on_device=on_device)
        augmentation = "no augmentation" if settings.augmentation == "none" else f"{settings.augmentation} in the model"
        measurement = measure(f"{kind}:{preset}", model, trainee, data, eval_split, settings, resolved_precision,
                              f"{inputs.pipeline_name(on_device)}; {augmentation}", family.flops_per_image(model),
                              placement.count, callbacks=[guard])
    if guard.failure:
        raise UserError(f"the loss became {guard.failure[2]} while measuring {kind}:{preset}; the timing would "
                        "be of a broken run (try --precision float32)")
    return dataclasses.replace(measurement, mixing=config.mixing, nan_guard="async", gelu=config.gelu)


def _run_baseline(preset, family, image_size, split, eval_split, settings):
    keras.mixed_precision.set_global_policy("float32")
    architecture = family.resolve_config(preset, image_size=image_size, num_classes=settings.num_classes)
    model = baseline_vit.build_baseline_vit(
        architecture["patch_size"], architecture["hidden_dim"], architecture["num_layers"], architecture["mlp_dim"],
        architecture["num_heads"], image_size, settings.num_classes,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=False)
    data = baseline_vit.baseline_training_data(split, settings.num_classes, settings.batch_size, seed=0)
    # The same architecture as ours, so the same FLOPs.
    flops = family.flops_per_image(family.build(preset, image_size=image_size, num_classes=settings.num_classes))
    source = inputs.pipeline_name(on_device=False)
    measurement = measure(f"baseline:{preset}", model, model, data, eval_split, settings, "float32",
                          f"{source}; augmentation on the CPU", flops=flops)
    return dataclasses.replace(measurement, gelu="exact")  # Keras' "gelu" activation is the erf form
