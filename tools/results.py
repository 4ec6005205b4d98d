"""results/: the measured runs behind every figure in README.md's Results section, and the command that
makes them and renders them.

    python tools/results.py run --recipe cpu30 --model cnn --seed 0 --data-dir DIR   # measure one run
    python tools/results.py render     # results/README.md and README.md's Results table, from results/
    python benchmark.py ... --out results/speed/NAME.json   # a speed table, rendered the same way

`run` first times `resnet20` with benchmark.py (batch 128) as the machine's speed calibration, then trains
the recipe with train.py, and keeps its config, manifest, history and metrics (never the weights) in
results/<recipe>/<model>-s<seed>/, with the calibration and the load average before and after. Run it when
nothing else runs on the machine. `render` reads only those files.
"""

import argparse
import json
import os
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from harness.reporting import budgets  # noqa: E402  (light: no Keras)

RESULTS = ROOT / "results"
KEPT_FILES = ("config.json", "manifest.json", "history.csv", "metrics.json")
README_START, README_END = "<!-- results:start -->", "<!-- results:end -->"
MODEL_NAMES = {"cnn": "CNN", "vit": "ViT", "hybrid": "hybrid"}
NOT_RECIPES = ("ablations", "speed", "gpu")  # results/'s other folders: comparisons, speed files, the GPU campaign


class Damaged(Exception):
    """A file under results/ that is missing, cut short or holds a field of the wrong type: one line naming it."""


# The fields each file must hold, by dotted path ("*": every element), with the JSON types allowed for them:
# float is any number, a list names the values allowed, None allows null, ABSENT allows the field to be left out.
# Checked when a file is read, so that a damaged file is named in one line before anything is written.
ABSENT = object()
METRICS = {"model": list(MODEL_NAMES), "preset": str, "dataset": str, "backend": str, "test_accuracy": float,
           "test_accuracy_tta": (float, None, ABSENT), "epochs_trained": int, "train_seconds": float, "params": int,
           "time_budget": (dict, None, ABSENT), "time_budget.actual_seconds": (float, ABSENT),
           "time_budget.budget_seconds": (float, ABSENT),
           "precision": (str, None, ABSENT)}
MANIFEST = {"seed": int, "cpu": str, "git_commit": (str, None), "device": str, "versions": dict}
CONFIG = {"split_sizes": dict, "split_sizes.train": int}
MEASUREMENT = {"calibration": dict, "calibration.train_images_per_second": float, "load_average_before": list,
               "load_average_before.0": float}
ABLATION_METRICS = {"preset": str, "epochs_trained": int, "best_val_accuracy": float, "test_accuracy": float,
                    "test_accuracy_tta": (float, None, ABSENT)}
SPEED = {"environment": dict, "environment.versions": dict, "environment.command": str, "environment.device": str,
         "environment.machine": str, "environment.backend": str, "environment.date": str,
         "environment.load_average_at_start": (list, None, ABSENT), "environment.load_average_at_start.*": float,
         "settings": dict, "settings.batch_size": int, "settings.rounds": (int, None, ABSENT),
         "results": list, "results.*": dict, "results.*.name": str, "results.*.params": int,
         "results.*.train_images_per_second": float, "results.*.eval_images_per_second": float,
         "results.*.train_range": (list, None, ABSENT), "results.*.train_range.*": float,
         "results.*.train_range.1": float, "results.*.gelu": (str, None, ABSENT),
         "results.*.precision": (str, None), "results.*.jit_compile": (bool, None, ABSENT),
         "speedup_over_peers": (dict, ABSENT), "speedup_over_peers.*": dict, "speedup_over_peers.*.*": dict,
         "speedup_over_peers.*.*.train_ratio": float, "speedup_over_peers.*.*.eval_ratio": float,
         "speedup_over_baseline": (dict, ABSENT), "speedup_over_baseline.*": float}
TYPE_NAMES = {float: "a number", int: "a whole number", str: "text", dict: "an object", list: "a list",
              bool: "true or false", None: "null"}


def read_json(path, fields):
    """The JSON object in `path`, with each of `fields` checked; Damaged, naming the file and the field, if not."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise Damaged(f"{path} is missing") from None
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise Damaged(f"{path} cannot be read as JSON ({error}); it is damaged or cut short") from None
    if not isinstance(data, dict):
        raise Damaged(f"{path} holds a JSON {type(data).__name__}, not an object")
    for field, kinds in fields.items():
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        for where, value in _found(data, field.split(".")):
            if value is ABSENT and ABSENT not in kinds:
                raise Damaged(f"{path} has no {where}")
            if value is not ABSENT and not any(_is(value, kind) for kind in kinds):
                wanted = " or ".join(f"one of {', '.join(kind)}" if isinstance(kind, list) else TYPE_NAMES[kind]
                                     for kind in kinds if kind is not ABSENT)
                raise Damaged(f"{path}: {where} is {json.dumps(value)[:60]}, not {wanted}")
    return data


def _found(value, parts, where=""):
    """(dotted place, value) for each place `parts` names in `value`, ABSENT where a key or index is missing.
    Nothing is found below a value of another type: its own field reports that."""
    if not parts:
        return [(where, value)]
    part, rest = parts[0], parts[1:]
    if isinstance(value, dict):
        children = [(key, value[key]) for key in value] if part == "*" else [(part, value.get(part, ABSENT))]
    elif isinstance(value, list) and (part == "*" or part.isdigit()):
        indices = range(len(value)) if part == "*" else [int(part)]
        children = [(index, value[index] if index < len(value) else ABSENT) for index in indices]
    else:
        return []
    return [found for key, child in children for found in _found(child, rest, f"{where}.{key}" if where else f"{key}")]


def _is(value, kind):
    if kind is ABSENT:  # (only said of a missing field)
        return False
    if isinstance(kind, list):
        return value in kind
    if kind is None:
        return value is None
    if isinstance(value, bool):  # JSON's true is no number
        return kind is bool
    return isinstance(value, (int, float) if kind is float else kind)


def calibrate(python):
    """train img/s of resnet20 at batch 128 from benchmark.py, on this machine now."""
    with tempfile.TemporaryDirectory() as scratch:
        out = pathlib.Path(scratch) / "calibration.json"
        subprocess.run([python, "benchmark.py", "--model", "cnn:resnet20", "--batch-size", "128", "--warmup-steps",
                        "3", "--steps", "20", "--out", str(out)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        row = json.loads(out.read_text())["results"][0]
    return {"benchmark": "benchmark.py --model cnn:resnet20 --batch-size 128 --warmup-steps 3 --steps 20",
            "train_images_per_second": row["train_images_per_second"]}


def run(args):
    destination = RESULTS / args.recipe / f"{args.model}-s{args.seed}"
    if destination.exists() and not args.overwrite:
        sys.exit(f"error: {destination} exists; add --overwrite to measure it again")
    load_before = os.getloadavg()
    calibration = calibrate(args.python)
    with tempfile.TemporaryDirectory() as scratch:
        run_dir = pathlib.Path(scratch) / "run"
        data = ["--data-dir", args.data_dir, "--dataset", args.dataset] if args.data_dir else []  # else the sample
        command = [args.python, "train.py", "--recipe", args.recipe, "--model", args.model, "--seed", str(args.seed),
                   *data, "--run-dir", str(run_dir), *args.extra]
        subprocess.run(command, cwd=ROOT, check=True)
        destination.mkdir(parents=True, exist_ok=True)
        for name in KEPT_FILES:
            shutil.copy(run_dir / name, destination / name)
    measurement = {"calibration": calibration, "load_average_before": load_before,
                   "load_average_after": os.getloadavg(),
                   "command": " ".join(["python tools/results.py run", *sys.argv[2:]])}
    (destination / "measurement.json").write_text(json.dumps(measurement, indent=2) + "\n")
    print(f"kept {destination}")
    render(None)


def read_runs():
    """One dict per measured run under results/, in a stable order."""
    runs = []
    # Every folder results/<recipe>/<run>/: one that lacks a file is named, not left out of the table.
    for folder in sorted(p for p in RESULTS.glob("*/*") if p.is_dir() and p.parent.name not in NOT_RECIPES):
        metrics = read_json(folder / "metrics.json", METRICS)
        measurement = read_json(folder / "measurement.json", MEASUREMENT)
        manifest = read_json(folder / "manifest.json", MANIFEST)
        config = read_json(folder / "config.json", CONFIG)
        budget = metrics.get("time_budget") or {}
        runs.append({"recipe": folder.parent.name, "model": metrics["model"], "preset": metrics["preset"],
                     "seed": manifest["seed"], "folder": folder.relative_to(RESULTS.parent).as_posix(),
                     "test_accuracy": 100 * metrics["test_accuracy"], "epochs": metrics["epochs_trained"],
                     "test_accuracy_tta": (100 * metrics["test_accuracy_tta"]
                                           if metrics.get("test_accuracy_tta") is not None else None),
                     "cpu": manifest["cpu"], "commit": manifest["git_commit"],
                     "train_minutes": budget.get("actual_seconds", metrics["train_seconds"]) / 60,
                     "time_budget_minutes": budget["budget_seconds"] / 60 if "budget_seconds" in budget else None,
                     "params": metrics["params"], "device": manifest["device"],
                     "data": f"{metrics['dataset']}, {config['split_sizes']['train']:,} train",
                     "backend": metrics["backend"], "versions": manifest["versions"],
                     "precision": metrics.get("precision") or "float32",
                     "calibration": measurement["calibration"]["train_images_per_second"],
                     "load": measurement["load_average_before"][0]})
    return runs


def summary(accuracies):
    """'91.23%' for one seed, '91.23% ± 0.31% (3 seeds)' for several (sample standard deviation)."""
    if len(accuracies) == 1:
        return f"{accuracies[0]:.2f}%"
    return f"{statistics.mean(accuracies):.2f}% ± {statistics.stdev(accuracies):.2f}% ({len(accuracies)} seeds)"


def groups(runs):
    """{(recipe, model): [runs]} in the order they first appear."""
    grouped = {}
    for row in runs:
        grouped.setdefault((row["recipe"], row["model"]), []).append(row)
    return grouped


def expected(runs=None):
    """{recipe: {model: summary}}: what each recipe's `expected` says (harness.training.recipes)."""
    found = {}
    for (recipe, model), rows in groups(read_runs() if runs is None else runs).items():
        found.setdefault(recipe, {})[model] = summary([row["test_accuracy"] for row in rows])
    return found


def results_table(runs):
    """The Markdown table README.md and results/README.md show: one row per recipe and model."""
    lines = ["| recipe | model | data | test accuracy | with test-time augmentation | epochs | training time "
             "| precision | parameters | machine (resnet20 img/s) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for (recipe, model), rows in groups(runs).items():
        first = rows[0]
        epochs = sorted({row["epochs"] for row in rows})
        epochs = f"{epochs[0]}-{epochs[-1]}" if len(epochs) > 1 else f"{epochs[0]}"
        minutes = statistics.mean(row["train_minutes"] for row in rows)
        accuracy = summary([row["test_accuracy"] for row in rows])
        tta = [row["test_accuracy_tta"] for row in rows if row["test_accuracy_tta"] is not None]
        tta = summary(tta) if len(tta) == len(rows) else "-"
        speeds = sorted({round(row["calibration"]) for row in rows})
        speed = f"{speeds[0]}-{speeds[-1]}" if len(speeds) > 1 else f"{speeds[0]}"
        cpus = " / ".join(sorted({row["cpu"] for row in rows}))
        precisions = " / ".join(sorted({row["precision"] for row in rows}))
        lines.append(f"| `{recipe}` | {MODEL_NAMES[model]} `{first['preset']}` | {first['data']} | {accuracy} "
                     f"| {tta} | {epochs} | {minutes:.1f} min | {precisions} | {first['params']:,} "
                     f"| {cpus}; {first['device']} ({speed}) |")
    return "\n".join(lines)


README_SPEED = "*-no-augmentation.json"  # the README's figure shows the like-for-like files; results/README.md all


def speed_tables(pattern="*.json"):
    """The Markdown of the benchmark.py files in results/speed/ matching `pattern`: command, machine and table."""
    parts = []
    for path in sorted((RESULTS / "speed").glob(pattern)):
        bench = read_json(path, SPEED)
        env, settings = bench["environment"], bench["settings"]
        versions = ", ".join(f"{name} {version}" for name, version in env["versions"].items())
        command = env["command"].replace(str(ROOT) + "/", "")
        load = env.get("load_average_at_start")  # (files measured before 2026-12-02 11:00 lack it)
        busy = f", load average {load[0]:g} at the start" if load else ""
        lines = [f"`python {command}` ({env['device']}, {env['machine']}; backend {env['backend']}; {versions}; "
                 f"{env['date'][:10]}{busy}; batch {settings['batch_size']}, median of {settings.get('rounds', 1)} "
                 "interleaved rounds):", "",
                 "| model | parameters | train img/s | train range | eval img/s | ours ÷ this (train, eval) |",
                 "|---|---|---|---|---|---|"]
        ratios = {f"{peer}:{ours.partition(':')[2]}": f"{ratio['train_ratio']:.2f}x, {ratio['eval_ratio']:.2f}x"
                  for ours, by_peer in bench.get("speedup_over_peers", {}).items() for peer, ratio in by_peer.items()}
        ratios.update({f"baseline:{ours.partition(':')[2]}": f"{ratio:.2f}x, -"
                       for ours, ratio in bench.get("speedup_over_baseline", {}).items()})
        for row in bench["results"]:
            spread = "-" if not row.get("train_range") else "{:,.0f}-{:,.0f}".format(*row["train_range"])
            gelu = f", {row['gelu']} GELU" if row.get("gelu") else ""  # (files before 2026-12-02 13:30 lack it)
            lines.append(f"| `{row['name']}`{gelu} | {row['params']:,} | {row['train_images_per_second']:,.1f} "
                         f"| {spread} | {row['eval_images_per_second']:,.1f} | {ratios.get(row['name'], '')} |")
        parts.append("\n".join(lines))
    return "\n\n".join(parts)


def ablation_table(group):
    """The Markdown table of one comparison in results/ablations/GROUP/: a row per run, judged on validation."""
    lines = ["| run | preset | epochs | validation accuracy (best epoch) | test accuracy "
             "| with test-time augmentation | CPU |", "|---|---|---|---|---|---|---|"]
    runs = RESULTS / "ablations" / group
    if not runs.is_dir():
        raise Damaged(f"docs/training.md shows the comparison {group}, but {runs} is not there")
    for folder in sorted(p for p in runs.iterdir() if p.is_dir()):
        metrics = read_json(folder / "metrics.json", ABLATION_METRICS)
        manifest = read_json(folder / "manifest.json", {"cpu": str})
        tta = metrics.get("test_accuracy_tta")
        lines.append(f"| [{folder.name}](../results/ablations/{group}/{folder.name}/) | `{metrics['preset']}` "
                     f"| {metrics['epochs_trained']} | {100 * metrics['best_val_accuracy']:.2f}% "
                     f"| {100 * metrics['test_accuracy']:.2f}% | {'-' if tta is None else f'{100 * tta:.2f}%'} "
                     f"| {manifest['cpu']} |")
    return "\n".join(lines)


ABLATION_MARKER = re.compile(r"<!-- ablation:([\w.-]+):start -->")


def render_ablations(text):
    """`text` with every `<!-- ablation:GROUP:start -->`...`end` pair filled with GROUP's table."""
    for group in ABLATION_MARKER.findall(text):
        text = replace_between(text, f"<!-- ablation:{group}:start -->", f"<!-- ablation:{group}:end -->",
                               ablation_table(group))
    return text


BUDGET_FIGURE = RESULTS / "accuracy_by_budget.png"
BUDGET_POINTS = RESULTS / "accuracy_by_budget.json"  # the figure's numbers, which compare.py's reports read


def write_accuracy_by_budget(runs):
    """results/accuracy_by_budget.json and .png from the CPU recipes' runs; both removed where none exists."""
    points = budgets.budget_points(runs)
    if not points:
        BUDGET_FIGURE.unlink(missing_ok=True)
        BUDGET_POINTS.unlink(missing_ok=True)
        return
    cpus = sorted({row["cpu"] for row in runs if row["recipe"].startswith("cpu")})
    BUDGET_POINTS.write_text(json.dumps({"cpus": cpus, "points": points}, indent=1) + "\n")
    budgets.plot_accuracy_by_budget(points, BUDGET_FIGURE, cpus)


SPEED_FIGURE = RESULTS / "speed_beside_peers.png"
PEER_COLOURS = {"ours": "tab:blue", "keras-hub": "tab:purple", "timm": "tab:red", "timm-compile": "salmon"}


def plot_speed_beside_peers(pattern=README_SPEED, path=SPEED_FIGURE):
    """One group of bars per like-for-like speed file (model, precision, CPU kind): each peer's training img/s
    divided by ours at the same size, so ours is 1 and a bar past 1 trains faster. None where none exists."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = []
    for file in sorted((RESULTS / "speed").glob(pattern)):
        bench = read_json(file, SPEED)
        rows = bench["results"]
        ours = next((row for row in rows if row["name"].split(":")[0] in MODEL_NAMES), None)
        if ours is None or len(rows) < 2:
            continue
        cpu = "AVX2" if "AVX2" in bench["environment"]["machine"] else "AVX-512"  # files without a CPU: AVX-512
        jit = ", XLA" if ours.get("jit_compile") else ""
        precision = (ours["precision"] or "float32").replace("mixed_", "")
        label = f"{ours['name'].split(':')[1]}\n{precision}{jit}\n{cpu}"
        speeds = {("ours" if row is ours else row["name"].split(":")[0]): row["train_images_per_second"]
                  / ours["train_images_per_second"] for row in rows}
        groups.append((label, speeds))
    groups.sort(key=lambda group: group[0].rsplit("\n", 1)[1])  # the AVX2 machine's files first
    if not groups:
        return None
    figure, axes = plt.subplots(figsize=(10.0, 4.4))
    width = 0.8 / len(PEER_COLOURS)
    for index, (peer, colour) in enumerate(PEER_COLOURS.items()):
        places = [(group, speeds[peer]) for group, (_, speeds) in enumerate(groups) if peer in speeds]
        axes.bar([group + (index - 1.5) * width for group, _ in places], [ratio for _, ratio in places], width,
                 color=colour, label=peer)
    axes.axhline(1.0, color="black", linewidth=0.8)
    axes.set_xticks(range(len(groups)), [label for label, _ in groups], fontsize=7)
    axes.set(ylabel="training img/s, relative to ours",
             title="Training speed at the same size, 2 CPU cores, no augmentation (results/speed/)")
    axes.legend(fontsize=8)
    axes.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path


def replace_between(text, start, end, content):
    first, last = text.index(start) + len(start), text.index(end)
    return text[:first] + "\n" + content + "\n" + text[last:]


def render(_args):
    # Everything is read (and checked) before anything is written: a damaged file leaves every output as it was.
    runs = read_runs()
    table = results_table(runs)
    speed = speed_tables()
    training = ROOT / "docs" / "training.md"
    ablations = render_ablations(training.read_text())
    details = ["| run | seed | test accuracy | epochs | minutes | CPU | load before | backend | versions |",
               "|---|---|---|---|---|---|---|---|---|"]
    for row in runs:
        versions = ", ".join(f"{name} {version}" for name, version in row["versions"].items() if version)
        details.append(f"| [{row['folder']}]({pathlib.PurePosixPath(row['folder']).relative_to('results')}/) | "
                       f"{row['seed']} | {row['test_accuracy']:.2f}% | {row['epochs']} | {row['train_minutes']:.1f} | "
                       f"{row['cpu']} | {row['load']:.2f} | {row['backend']} | {versions} |")
    (RESULTS / "README.md").write_text(
        "# Measured results\n\nGenerated by `python tools/results.py render` from the run folders below; do not edit.\n"
        "Each folder holds a run's config.json, manifest.json (machine, versions, command), history.csv and\n"
        "metrics.json (with its time-budget record), and measurement.json (the machine's speed calibration:\n"
        "benchmark.py's resnet20 training img/s at batch 128 just before the run, and the load average).\n"
        "Test accuracy is on the test split (10,000 images of CIFAR-10, 1,000 of the embedded sample), touched\n"
        "once per run; every choice of settings was made on the validation split. cifar10-jpeg is CIFAR-10\n"
        "re-encoded as JPEG (quality 75), which scores a little below the original.\n\n"
        f"{table}\n\n## Every run\n\n" + "\n".join(details) + "\n\n"
        "## Speed\n\nbenchmark.py's own JSON files in speed/, each as it printed it.\n\n" + speed + "\n\n"
        "[ablations/](ablations/) holds the short comparisons behind the recipes' choices (config, manifest,\n"
        "history, metrics of each run; read in docs/training.md, \"Choosing the CPU recipes\"). A gpu/ folder,\n"
        "when present, is the GPU campaign's own record (tools/gpu_campaign.py).\n")
    training.write_text(ablations)
    write_accuracy_by_budget(runs)
    if plot_speed_beside_peers(path=SPEED_FIGURE) is None:
        SPEED_FIGURE.unlink(missing_ok=True)
    readme = ROOT / "README.md"
    readme.write_text(replace_between(readme.read_text(), README_START, README_END, table))
    print(f"rendered {len(runs)} runs into results/README.md and README.md")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    measure = commands.add_parser("run", help="measure one recipe run into results/")
    measure.add_argument("--recipe", required=True)
    measure.add_argument("--model", required=True, choices=list(MODEL_NAMES))
    measure.add_argument("--seed", type=int, default=0)
    measure.add_argument("--data-dir", help="CIFAR-10 as an image folder or batch files (default: the embedded sample)")
    measure.add_argument("--dataset", default="cifar10-jpeg",
                         help="the data's label in the run (default: cifar10-jpeg)")
    measure.add_argument("--python", default=sys.executable)
    measure.add_argument("--overwrite", action="store_true")
    measure.add_argument("extra", nargs="*", help="more train.py options, after --")
    measure.set_defaults(handler=run)
    commands.add_parser("render", help="write results/README.md and README.md's table").set_defaults(handler=render)
    args = parser.parse_args()
    try:
        args.handler(args)
    except Damaged as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
