"""What a run will cost, said before its first step: tokens, parameters, FLOPs, memory, time per epoch.

Estimates, not measurements: memory from the model's shapes, time from its FLOPs and this device's
measured matrix-multiply speed. They are good to about 30% (memory) and a factor of two (time), and
exist to catch a setting that is off by ten or a hundred before it fills the machine.
"""

import dataclasses
import time
from typing import Optional

import keras

from harness.training.precision import gpu_compute_capability
from vit_tf.presets import pixels_per_token

TRAINING_FLOPS_FACTOR = 3  # forward + backward pass: about three forward passes
# Training reaches about this share of a plain large matmul's FLOP/s (0.3-0.4 measured on a 2-core CPU
# for vit_cifar_mini, vit_cifar_tiny and resnet20; docs/training.md, "Preflight").
MATMUL_EFFICIENCY = 0.3
MEMORY_WARNING_SHARE = 0.8  # warn when an estimate passes this share of the free memory
LONG_RUN_SECONDS = 24 * 3600


@dataclasses.dataclass
class Preflight:
    tokens: Optional[int]  # per image (ViT)
    params: int
    forward_flops: float  # per image
    activation_bytes: float  # kept for the backward pass, per batch
    dataset_bytes: int  # the uint8 images held in memory
    seconds_per_epoch: float
    device: str
    free_host_bytes: Optional[int]
    free_accelerator_bytes: Optional[int]
    warnings: list

    def line(self, batch_size, epochs):
        tokens = f"{self.tokens:,} tokens per image, " if self.tokens else ""
        free = self.free_accelerator_bytes or self.free_host_bytes
        return (f"preflight: {tokens}{self.params:,} parameters, {_flops(self.forward_flops)} per image (forward); "
                f"about {_size(self.activation_bytes)} of activations per batch of {batch_size}"
                f"{f' ({_size(free)} free)' if free else ''}, {_size(self.dataset_bytes)} of images in memory; "
                f"about {_duration(self.seconds_per_epoch)} per epoch, {_duration(self.seconds_per_epoch * epochs)} "
                f"for {epochs} epoch{'s' if epochs > 1 else ''} on this {self.device}")


def matmul_flops_per_second(dtype, on_accelerator):
    """FLOP/s of a square matrix product on the device Keras computes on, best of three."""
    size = 4096 if on_accelerator else 1024
    matrix = keras.random.normal((size, size), dtype=dtype, seed=0)

    def one_product():  # reading a value waits for it; as float32, since TensorFlow hands no bfloat16 to numpy
        keras.ops.convert_to_numpy(keras.ops.cast(keras.ops.matmul(matrix, matrix)[0, 0], "float32"))

    one_product()  # compile and warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        one_product()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def free_host_bytes():
    """Memory the operating system can still give this process (Linux MemAvailable), or None."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def free_accelerator_bytes():
    """Free memory of the first accelerator where the backend reports it (JAX, PyTorch), or None."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        device = jax.devices()[0]
        stats = device.memory_stats() if device.platform == "gpu" else None
        if stats and "bytes_limit" in stats:
            return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return torch.cuda.mem_get_info()[0]
    return None


def tokens_per_image(architecture):
    """Patches (of pixels, or of a hybrid's feature map) plus the class and distillation tokens; None for a CNN."""
    if "patch_size" not in architecture:
        return None
    grid = architecture["image_size"] // pixels_per_token(architecture)
    return grid * grid + (architecture.get("classifier") == "token") + bool(architecture.get("distillation"))


def check(model, family, architecture, config, dataset, train_images, precision, on_accelerator, device):
    """The estimates and their warnings for one run."""
    bytes_per_value = 4 if precision == "float32" else 2
    activation_bytes = family.activations_per_image(model) * min(config.batch_size, train_images) * bytes_per_value
    dataset_bytes = sum(split.images.nbytes for split in (dataset.train, dataset.test))
    forward_flops = family.flops_per_image(model)
    compute_dtype = keras.DTypePolicy(precision).compute_dtype
    speed = matmul_flops_per_second(compute_dtype, on_accelerator) * MATMUL_EFFICIENCY
    seconds_per_epoch = TRAINING_FLOPS_FACTOR * forward_flops * train_images / speed
    report = Preflight(tokens_per_image(architecture), model.count_params(), forward_flops, activation_bytes,
                       dataset_bytes, seconds_per_epoch, device, free_host_bytes(),
                       free_accelerator_bytes() if on_accelerator else None, [])
    side = pixels_per_token(architecture) if "patch_size" in architecture else 1
    report.warnings = _warnings(report, config, dataset, train_images, on_accelerator, side)
    return report


def _warnings(report, config, dataset, train_images, on_accelerator, patch_size):
    found = []
    size = config.image_size
    if dataset.source_size and size > dataset.source_size:
        pixels = (size / dataset.source_size) ** 2
        native = max(patch_size, dataset.source_size // patch_size * patch_size)  # the model needs whole patches
        found.append(f"the images are upscaled from about {dataset.source_size} px to {size} px: {pixels:.0f}x the "
                     f"pixels and no new detail{f', {report.tokens:,} tokens per image' if report.tokens else ''}; "
                     f"--image-size {native} would not upscale them")
    if config.batch_size > train_images:
        found.append(f"--batch-size {config.batch_size} is more than the {train_images} training images: each epoch "
                     f"is one step of {train_images}")
    # The images are loaded by now, so the free memory is what the activations can have.
    room = report.free_accelerator_bytes if on_accelerator else report.free_host_bytes
    if room and report.activation_bytes > MEMORY_WARNING_SHARE * room:
        found.append(f"a batch of {config.batch_size} needs about {_size(report.activation_bytes)} of activations, "
                     f"more than this {report.device} has free ({_size(room)}); lower --batch-size or --image-size")
    total = report.seconds_per_epoch * config.epochs
    if total > LONG_RUN_SECONDS:
        found.append(f"the run is estimated at {_duration(total)} on this {report.device}; a smaller --preset, "
                     "--image-size or --epochs, or a GPU, would shorten it")
    return found


def _size(count):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:.0f} B"


def _flops(count):
    for unit, scale in (("TFLOPs", 1e12), ("GFLOPs", 1e9), ("MFLOPs", 1e6)):
        if count >= scale:
            return f"{count / scale:.1f} {unit}"
    return f"{count:,.0f} FLOPs"


def _duration(seconds):
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


def has_accelerator():
    return gpu_compute_capability() is not None
