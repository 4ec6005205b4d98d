"""Choosing the Keras dtype policy: mixed precision on a GPU; float32 on a CPU, or bfloat16 where it is faster."""

import sys

import keras

from harness.backend import native_noise_filtered
from harness.training.config import PRECISIONS


def gpu_compute_capability():
    """(major, minor) of the first GPU the Keras backend sees, or None without a GPU."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with native_noise_filtered("asking TensorFlow for GPUs"):  # without CUDA, it logs a cuInit error
            gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            return tf.config.experimental.get_device_details(gpus[0]).get("compute_capability", (0, 0))
    elif backend == "jax":
        import jax

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if gpus:
            return tuple(int(v) for v in str(getattr(gpus[0], "compute_capability", "0.0")).split("."))
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_capability(0)
    return None


def cpu_has_bfloat16(cpuinfo="/proc/cpuinfo"):
    """Whether the CPU multiplies bfloat16 natively (x86 AVX-512 BF16 or AMX), as Linux reports it."""
    try:
        with open(cpuinfo) as file:
            flags = next((line.split(":", 1)[1].split() for line in file if line.startswith("flags")), [])
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(requested):
    """The policy name to use: "auto" (or None) picks bfloat16 on Ampere or newer, float16 on older GPUs,
    float32 on a CPU; "fastest" does the same, but picks bfloat16 on a CPU with bfloat16 instructions,
    where training steps run 1.25-1.34x faster (results/speed/cpu-bf16-precision-*.json).

    Asked for by name on a CPU, mixed bfloat16 runs where the CPU has bfloat16 instructions; other mixed
    precision falls back to float32 with a warning, since such CPUs gain nothing from it.
    """
    requested = requested or "auto"
    if requested not in PRECISIONS:
        raise ValueError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    capability = gpu_compute_capability()
    if requested in ("auto", "fastest"):
        if capability is None:
            return "mixed_bfloat16" if requested == "fastest" and cpu_has_bfloat16() else "float32"
        return "mixed_bfloat16" if capability >= (8, 0) else "mixed_float16"
    if requested == "mixed_bfloat16" and capability is None and cpu_has_bfloat16():
        return requested
    if requested != "float32" and capability is None:
        print(f"warning: --precision {requested} needs a GPU or, for mixed_bfloat16, a CPU with bfloat16 "
              "instructions; none found, using float32", file=sys.stderr)
        return "float32"
    return requested


def describe_device():
    """"GPU (compute capability 9.0)" or "CPU (x86_64, 2 cores)", for manifests and reports."""
    capability = gpu_compute_capability()
    if capability is not None:
        return f"GPU (compute capability {'.'.join(map(str, capability))})"
    import os
    import platform

    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"
