"""Run directories: everything one training run leaves behind, in files other tools can read.

    config.json    every resolved setting (written first)
    history.csv    one row per finished epoch (appended as training goes)
    model.keras    the trained model, preprocessing included
    metrics.json   test accuracy and loss, parameters, timing (written last: the run is finished)
"""

import csv
import datetime
import json
import os
import pathlib

from harness.errors import UserError

HISTORY_COLUMNS = (
    "epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "images_per_second", "learning_rate"
)


def write_json(path, data):
    """Writes JSON atomically: a crash leaves the old file or the new one, never half of one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(temporary, path)


def default_run_name(config, dataset_name):
    """A folder name that states the recipe, like the authors' AugReg checkpoint names."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    return (
        f"{config.model}-{config.preset}-{dataset_name}-e{config.epochs}-lr{config.learning_rate:g}"
        f"-wd{config.weight_decay:g}-{config.augmentation}-s{config.seed}-{stamp}"
    )


class RunDirectory:
    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.config_path = self.path / "config.json"
        self.history_path = self.path / "history.csv"
        self.model_path = self.path / "model.keras"
        self.metrics_path = self.path / "metrics.json"

    def check_available(self, overwrite=False):
        """Raises unless the folder is new, empty, or may be overwritten."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"run directory {self.path} is a file; choose another --run-dir")
        if self.path.is_dir() and any(self.path.iterdir()) and not overwrite:
            raise UserError(
                f"run directory {self.path} already holds a run; choose another --run-dir or pass --overwrite"
            )

    @classmethod
    def create(cls, path, overwrite=False):
        run = cls(path)
        run.check_available(overwrite)
        for old in (run.config_path, run.history_path, run.model_path, run.metrics_path):
            old.unlink(missing_ok=True)
        run.path.mkdir(parents=True, exist_ok=True)
        return run

    def write_config(self, config):
        write_json(self.config_path, config)

    def read_config(self):
        return json.loads(self.config_path.read_text())

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

    def save_model(self, model):
        temporary = self.path / "model.partial.keras"
        model.save(temporary)
        os.replace(temporary, self.model_path)

    def write_metrics(self, metrics):
        write_json(self.metrics_path, metrics)

    def read_metrics(self):
        return json.loads(self.metrics_path.read_text())
