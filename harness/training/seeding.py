"""Every random draw of a run, derived from its seed: exact resumption and CPU reproducibility rest on this.

An epoch's shuffle order, batch mixing and augmentation depend only on (seed, epoch), never on the
epochs before it, so a run resumed at epoch k sees exactly what an uninterrupted one would.
"""

import keras
import numpy as np

from harness.training.precision import gpu_compute_capability


def epoch_seed(seed, epoch):
    """A seed for one epoch's shuffle and mixing, derived from the run's seed."""
    return int(np.random.SeedSequence([seed, epoch]).generate_state(1)[0])


def epoch_order(length, batch_size, seed, epoch):
    """The image indices of one epoch's full batches, a permutation drawn from (seed, epoch)."""
    steps = max(1, length // batch_size)
    return np.random.default_rng(epoch_seed(seed, epoch)).permutation(length)[: steps * batch_size]


def seed_everything(seed):
    """Seeds Python, numpy and the backend; on a CPU with TensorFlow, also makes its ops deterministic.

    Returns whether the run is bit-reproducible (CPU). GPU kernels are left fast, not deterministic.
    """
    keras.utils.set_random_seed(seed)
    if gpu_compute_capability() is not None:
        return False
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tf.config.experimental.enable_op_determinism()
    return True
