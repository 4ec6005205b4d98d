"""What runs between training steps and epochs: the NaN guard, augmentation reseeding, the epoch record."""

import math
import statistics
import time

import keras

from harness.training.augment import reseed
from harness.training.seeding import epoch_seed


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite, and remembers where."""

    def __init__(self):
        super().__init__()
        self.failure = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if not math.isfinite(loss) and self.failure is None:
            self.failure = (self.epoch + 1, batch + 1, loss)
            self.model.stop_training = True


class AugmentationReseeder(keras.callbacks.Callback):
    """Seeds the in-model augmentation at each epoch start from (seed, epoch), as the input pipeline is."""

    def __init__(self, augmentation, seed):
        super().__init__()
        self.augmentation, self.seed = augmentation, seed

    def on_epoch_begin(self, epoch, logs=None):
        reseed(self.augmentation, epoch_seed(self.seed, epoch))


class EpochRecorder(keras.callbacks.Callback):
    """After each epoch: one history.csv row, then a checkpoint (the order `resume` relies on).

    Times the training part of each epoch apart from validation.
    """

    def __init__(self, run, train_images, guard):
        super().__init__()
        self.run = run
        self.train_images = train_images
        self.guard = guard
        self.train_seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.train_end = None

    def on_test_begin(self, logs=None):  # validation starts once the epoch's training steps are done
        self.train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.failure:  # the epoch did not finish: keep the last good checkpoint
            return
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
        self.run.save_checkpoint(self.model)

    def steady_images_per_second(self):
        """Training throughput of a typical epoch; the first includes compilation, so it is left out."""
        if not self.train_seconds:
            return None
        seconds = self.train_seconds[1:] or self.train_seconds
        return self.train_images / statistics.median(seconds)


def augmentation_reseeder(trainee, seed):
    """[AugmentationReseeder] for a model with augmentation layers, else []."""
    names = [layer.name for layer in trainee.layers]
    return [AugmentationReseeder(trainee.get_layer("augmentation"), seed)] if "augmentation" in names else []
