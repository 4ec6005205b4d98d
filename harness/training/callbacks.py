"""What runs between training steps and epochs: the NaN guard, augmentation reseeding, the epoch record."""

import math
import statistics
import threading
import time

import keras

from harness.training.augment import reseed
from harness.training.keras_internals import learning_rate_schedule, leave_validation_writer, tensorboard_writer
from harness.training.run_dir import HISTORY_COLUMNS
from harness.training.seeding import epoch_seed


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stops training at the first step whose loss is NaN or infinite, and remembers where (Keras'
    TerminateOnNaN stops too, but keeps no epoch and step to tell the user, and reads every step's loss
    on the host).

    Reading the loss waits for its step to finish. On JAX and PyTorch Keras runs this hook in a worker
    thread (`async_safe`), so the next steps are dispatched meanwhile and the accelerator never waits for
    the host; training then stops a step or two after the bad one, and the first bad step is reported.
    (The loss in the logs is the epoch's running mean: once NaN, it stays NaN.)
    """

    async_safe = True  # Keras' hint: batch hooks may run in its worker threads

    def __init__(self):
        super().__init__()
        self.failure = None
        self._lock = threading.Lock()

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = float((logs or {}).get("loss", 0.0))
        if math.isfinite(loss):
            return
        with self._lock:  # worker threads may finish out of order: keep the earliest step
            if self.failure is None or batch + 1 < self.failure[1]:
                self.failure = (self.epoch + 1, batch + 1, loss)
        self.model.stop_training = True


class AugmentationReseeder(keras.callbacks.Callback):
    """Seeds the in-model augmentation at each epoch start from (seed, epoch), as the input pipeline is."""

    def __init__(self, augmentation, seed):
        super().__init__()
        self.augmentation, self.seed = augmentation, seed

    def on_epoch_begin(self, epoch, logs=None):
        reseed(self.augmentation, epoch_seed(self.seed, epoch))


def best_epoch(rows):
    """(epoch, validation accuracy) of the first row with the highest validation accuracy, or (0, None).

    Computed from history.csv's rounded values, in training and on --resume alike, so both agree.
    """
    best = (0, None)
    for row in rows:
        value = row.get("val_accuracy")
        if value not in (None, "") and (best[1] is None or float(value) > best[1]):
            best = (int(row["epoch"]), float(value))
    return best


class StepLimit(keras.callbacks.Callback):
    """Stops training after `total_steps` optimisation steps, part-way through an epoch if need be (a run
    given in steps, or planned from a time budget, rarely fills its last epoch). A time budget's guard may
    change `total_steps` between epochs."""

    def __init__(self, total_steps, steps_per_epoch):
        super().__init__()
        self.total_steps, self.steps_per_epoch = total_steps, steps_per_epoch
        self.steps_left = None

    def on_epoch_begin(self, epoch, logs=None):
        self.steps_left = self.total_steps - epoch * self.steps_per_epoch  # this epoch's and after

    def on_train_batch_end(self, batch, logs=None):
        if batch + 1 >= self.steps_left:
            self.model.stop_training = True


class EpochRecorder(keras.callbacks.Callback):
    """After each epoch, in this order (which `resume` relies on): one history.csv row, the checkpoint,
    the best weights (with keep="best"), then the early-stopping decision (with `patience`).

    Why not Keras' CSVLogger, BackupAndRestore, ModelCheckpoint and EarlyStopping: after a SIGKILL,
    BackupAndRestore brings back the weights and the optimizer but not EarlyStopping's count of epochs
    without progress nor the best accuracy so far, so a resumed run could stop at another epoch than an
    uninterrupted one; ModelCheckpoint would save the training model (augmentation and, with DeiT, the
    teacher inside), not the plain model that evaluate.py loads. Here all of it follows from
    history.csv and one checkpoint, which is what exact resumption needs.

    Times the training part of each epoch apart from validation; `train_images` are the images one
    epoch really trains on.
    """

    def __init__(self, run, train_images, steps_per_epoch, guard, model, keep="last", patience=None, history=()):
        super().__init__()
        self.run, self.train_images, self.steps_per_epoch, self.guard = run, train_images, steps_per_epoch, guard
        self.plain_model, self.keep, self.patience = model, keep, patience
        self.best = best_epoch(history)
        self.last_epoch = len(history)
        self.train_seconds = []
        self._compiled_schedule = None  # on JAX, see _learning_rate

    def should_stop(self):
        """Whether `patience` epochs have passed since the best one."""
        return (self.patience is not None and self.best[1] is not None
                and self.last_epoch - self.best[0] >= self.patience)

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch_start = time.perf_counter()
        self.train_end = None
        self.first_step = self._steps_done()

    def _steps_done(self):
        return int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_test_begin(self, logs=None):  # validation starts once the epoch's training steps are done
        self.train_end = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if self.guard.failure:  # the epoch did not finish: keep the last good checkpoint
            return
        now = time.perf_counter()
        train_seconds = (self.train_end or now) - self.epoch_start
        # a last epoch cut short by a StepLimit trained only part of the images
        train_images = self.train_images * min(1.0, (self._steps_done() - self.first_step) / self.steps_per_epoch)
        if train_images == self.train_images:  # full epochs give the typical speed
            self.train_seconds.append(train_seconds)
        learning_rate = self._learning_rate()
        row = {
            **{name: round(float(value), 6) for name, value in (logs or {}).items()},
            "epoch": epoch + 1,
            "seconds": round(now - self.epoch_start, 3),
            "train_seconds": round(train_seconds, 3),
            "images_per_second": round(train_images / train_seconds, 1),
            "learning_rate": round(float(keras.ops.convert_to_numpy(learning_rate)), 8),
        }
        self.run.append_history(row)
        self.last_row = row
        self.run.save_checkpoint(self.model, epoch + 1)
        self.last_epoch = epoch + 1
        previous = self.best
        self.best = best_epoch([{"epoch": previous[0], "val_accuracy": previous[1]}, row])
        if self.keep == "best" and self.best != previous:
            self.run.save_best(self.plain_model)
        if self.should_stop():
            self.model.stop_training = True

    def _learning_rate(self):
        """The optimizer's learning rate now. On JAX, Keras' schedules evaluated outside the training step
        compile their `cond` at every call; one compiled function reads it instead, every epoch."""
        optimizer = self.model.optimizer
        schedule = learning_rate_schedule(optimizer)  # `.learning_rate` would evaluate it eagerly
        if keras.backend.backend() != "jax" or not callable(schedule):
            return optimizer.learning_rate
        if self._compiled_schedule is None:
            import jax

            self._compiled_schedule = jax.jit(schedule)
        return self._compiled_schedule(optimizer.iterations.value)

    def reset_schedule(self):
        """The schedule changed (a time budget shortened the run): compile its reader again."""
        self._compiled_schedule = None

    def steady_images_per_second(self):
        """Training throughput of a typical epoch; the first includes compilation, so it is left out."""
        if not self.train_seconds:
            return None
        seconds = self.train_seconds[1:] or self.train_seconds
        return self.train_images / statistics.median(seconds)


# history.csv's columns the curves show (epoch is their step; the times would only clutter them)
TENSORBOARD_COLUMNS = tuple(c for c in HISTORY_COLUMNS if c not in ("epoch", "seconds", "train_seconds"))


def tensorboard_scalars(row):
    """{"train": {tag: value}, "validation": {tag: value}} for one history.csv row, tagged as Keras
    tags its epoch curves (epoch_loss, epoch_accuracy, epoch_learning_rate, ...)."""
    scalars = {"train": {}, "validation": {}}
    for name in TENSORBOARD_COLUMNS:
        value = row.get(name)
        if value in (None, ""):
            continue
        part, name = ("validation", name[4:]) if name.startswith("val_") else ("train", name)
        scalars[part][f"epoch_{name}"] = float(value)
    return scalars


def write_scalars(writer, epoch, scalars):
    """Writes {tag: value} as step `epoch` (counted from 0) and flushes it to disk at once."""
    import tensorflow as tf

    with writer.as_default():
        for tag, value in scalars.items():
            tf.summary.scalar(tag, value, step=epoch)
    writer.flush()


class TensorBoardLogger(keras.callbacks.TensorBoard):
    """Keras' TensorBoard callback, per epoch, into RUN/tensorboard/{train,validation}.

    The curves show history.csv's rows: an epoch is written once the recorder has saved it, so a run
    resumed after a crash writes no step twice, and `backfill_tensorboard` adds, on resume, an epoch
    that was saved but not yet written when the crash came. TensorBoard's writer is TensorFlow's, so
    this runs on the TensorFlow backend only.
    """

    def __init__(self, run, recorder):
        super().__init__(log_dir=str(run.tensorboard_path), write_graph=True, update_freq="epoch")
        self.recorder = recorder

    def on_epoch_end(self, epoch, logs=None):
        if self.recorder.last_epoch != epoch + 1:  # not saved (the loss became NaN): not logged either
            return
        for part, scalars in tensorboard_scalars(self.recorder.last_row).items():
            if scalars:  # asked for, Keras makes the part's writer (and its file)
                write_scalars(tensorboard_writer(self, part), epoch, scalars)

    def on_test_end(self, logs=None):
        # Keras would also write the validation metrics against optimizer steps here, before the epoch is
        # saved: a crash, then resume, would write those steps twice. The per-epoch curves carry them.
        leave_validation_writer(self)


def tensorboard_logger(run, recorder):
    """[TensorBoardLogger] on the TensorFlow backend, else [] (TensorBoard's writer needs TensorFlow)."""
    return [TensorBoardLogger(run, recorder)] if keras.backend.backend() == "tensorflow" else []


def backfill_tensorboard(run, history):
    """On resume (TensorFlow backend): writes the saved epochs of `history` that the curves lack.

    A process killed after an epoch's checkpoint but before its TensorBoard write leaves that epoch out
    of the curves; resume continues after it, so it is written here, from its history.csv row.
    """
    if keras.backend.backend() != "tensorflow" or not history:
        return
    import tensorflow as tf

    for part in ("train", "validation"):
        folder = run.tensorboard_path / part
        written = _tensorboard_steps(folder)
        rows = {int(row["epoch"]) - 1: tensorboard_scalars(row)[part] for row in history}
        missing = {epoch: scalars for epoch, scalars in rows.items() if scalars and epoch not in written}
        if missing:
            writer = tf.summary.create_file_writer(str(folder))
            for epoch, scalars in missing.items():
                write_scalars(writer, epoch, scalars)
            writer.close()


def _tensorboard_steps(folder):
    """The epochs (steps) whose epoch_loss the event files in `folder` hold; a file cut short by a kill
    counts up to its last whole record."""
    import tensorflow as tf

    steps = set()
    for events in sorted(folder.glob("events.out.tfevents.*")):
        try:
            for event in tf.compat.v1.train.summary_iterator(str(events)):
                if any(value.tag == "epoch_loss" for value in event.summary.value):
                    steps.add(event.step)
        except tf.errors.DataLossError:
            pass
    return steps


def augmentation_reseeder(trainee, seed):
    """[AugmentationReseeder] for a model with augmentation layers, else []."""
    names = [layer.name for layer in trainee.layers]
    return [AugmentationReseeder(trainee.get_layer("augmentation"), seed)] if "augmentation" in names else []
