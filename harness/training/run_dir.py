"""Run directories: everything one training run leaves behind, in files other tools can read.

    config.json            every resolved setting (written first)
    manifest.json          command line, versions, device, dataset fingerprint, git commit
    history.csv            one row per finished epoch (appended as training goes)
    checkpoint.weights.h5  weights and optimizer state after the last finished epoch (while training)
    best.weights.h5        with --keep best: the weights of the best validation epoch so far (while training)
    model.keras            the trained model, preprocessing included
    metrics.json           test accuracy and loss, parameters, timing (written last: the run is finished)
"""

import csv
import datetime
import fcntl
import json
import math
import os
import pathlib
import shutil
import socket
import sys
import tempfile
import zipfile

import numpy as np

from harness.atomic import file_written_whole
from harness.errors import UserError
from harness.training.config import from_saved, resolve

DEFAULT_RUNS_FOLDER = "runs"  # where train.py puts a run without --run-dir (default_run_path)

# loss, val_loss: the training objective (cross-entropy with label smoothing, on mixed labels where MixUp or
# CutMix is on); cross_entropy, val_cross_entropy: plain cross-entropy, the loss every test figure reports.
HISTORY_COLUMNS = (
    "epoch", "loss", "accuracy", "cross_entropy", "val_loss", "val_accuracy", "val_cross_entropy", "seconds",
    "train_seconds", "images_per_second", "learning_rate",
)


def read_json(path):
    """A run file's JSON object; a missing, truncated or invalid file is a one-line UserError naming it."""
    try:
        data = json.loads(pathlib.Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} cannot be read ({error}); it is damaged or incomplete") from None
    if not isinstance(data, dict):
        raise UserError(f"{path} is damaged: it holds a {type(data).__name__}, not the JSON object a run writes")
    return data


def write_json(path, data):
    """Writes JSON atomically: a crash leaves the old file or the new one, never half of one."""
    with file_written_whole(path) as temporary:
        temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")


def saved_bytes(model):
    """The bytes of a model's weights and its optimizer's state: about what saving it writes."""
    optimizer = getattr(model, "optimizer", None)
    variables = [*model.weights, *(optimizer.variables if optimizer is not None else [])]
    return sum(math.prod(variable.shape) * np.dtype(variable.dtype).itemsize for variable in variables)


def default_run_path(config, dataset_name):
    """Where a run without --run-dir goes: DEFAULT_RUNS_FOLDER/<its recipe>-<time>."""
    return f"{DEFAULT_RUNS_FOLDER}/{default_run_name(config, dataset_name)}"


def default_run_name(config, dataset_name):
    """A folder name that states the recipe, like the authors' AugReg checkpoint names."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    length = f"e{config.epochs}" if config.epochs is not None else f"t{config.time_budget / 60:g}m"
    return (
        f"{config.model}-{config.preset}-{dataset_name}-{length}-lr{config.learning_rate:g}"
        f"-wd{config.weight_decay:g}-{config.augmentation}-s{config.seed}-{stamp}"
    )


class RunDirectory:
    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.config_path = self.path / "config.json"
        self.history_path = self.path / "history.csv"
        self.model_path = self.path / "model.keras"
        self.metrics_path = self.path / "metrics.json"
        self.manifest_path = self.path / "manifest.json"
        self.checkpoint_path = self.path / "checkpoint.weights.h5"
        self.best_path = self.path / "best.weights.h5"
        self.tensorboard_path = self.path / "tensorboard"  # TensorBoard's event files, train/ and validation/
        self.lock_path = self.path / ".lock"  # names the process training here; see lock()
        self.saved_epochs = 0  # epochs the checkpoint holds, as this process knows it
        self._lock_file = None

    @property
    def run_files(self):
        return (self.config_path, self.history_path, self.model_path, self.metrics_path, self.manifest_path,
                self.checkpoint_path, self.best_path)

    def has_started(self):
        """Whether training finished an epoch here (a history row or a checkpoint) or the whole run."""
        return any(path.exists() for path in (self.history_path, self.checkpoint_path, self.metrics_path,
                                              self.model_path))

    def check_available(self, overwrite=False, remedy="choose another --run-dir or pass --overwrite"):
        """Raises unless the folder can be written and is new, empty, a run that never trained an
        epoch (only its config and manifest), or may be overwritten. `remedy` names the options of the
        command that can fix it (compare.py's runs live in --out, and it has no --overwrite)."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"run directory {self.path} is a file; {remedy}")
        if self.path.is_dir() and not overwrite:
            if self.has_started():
                raise UserError(f"run directory {self.path} already holds a run; {remedy}")
            others = sorted(p.name for p in self.path.iterdir()
                            if p not in (*self.run_files, self.tensorboard_path, self.lock_path))
            if others:
                raise UserError(f"run directory {self.path} holds other files ({', '.join(others[:3])}); {remedy}")
        check_writable(self.path)

    def lock(self):
        """Holds the folder for this process until unlock() or the process ends (an OS file lock, which dies
        with its process). A second process refuses in one line naming the holder; the note a process that
        ended without unlocking left is taken over, in one line."""
        try:
            file = open(self.lock_path, "a+")
        except OSError as error:  # a read-only folder, on --resume the first thing written
            raise UserError(f"cannot write in run directory {self.path} ({error.strerror}); make it writable, "
                            "or copy the run to a folder you can write and continue there") from None
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise UserError(f"run directory {self.path} is in use by {holder}; wait for it to end, or train into "
                            "another folder") from None
        file.seek(0)
        earlier = file.read().strip()
        if earlier:
            print(f"note: {self.path} was locked by {earlier}, which has ended; taking it over", file=sys.stderr)
        file.seek(0)
        file.truncate()
        file.write(f"process {os.getpid()} on {socket.gethostname()}\n")
        file.flush()
        self._lock_file = file

    def holder(self):
        """Who holds this folder's lock now ("process 123 on host"), or None where no living process does."""
        try:
            file = open(self.lock_path)
        except OSError:  # no lock file: nobody has it
            return None
        with file:
            try:
                fcntl.flock(file, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return file.read().strip() or "another process"
            fcntl.flock(file, fcntl.LOCK_UN)
        return None

    def unlock(self):
        if self._lock_file is not None:
            self.lock_path.unlink(missing_ok=True)
            self._lock_file.close()  # closing releases the lock
            self._lock_file = None

    @classmethod
    def create(cls, path, overwrite=False):
        run = cls(path)
        run.check_available(overwrite)
        run.path.mkdir(parents=True, exist_ok=True)
        run.lock()
        try:
            run.check_available(overwrite)  # again, holding the lock: another process may have trained here meanwhile
            for old in run.run_files:
                old.unlink(missing_ok=True)
            for folder in (run.path / "eval", run.tensorboard_path):
                shutil.rmtree(folder, ignore_errors=True)
        except BaseException:
            run.unlock()
            raise
        return run

    def write_config(self, config):
        write_json(self.config_path, config)

    def read_config(self, required=()):
        """config.json as a dict; a damaged file, or one without the `required` keys, is a UserError."""
        config = read_json(self.config_path)
        missing = [key for key in required if key not in config]
        if missing:
            raise UserError(f"{self.config_path} is damaged or was not written by train.py (it lacks "
                            f"{', '.join(missing) or 'settings'})")
        return config

    def append_history(self, row):
        is_new = not self.history_path.exists()
        with open(self.history_path, "a", newline="") as file:
            writer = csv.DictWriter(file, HISTORY_COLUMNS, extrasaction="ignore")
            if is_new:
                writer.writeheader()
            writer.writerow(row)

    def read_history(self):
        with open(self.history_path, newline="") as file:
            return list(csv.DictReader(file))

    def _save(self, model, write, final, what):
        """`write(temporary)`, then the temporary file replaces `final` atomically. The disk's free space is
        checked first (h5py crashed natively on a full disk), and no partial file is left behind."""
        needed = 1.25 * saved_bytes(model) + 2**20
        free = shutil.disk_usage(self.path).free
        if free < needed:
            raise UserError(f"not enough free space in {self.path} to save the {what} (about {needed / 2**20:,.0f} MB "
                            f"needed, {free / 2**20:,.0f} MB free); free some space, then continue with: python "
                            f"train.py --resume {self.path}")
        with file_written_whole(final) as temporary:
            write(temporary)

    def save_model(self, model):
        self._save(model, model.save, self.model_path, "model")

    def save_checkpoint(self, model, epoch):
        """Weights and optimizer state (its step count included) after `epoch`, replaced atomically."""
        self._save(model, model.save_weights, self.checkpoint_path, "checkpoint")
        self.saved_epochs = epoch

    def restore_checkpoint(self, model, steps_per_epoch):
        """Loads the checkpoint into a compiled model; returns the number of completed epochs.

        The optimizer's step count says how many epochs the checkpoint holds. History rows past it
        (an epoch killed between its row and its checkpoint) are dropped, to be trained again.
        """
        if not self.checkpoint_path.exists():
            completed = 0
        else:
            import keras  # only here: the other run-directory work needs no framework

            model.optimizer.build(model.trainable_variables)
            try:
                model.load_weights(self.checkpoint_path)
            except (OSError, ValueError) as error:
                raise UserError(f"{self.checkpoint_path} cannot be read ({error}); start the run again") from None
            completed = int(keras.ops.convert_to_numpy(model.optimizer.iterations)) // steps_per_epoch
        rows = self.read_history()[:completed] if self.history_path.exists() else []
        self.history_path.unlink(missing_ok=True)
        for row in rows:
            self.append_history(row)
        self.saved_epochs = completed
        return completed

    def save_best(self, model):
        """The plain model's weights (no optimizer state), replaced atomically."""
        self._save(model, model.save_weights, self.best_path, "best weights")

    def remove_checkpoint(self):
        """A finished run keeps model.keras only."""
        self.checkpoint_path.unlink(missing_ok=True)
        self.best_path.unlink(missing_ok=True)

    def write_metrics(self, metrics):
        write_json(self.metrics_path, metrics)

    def read_metrics(self):
        return read_json(self.metrics_path)

    def read_manifest(self):
        """manifest.json, or {} for runs written before there was one."""
        return read_json(self.manifest_path) if self.manifest_path.exists() else {}


# What every run's config.json holds, for evaluating and reporting; and what resuming needs.
FINISHED_RUN_KEYS = ("model", "preset", "dataset", "image_size", "epochs", "class_names", "model_config")
RESUME_KEYS = ("model", "preset", "dataset", "image_size", "epochs", "batch_size", "learning_rate", "weight_decay",
               "optimizer", "warmup_epochs", "seed", "val_fraction")


def _open(run_dir, hint):
    run = RunDirectory(run_dir)
    if not run.config_path.is_file():
        raise UserError(f"{run.path} is not a run directory (no config.json); {hint}")
    return run


def open_finished_run(run_dir):
    """The run directory and its config, or a clear error if it is not a finished run."""
    run = _open(run_dir, "give a folder train.py wrote")
    if not run.model_path.is_file():
        holder = run.holder()
        if holder:
            raise UserError(f"run directory {run.path} is in use by {holder}, which is training it; wait for it to "
                            "end, then use the run")
        if run.checkpoint_path.is_file():
            raise UserError(f"{run.path} did not finish (no model.keras), but its last finished epoch is saved: "
                            f"continue it with python train.py --resume {run.path}")
        raise UserError(f"{run.path} did not finish and saved no epoch (no model.keras, no checkpoint); train it again")
    return run, run.read_config(FINISHED_RUN_KEYS)


def open_unfinished_run(run_dir):
    """The run directory and its settings (a resolved TrainConfig), or a clear error if there is nothing
    to resume or its config.json is damaged."""
    run = _open(run_dir, "--resume takes a folder train.py wrote")
    if run.metrics_path.exists():
        raise UserError(f"{run.path} holds a finished run (metrics.json exists); there is nothing to resume")
    try:
        # the released checkpoint a fine-tuning run started from is read again only if no epoch is saved
        return run, resolve(from_saved(run.read_config(RESUME_KEYS)),
                            pretrained_file_needed=not run.checkpoint_path.exists(), resumed=True)
    except UserError as error:
        raise UserError(f"{error}" if str(run.config_path) in str(error) else f"{run.config_path}: {error}") from None


def check_writable(path, option="--run-dir"):
    """Raises unless a folder can be created and written at `path` (checked where it will be made)."""
    existing = pathlib.Path(os.path.abspath(path))
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"cannot create {path}: {existing} is a file; choose another {option}")
    try:
        tempfile.TemporaryFile(dir=existing).close()
    except OSError as error:
        raise UserError(f"cannot create files in {existing} ({error.strerror}); "
                        f"choose a {option} you can write to") from None


def load_model(run):
    """Loads a run's model.keras in Keras' safe mode, which refuses to deserialise arbitrary code."""
    import keras  # only here and in restore_checkpoint: the rest of this module needs no framework

    import model_parts.bit  # noqa: F401  (registers the weight-standardised convolution of BiT and the hybrid)
    import model_parts.fast_conv  # noqa: F401  (registers the whitening and bias layers of the fast CNN and stem)
    import vit_tf.layers  # noqa: F401  (registers the ViT layers with Keras)

    try:
        return keras.saving.load_model(run.model_path, safe_mode=True)
    except ValueError as error:
        if "arbitrary code" in str(error):  # Keras' safe mode refused a serialised Python function
            raise UserError(
                f"{run.model_path} contains Python code (e.g. a Lambda layer); it was not loaded, since loading "
                "it could run that code. Only load models you trained with this project"
            ) from None
        raise UserError(f"{run.model_path} is damaged or truncated; train the run again") from None
    except (zipfile.BadZipFile, OSError, KeyError):
        raise UserError(f"{run.model_path} is damaged or truncated; train the run again") from None
