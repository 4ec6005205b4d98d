"""Training and evaluation batches: tf.data on the TensorFlow backend, plain Python on the others.

The JAX and PyTorch backends never load TensorFlow: next to a CUDA PyTorch its LLVM clashes with
Triton's and kills the process on import.
"""

import keras

from harness.training import array_pipeline
from harness.training.preflight import has_accelerator

DEVICE_DATA_LIMIT = 4 * 2**30  # bytes of uint8 pixels that --data-on-device auto puts on the accelerator


def on_tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


def data_on_device(setting, split, devices=1):
    """Whether the training batches are made on the accelerator, for --data-on-device auto, on or off.

    auto: on JAX with one GPU, when the split's pixels fit in DEVICE_DATA_LIMIT; with several devices
    Keras splits each host batch across them itself. (`resolve` has refused "on" where it cannot apply.)
    """
    if setting == "off" or keras.backend.backend() != "jax" or devices > 1:
        return False
    return setting == "on" or (has_accelerator() and split.images.nbytes <= DEVICE_DATA_LIMIT)


def pipeline_name(on_device):
    """Where the training batches come from, as manifest.json and the benchmark record it."""
    if on_tensorflow_backend():
        return "tf.data"
    return "on the device" if on_device else "PyDataset from host memory"


def training_batches(split, num_classes, batch_size, epochs, seed, mixing="none", mixing_alpha=1.0,
                     deterministic=True, shard=(0, 1), on_device=False):
    """Batches for `epochs` (a range): shuffled per (seed, epoch), full, optionally mixed; in a multi-host
    job (JAX), this process's `shard` = (index, processes) of each; with `on_device` (JAX), made on the
    accelerator from a copy of the split there."""
    if on_tensorflow_backend():
        from harness.training import tf_pipeline as pipeline

        return pipeline.make_training_dataset(split, num_classes, batch_size, epochs, seed, mixing, mixing_alpha,
                                              deterministic)
    return array_pipeline.TrainingBatches(split, num_classes, batch_size, epochs.start, seed, mixing, mixing_alpha,
                                          shard, on_device)


def evaluation_batches(split, num_classes, batch_size, devices=1, shard=(0, 1)):
    """Batches in order, the last one possibly smaller; with several `devices`, padded to split evenly
    across them (weighted 0); in a multi-host job (JAX), this process's `shard` of each."""
    if on_tensorflow_backend():
        from harness.training import tf_pipeline as pipeline

        return pipeline.make_dataset(split, num_classes, batch_size, multiple=devices)
    return array_pipeline.EvaluationBatches(split, num_classes, batch_size, multiple=devices, shard=shard)


def predict(model, images, batch_size, verbose=0):
    """`model.predict` of an image array in order. On TensorFlow through a plain tf.data pipeline: Keras'
    own one for arrays maps in parallel, which TensorFlow rewrites once a run in the same process made its
    ops deterministic, logging an "E0000 ... NodeDef mentions attribute use_unbounded_threadpool" line."""
    if on_tensorflow_backend():
        import tensorflow as tf

        from harness.training.tf_pipeline import without_autotune

        dataset = without_autotune(tf.data.Dataset.from_tensor_slices(images).batch(batch_size))
        return model.predict(dataset, verbose=verbose)
    return model.predict(images, batch_size=batch_size, verbose=verbose)
