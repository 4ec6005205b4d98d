"""Experiment sweeps: the ViT and the CNN at several training-set sizes and seeds (paper section 4.2).

A sweep is a folder: `sweep.json` (the plan) and one run directory per (model, size, seed) under
`runs/`. Running the same command again continues it: finished runs are kept, a killed run resumes
from its checkpoint, a run that never started starts. Uses harness.training and harness.data only.

Schedule: every size trains for as many optimisation steps as the recipe takes on the largest size,
so a small subset is seen for more epochs rather than for less compute; the saved weights are those
of the best validation epoch (the validation split is the same for every size; the paper reports the
best validation accuracy reached on each subset). The test split is used once per run.
"""

import dataclasses
import json
import pathlib

from harness import data
from harness.errors import UserError
from harness.training import run_dir as run_dirs
from harness.training.config import TrainConfig, resolve
from harness.training.recipes import RECIPES

MODELS = ("vit", "cnn")
FULL_CIFAR10_SIZES = (1000, 2500, 5000, 10000, 25000, 45000)


@dataclasses.dataclass(frozen=True)
class SweepPlan:
    sizes: tuple  # training images per run, ascending
    seeds: tuple
    recipe: str
    dataset: str = None
    data_dir: str = None
    vit_preset: str = None
    cnn_preset: str = None
    batch_size: int = None
    steps: dict = None  # model -> [steps, warmup steps] of every run; filled by `schedule`

    def to_dict(self):
        return dataclasses.asdict(self)


def run_name(model, size, seed):
    return f"{model}-n{size}-s{seed}"


def base_config(plan, model):
    return resolve(TrainConfig(model=model, recipe=plan.recipe, preset=getattr(plan, f"{model}_preset"),
                               dataset=plan.dataset, data_dir=plan.data_dir, batch_size=plan.batch_size,
                               keep="best"))


def schedule(plan):
    """The plan with each model's steps and warmup steps: the recipe's epochs on the largest size."""
    steps = {}
    for model in MODELS:
        config = base_config(plan, model).for_data(plan.sizes[-1])
        per_epoch = config.steps_per_epoch(plan.sizes[-1])
        steps[model] = [config.epochs * per_epoch, round(config.warmup_epochs * per_epoch)]
    return dataclasses.replace(plan, steps=steps)


def run_config(plan, model, size, seed, out):
    steps, warmup = plan.steps[model]
    config = dataclasses.replace(base_config(plan, model), epochs=None, steps=steps, warmup_steps=warmup,
                                 train_size=size, seed=seed, run_dir=str(out / "runs" / run_name(model, size, seed)))
    return resolve(config)


def open_sweep(plan, out):
    """Writes the plan into a new sweep folder, or checks it is the plan of the sweep already there."""
    out = pathlib.Path(out)
    path = out / "sweep.json"
    if path.exists():
        try:
            saved = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise UserError(f"{path} cannot be read ({error}); it is damaged") from None
        if _comparable(saved) != _comparable(plan.to_dict()):
            raise UserError(f"{out} holds another sweep (its sweep.json differs); "
                            "choose another --out to start a new one")
        return
    if out.exists() and any(out.iterdir()):
        raise UserError(f"{out} holds other files; choose a new or empty --out for a sweep")
    run_dirs.check_writable(out, option="--out")
    out.mkdir(parents=True, exist_ok=True)
    run_dirs.write_json(path, plan.to_dict())


def _comparable(plan):
    return json.loads(json.dumps({key: value for key, value in plan.items() if key != "steps"}))


def state(run_path):
    """"finished", "resumable" (a checkpoint or history exists) or "new"."""
    run = run_dirs.RunDirectory(run_path)
    if run.metrics_path.exists():
        return "finished"
    return "resumable" if run.has_started() else "new"


def run_sweep(plan, out, train, resume):
    """Trains every run the sweep still lacks, smallest sizes first; `train(config, overwrite)` and
    `resume(run_dir)` are the trainer's. Returns the number of runs trained or resumed now."""
    out = pathlib.Path(out)
    done = 0
    total = len(plan.sizes) * len(plan.seeds) * len(MODELS)
    for size in plan.sizes:
        for seed in plan.seeds:
            for model in MODELS:
                config = run_config(plan, model, size, seed, out)
                status = state(config.run_dir)
                label = f"[{run_name(model, size, seed)}]"
                if status == "finished":
                    print(f"{label} finished earlier, kept", flush=True)
                    continue
                print(f"== {label} {model} {config.preset}, {size:,} training images, seed {seed}, "
                      f"{plan.steps[model][0]:,} steps ({done + 1} of at most {total})", flush=True)
                if status == "resumable":
                    resume(config.run_dir)
                else:
                    train(config, overwrite=True)  # a folder that never finished an epoch
                done += 1
    return done


def collect(out):
    """One row per finished run of a sweep folder: model, preset, size, seed, accuracies, time."""
    rows = []
    for path in sorted((pathlib.Path(out) / "runs").glob("*")):
        run = run_dirs.RunDirectory(path)
        if not run.metrics_path.exists():
            continue
        metrics, config = run.read_metrics(), run.read_config()
        rows.append({"model": metrics["model"], "preset": metrics["preset"], "train_images": config["train_size"],
                     "seed": config["seed"], "test_accuracy": metrics["test_accuracy"],
                     "best_val_accuracy": metrics["best_val_accuracy"], "saved_epoch": metrics["saved_epoch"],
                     "epochs": metrics["epochs"], "train_seconds": metrics["train_seconds"], "run": str(path)})
    return rows


def default_sizes(available):
    """The full CIFAR-10 sizes that fit, and all available images."""
    return tuple(sorted({*(size for size in FULL_CIFAR10_SIZES if size < available), available}))


def check_sizes(sizes, available, num_classes):
    for size in sizes:
        data.check_subset_size(size, available, num_classes, "--sizes")
    return tuple(sorted(set(sizes)))


def recipe_names():
    return [name for name, recipe in RECIPES.items() if all(recipe[model] for model in MODELS)]

