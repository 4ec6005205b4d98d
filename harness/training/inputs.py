"""Training and evaluation batches: tf.data where TensorFlow is installed, plain Python otherwise."""

import functools

from harness.training import array_pipeline


@functools.cache
def tensorflow_available():
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def training_batches(split, num_classes, batch_size, epochs, seed, mixing="none", mixing_alpha=1.0,
                     deterministic=True):
    """Batches for `epochs` (a range): shuffled per (seed, epoch), full, optionally mixed."""
    if tensorflow_available():
        from harness.training import tf_pipeline as pipeline

        return pipeline.make_training_dataset(split, num_classes, batch_size, epochs, seed, mixing, mixing_alpha,
                                              deterministic)
    return array_pipeline.TrainingBatches(split, num_classes, batch_size, epochs.start, seed, mixing, mixing_alpha)


def evaluation_batches(split, num_classes, batch_size):
    """Batches in order, the last one possibly smaller."""
    if tensorflow_available():
        from harness.training import tf_pipeline as pipeline

        return pipeline.make_dataset(split, num_classes, batch_size)
    return array_pipeline.EvaluationBatches(split, num_classes, batch_size)
