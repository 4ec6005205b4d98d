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


class SynchronousNaNGuard(NonFiniteLossGuard):
    """The NaN guard as training ran it before: Keras waits for each step's loss before the next step."""

    async_safe = False


def run_variant(kind, preset, batch_size, precision, jit_compile, warmup_steps, steps, num_classes=10, devices="1",
                mixing="none", data_on_device="auto", nan_guard="async", augmentation="crop_flip", gelu=None):
    """One row of the benchmark table, measured in this process: ours as train.py trains it (its NaN guard,
    in-model `augmentation`, `mixing` in the input pipeline, batches from the host or made on the device) on
    `devices` data-parallel devices; `nan_guard` "sync" times the guard that waits for every step; `gelu` the
    ViT's MLP activation (None: train.py's default; a CNN has none and ignores it)."""
    family = MODEL_FAMILIES["vit" if kind == "baseline" else kind]
    image_size = family.resolve_config(preset)["image_size"]
    steps_needed = max(warmup_steps, steps)
    split, eval_split = timing_splits(batch_size, warmup_steps, steps, image_size, num_classes)
    if kind == "baseline":
        return _run_baseline(preset, family, image_size, split, eval_split, num_classes, batch_size, warmup_steps,
                             steps, inputs.pipeline_name(on_device=False))

    config = TrainConfig(model=kind, preset=preset, batch_size=batch_size, epochs=1, precision=precision,
                         jit_compile=jit_compile, mixing=mixing, augmentation=augmentation,
                         gelu=gelu if family.transformer else None).with_recipe_defaults(family.default_preset)
    resolved_precision = resolve_precision(config.precision)
    keras.mixed_precision.set_global_policy(resolved_precision)
    placement = resolve_placement(devices, batch_size, batch_size)
    on_device = inputs.data_on_device(data_on_device, split, placement.count)
    guard = SynchronousNaNGuard() if nan_guard == "sync" else NonFiniteLossGuard()
    with data_parallel(placement):
        model = family.build(preset, image_size=image_size, num_classes=num_classes, **model_overrides(config))
        trainee = training_model(model, config, steps_per_epoch=steps_needed)
        data = inputs.training_batches(split, num_classes, batch_size, range(1), seed=0, mixing=config.mixing,
                                       mixing_alpha=config.mixing_alpha, deterministic=False, on_device=on_device)
        measurement = measure(f"{kind}:{preset}", model, trainee, data, eval_split, num_classes, batch_size,
                              resolved_precision, warmup_steps, steps,
                              f"{inputs.pipeline_name(on_device)}; "
                              + ("no augmentation" if augmentation == "none" else f"{augmentation} in the model"),
                              family.flops_per_image(model), placement.count, callbacks=[guard])
    if guard.failure:
        raise UserError(f"the loss became {guard.failure[2]} while measuring {kind}:{preset}; the timing would "
                        "be of a broken run (try --precision float32)")
    return dataclasses.replace(measurement, mixing=config.mixing, nan_guard=nan_guard, gelu=config.gelu)


def _run_baseline(preset, family, image_size, split, eval_split, num_classes, batch_size, warmup_steps, steps, source):
    keras.mixed_precision.set_global_policy("float32")
    architecture = family.resolve_config(preset, image_size=image_size, num_classes=num_classes)
    model = baseline_vit.build_baseline_vit(
        architecture["patch_size"], architecture["hidden_dim"], architecture["num_layers"], architecture["mlp_dim"],
        architecture["num_heads"], image_size, num_classes,
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3, weight_decay=0.05),
                  loss=keras.losses.CategoricalCrossentropy(from_logits=True), jit_compile=False)
    data = baseline_vit.baseline_training_data(split, num_classes, batch_size, seed=0)
    # The same architecture as ours, so the same FLOPs.
    flops = family.flops_per_image(family.build(preset, image_size=image_size, num_classes=num_classes))
    measurement = measure(f"baseline:{preset}", model, model, data, eval_split, num_classes, batch_size, "float32",
                          warmup_steps, steps, f"{source}; augmentation on the CPU", flops=flops)
    return dataclasses.replace(measurement, gelu="exact")  # Keras' "gelu" activation is the erf form
