"""Training and evaluation batches: tf.data on the TensorFlow backend, plain Python on the others.

The JAX and PyTorch backends never load TensorFlow: next to a CUDA PyTorch its LLVM clashes with
Triton's and kills the process on import.
"""

import keras

from harness.training import array_pipeline


def on_tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


def training_batches(split, num_classes, batch_size, epochs, seed, mixing="none", mixing_alpha=1.0,
                     deterministic=True, shard=(0, 1)):
    """Batches for `epochs` (a range): shuffled per (seed, epoch), full, optionally mixed; in a multi-host
    job (JAX), this process's `shard` = (index, processes) of each."""
    if on_tensorflow_backend():
        from harness.training import tf_pipeline as pipeline

        return pipeline.make_training_dataset(split, num_classes, batch_size, epochs, seed, mixing, mixing_alpha,
                                              deterministic)
    return array_pipeline.TrainingBatches(split, num_classes, batch_size, epochs.start, seed, mixing, mixing_alpha,
                                          shard)


def evaluation_batches(split, num_classes, batch_size, devices=1, shard=(0, 1)):
    """Batches in order, the last one possibly smaller; with several `devices`, padded to split evenly
    across them (weighted 0); in a multi-host job (JAX), this process's `shard` of each."""
    if on_tensorflow_backend():
        from harness.training import tf_pipeline as pipeline

        return pipeline.make_dataset(split, num_classes, batch_size, multiple=devices)
    return array_pipeline.EvaluationBatches(split, num_classes, batch_size, multiple=devices, shard=shard)
