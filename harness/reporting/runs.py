"""Which finished runs one report can compare, checked before any model or dataset loads."""

import pathlib

from harness import sweeps
from harness.errors import UserError
from harness.training.run_dir import check_writable, open_finished_run, read_json


def run_labels(configs):
    """Short unique labels such as "vit vit_cifar_mini", "vit vit_b16 pretrained" or "vit vit_test distilled",
    numbered when two runs share one."""
    labels = []
    for config in configs:
        label = (f"{config['model']} {config['preset']}" + (" pretrained" if config.get("pretrained") else "")
                 + (" distilled" if config.get("teacher") else ""))
        labels.append(label if label not in labels else f"{label} #{len(labels) + 1}")
    return labels


def check_report_folder(out_dir):
    """A one-line UserError unless the report can replace `out_dir` whole: a new or empty folder, or an
    earlier report (it holds report.md), in a place that can be written."""
    out = pathlib.Path(out_dir)
    if out.is_file():
        raise UserError(f"--out {out_dir} is a file; give a folder for the report")
    if out.is_dir() and any(out.iterdir()) and not (out / "report.md").is_file():
        others = sorted(path.name for path in out.iterdir())
        raise UserError(f"--out {out_dir} holds other files ({', '.join(others[:3])}), not an earlier report; give a "
                        "new or empty folder (a report replaces its folder whole)")
    check_writable(out_dir, option="--out")


def check_comparable(run_dirs):
    """The runs' labels, or a one-line UserError: a run that is not finished, or runs trained on different
    classes."""
    configs = [open_finished_run(run_dir)[1] for run_dir in run_dirs]
    first = configs[0]["class_names"]
    for run_dir, config in zip(run_dirs[1:], configs[1:]):
        if config["class_names"] != first:
            raise UserError(
                f"{run_dirs[0]} ({len(first)} classes: {', '.join(first[:3])}, ...) and {run_dir} "
                f"({len(config['class_names'])} classes: {', '.join(config['class_names'][:3])}, ...) were trained on "
                "different classes; compare runs of the same classes"
            )
    return run_labels(configs)


def check_sweep(sweep):
    """The finished runs of a sweep folder (scaling.py), or a one-line UserError."""
    if not (pathlib.Path(sweep) / "sweep.json").is_file():
        raise UserError(f"--sweep {sweep} is not a sweep folder (no sweep.json); give a folder scaling.py wrote")
    rows = sweeps.collect(sweep)
    if not rows:
        raise UserError(f"--sweep {sweep} has no finished runs yet; continue it with scaling.py")
    return rows


def sweep_dataset_name(sweep):
    run = next(path for path in sorted((pathlib.Path(sweep) / "runs").glob("*")) if (path / "metrics.json").exists())
    return read_json(run / "metrics.json").get("dataset", "?")

