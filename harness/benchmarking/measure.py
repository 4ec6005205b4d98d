"""Timing one model's training and inference steps, and what the device reports about them."""

import dataclasses
import datetime
import os
import platform
import resource
import sys
import time

import keras

from harness.training import inputs
from harness.training.precision import gpu_compute_capability

# Dense (no sparsity) peak FLOP/s of the tensor cores, from NVIDIA's data sheets, per precision.
# H100 and H200 SXM share the same compute. float32 matmuls run as TF32 on these GPUs under XLA/JAX.
PEAK_FLOPS = {
    "H100": {"mixed_bfloat16": 989e12, "mixed_float16": 989e12, "float32": 494.7e12},
    "H200": {"mixed_bfloat16": 989e12, "mixed_float16": 989e12, "float32": 494.7e12},
    "A100": {"mixed_bfloat16": 312e12, "mixed_float16": 312e12, "float32": 156e12},
}


TRAIN_REPEATS, EVAL_REPEATS = 2, 3  # the first evaluation compiles, so the minimum is of the others


@dataclasses.dataclass
class Measurement:
    name: str
    params: int
    batch_size: int
    precision: str
    jit_compile: bool
    train_images_per_second: float
    eval_images_per_second: float
    forward_gflops_per_image: float | None  # None: a peer's, filled in from ours of its size
    mfu: float | None  # model FLOPs utilisation of training, against the device's peak
    accelerator_peak_mib: float | None
    host_peak_rss_mib: float
    input_pipeline: str  # where batches and their augmentation come from
    devices: int = 1  # data-parallel devices the batch was split across
    mixing: str = "none"  # MixUp/CutMix in the input pipeline
    nan_guard: str | None = None  # "async": ours, with the NaN guard as training runs it; None: no guard
    gelu: str | None = None  # a ViT's MLP activation: "tanh" or "exact" (erf); None: a CNN


def device_name():
    """The accelerator's marketing name ("NVIDIA H100 80GB HBM3"), or "CPU"."""
    if gpu_compute_capability() is None:
        return "CPU"
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.devices()[0].device_kind
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.config.experimental.get_device_details(
            tf.config.list_physical_devices("GPU")[0]).get("device_name", "GPU")
    import torch

    return torch.cuda.get_device_name(0)


def environment():
    """Device, backend, versions and time, for every benchmark file."""
    from harness.training.manifest import cpu_description, library_versions

    return {"device": device_name(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores ({cpu_description()})",
            "backend": keras.backend.backend(), "versions": library_versions(),
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "command": " ".join(sys.argv)}


def peak_flops(precision):
    for chip, peaks in PEAK_FLOPS.items():
        if chip in device_name():
            return peaks[precision]
    return None


def accelerator_peak_mib():
    """Peak accelerator memory in use so far, where the backend reports it (GPU only)."""
    if gpu_compute_capability() is None:
        return None
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        stats = jax.devices()[0].memory_stats() or {}
        peak = stats.get("peak_bytes_in_use")
    elif backend == "tensorflow":
        import tensorflow as tf

        peak = tf.config.experimental.get_memory_info("GPU:0")["peak"]
    else:
        import torch

        peak = torch.cuda.max_memory_allocated()
    return None if peak is None else peak / 2**20


def reset_accelerator_peak():
    if gpu_compute_capability() is None:
        return
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.reset_memory_stats("GPU:0")
    elif keras.backend.backend() == "torch":
        import torch

        torch.cuda.reset_peak_memory_stats()
    # JAX keeps one process-wide peak, which is per row: benchmark.py measures each row in its own process.


def timed_fit(trainee, data, steps, callbacks=()):
    """Seconds for `steps` training steps of an already compiled and warmed-up model."""
    start = time.perf_counter()
    trainee.fit(data, epochs=1, steps_per_epoch=steps, verbose=0, shuffle=False, callbacks=list(callbacks))
    # (the epoch's end reads the logs, which waits for the last step)
    return time.perf_counter() - start


def timed_predict(model, data):
    start = time.perf_counter()
    model.predict(data, verbose=0)
    return time.perf_counter() - start


def best_seconds(train, predict, warmup_steps, steps):
    """(seconds of `steps` training steps, seconds of inference): `train(count)` times `count` steps and
    `predict()` the evaluation batches. The first training call warms up (compilation included); then the best
    of repeats, since shared and virtual machines slow single runs down at random. The first inference compiles."""
    train(warmup_steps)
    train_seconds = min(train(steps) for _ in range(TRAIN_REPEATS))
    return train_seconds, min(predict() for _ in range(EVAL_REPEATS))


def measure(name, model, trainee, train_data, eval_split, settings, precision, input_pipeline, flops, devices=1,
            callbacks=()):
    """Train img/s after the settings' warmup steps (compilation included there), then eval img/s, FLOPs and
    memory, with `settings` a RowSettings and `precision` the policy it resolved to.

    Each `fit` call starts `train_data` afresh, so it must yield at least max(warmup_steps, steps)
    batches. `flops`: the model's forward FLOPs per image (`ModelFamily.flops_per_image`). `callbacks`:
    those training runs with (the NaN guard), so that their cost is timed too.
    """
    reset_accelerator_peak()
    eval_data = inputs.evaluation_batches(eval_split, settings.num_classes, settings.batch_size, devices)
    train_seconds, eval_seconds = best_seconds(lambda count: timed_fit(trainee, train_data, count, callbacks),
                                               lambda: timed_predict(model, eval_data), settings.warmup_steps,
                                               settings.steps)
    train_rate = settings.steps * settings.batch_size / train_seconds
    peak = peak_flops(precision)
    return Measurement(
        name=name,
        params=model.count_params(),
        batch_size=settings.batch_size,
        precision=precision,
        jit_compile=bool(trainee.jit_compile),
        train_images_per_second=round(train_rate, 1),
        eval_images_per_second=round(len(eval_split) / eval_seconds, 1),
        forward_gflops_per_image=None if flops is None else round(flops / 1e9, 4),
        mfu=None if peak is None or flops is None else round(3 * flops * train_rate / peak, 4),  # backward = 2x forward
        accelerator_peak_mib=accelerator_peak_mib(),
        host_peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        input_pipeline=input_pipeline,
        devices=devices,
    )
