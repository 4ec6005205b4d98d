"""The GPU campaign of issue 10 as one rerunnable queue: speed first, then the CNN and ViT accuracy runs.

Each call works through the queue in order for at most --budget seconds and stops; what finished is
in results/gpu/ (no weights, no images), and the next call, in this session or a later one, goes on from
there. A training run still going at the deadline is stopped with SIGTERM (its epochs are kept) and
resumed by the next call while the machine still holds it, else started again.

    bash tools/gpu_wheels.sh                            # once, here: Keras' wheels and the archive, for the GPU
    python tools/gpu_campaign.py --budget 540           # on the GPU machine (KERAS_BACKEND=jax;
                                                        # docs/contributing.md, "Measuring on a GPU machine")
    python tools/gpu_campaign.py --list                 # the queue: what is done, what is next
    python tools/gpu_campaign.py --summary              # results/gpu/README.md from the files in results/gpu/
    python tools/gpu_campaign.py --quick --results DIR  # a CPU rehearsal: test sizes, the sample, 2 candidates

The full CIFAR-10 runs use the JPEG-quality-75 copy (.gpu/cifar10-jpeg.tar.gz), which scores slightly
below the original; every table here says so.
"""

import argparse
import dataclasses
import fnmatch
import json
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
RUN_FILES = ("config.json", "manifest.json", "history.csv", "metrics.json")
VIT_SECONDS_TARGET, CNN_SECONDS_TARGET = 15 * 60, 60  # training time the issue allows a from-scratch model
DATA = {False: "the JPEG-quality-75 copy of CIFAR-10 (slightly below the original), 45,000 train / 5,000 "
               "validation / 10,000 test images",
        True: "a CPU rehearsal (--quick) on the embedded cifar10_sample, test-sized models, 1 epoch, two candidates"}


@dataclasses.dataclass
class Step:
    name: str
    kind: str  # "benchmark" or "train"
    args: list  # train.py or benchmark.py arguments; for "seeds" steps, filled from the results
    candidates: tuple = ()  # train: ablations whose best (validation accuracy within the time limit) this repeats
    seed: int = 0
    time_limit: float = 0.0  # training seconds a candidate may take
    batch_sizes: tuple = ()  # benchmark: tried in this order until one fits in the accelerator's memory
    seconds: float = 120  # a benchmark's expected duration: it cannot stop half-way, so it starts only if it fits


def queue(quick):
    """The whole campaign, in the order it runs. `quick`: test sizes and a few steps, to rehearse on a CPU."""
    vit, small, cnn, big_cnn = ("vit_test",) * 2 + ("resnet_test",) * 2 if quick else \
        ("vit_cifar_tiny", "vit_cifar_small", "resnet20", "preact_resnet18")
    timing = ["--steps", "2", "--warmup-steps", "1"] if quick else ["--steps", "100", "--warmup-steps", "10"]
    batch = ["--batch-size", "8" if quick else "512", *timing]
    epochs = (lambda n: ["--epochs", "1"]) if quick else (lambda n: ["--epochs", str(n)])
    data = [] if quick else ["--data-dir", ".gpu/cifar10-jpeg.tar.gz", "--dataset", "cifar10-jpeg"]
    steps_list = []
    # 1. The fast path's input pipeline: batches sent from host memory -> made on the device.
    for model, mixing in ((f"vit:{vit}", "mixup"), (f"cnn:{cnn}", "none")):
        for label, switches in (("host-batches", ["--data-on-device", "off"]),
                                ("data-on-device", ["--data-on-device", "on"])):
            steps_list.append(Step(f"fast-path-{model.split(':')[1]}-{label}", "benchmark",
                                   ["--model", model, "--mixing", mixing, *batch, *switches]))
    # 2. Ours against the straightforward Keras ViT, and the other sizes; the paper's ViT-B/16 at 224 px.
    # (--peers: keras-hub's and timm's, those installed; the others are skipped with a line)
    steps_list.append(Step("side-by-side", "benchmark", ["--side-by-side", "--peers", *batch, *(
        arg for model in (f"vit:{vit}", f"vit:{small}", f"cnn:{cnn}", f"cnn:{big_cnn}") for arg in ("--model", model))],
        seconds=420))
    b16 = "vit_test" if quick else "vit_b16"
    steps_list.append(Step(f"side-by-side-{b16}", "benchmark", ["--side-by-side", "--model", f"vit:{b16}", *timing],
                           batch_sizes=("8",) if quick else ("256", "128", "64"), seconds=300))  # the largest that fits
    # 3. The CNN: the course recipe, then shorter large-batch schedules aimed at 94% in 60 s.
    cnn_runs = {
        "cnn-course": ["--model", "cnn", "--recipe", "course"],
        "cnn-r18-e15-b512": ["--model", "cnn", "--preset", big_cnn, *epochs(15), "--batch-size", "512",
                             "--learning-rate", "0.4"],
        "cnn-r18-e10-b512": ["--model", "cnn", "--preset", big_cnn, *epochs(10), "--batch-size", "512",
                             "--learning-rate", "0.4"],
        "cnn-r20-e30-b512": ["--model", "cnn", "--preset", cnn, *epochs(30), "--batch-size", "512",
                             "--learning-rate", "0.4"],
    }
    # 4. The ViT: the course recipe, then one change each (a results table of ablations).
    course = ["--model", "vit", "--recipe", "course", "--preset", vit]
    vit_runs = {
        "vit-course": course,
        "vit-no-mixup": [*course, "--mixing", "none"],
        "vit-cutmix": [*course, "--mixing", "cutmix", "--mixing-alpha", "1.0"],
        "vit-no-drop-path": [*course, "--drop-path-rate", "0"],
        "vit-batch512-lr2e-3": [*course, "--batch-size", "512", "--learning-rate", "2e-3"],
        "vit-200-epochs": [*course, *epochs(200)],
        "vit-small": [*course, "--preset", small],
        "vit-patch2-depth6": [*course, "--patch-size", "2", "--depth", "6"],
    }
    if quick:  # two candidates of each family, at the test size (the course recipe's own preset is not)
        cnn_runs = {name: [*args, "--preset", cnn, *epochs(1), "--batch-size", "32"]
                    for name, args in list(cnn_runs.items())[:2]}
        vit_runs = {name: [*args, "--preset", vit, *epochs(1), "--batch-size", "32"]
                    for name, args in list(vit_runs.items())[:2]}
    for runs, limit in ((cnn_runs, CNN_SECONDS_TARGET), (vit_runs, VIT_SECONDS_TARGET)):
        steps_list += [Step(name, "train", [*args, *data]) for name, args in runs.items()]
        family = next(iter(runs)).split("-")[0]
        # 5. The best of them by validation accuracy, within the time limit, over seeds 1 and 2 (seed 0 is above).
        steps_list += [Step(f"{family}-best-seed{seed}", "train", [], candidates=tuple(runs), seed=seed,
                            time_limit=limit) for seed in (1, 2)]
    # Most valuable first: speed beside the peers, then one course run of each family; then the rest as above.
    first = ("side-by-side", "cnn-course", "vit-course")
    return sorted(steps_list, key=lambda step: first.index(step.name) if step.name in first else len(first))


def finished(results, step):
    folder = "speed" if step.kind == "benchmark" else "runs"
    suffix = ".json" if step.kind == "benchmark" else "/metrics.json"
    return (results / folder / f"{step.name}{suffix}").exists()


def read_run(results, name):
    folder = results / "runs" / name
    if not (folder / "metrics.json").exists():
        return None
    return {"metrics": json.loads((folder / "metrics.json").read_text()),
            "command": (folder / "command.txt").read_text().strip()}


def best_candidate(results, step):
    """(name, train.py arguments) of the candidate with the best validation accuracy among those that trained
    within the time limit; None until every candidate has finished."""
    runs = {name: read_run(results, name) for name in step.candidates}
    if any(run is None for run in runs.values()):
        return None
    within = {name: run for name, run in runs.items() if run["metrics"]["train_seconds"] <= step.time_limit} or runs
    name = max(within, key=lambda key: within[key]["metrics"]["best_val_accuracy"] or 0.0)
    return name, json.loads((results / "runs" / name / "arguments.json").read_text())


def run_step(step, results, scratch, deadline):
    """Runs one step; returns whether it finished (False: the deadline came first)."""
    if step.kind == "benchmark":
        out = results / "speed" / f"{step.name}.json"
        for size in step.batch_sizes or (None,):
            command = [sys.executable, "benchmark.py", *step.args, *(["--batch-size", size] if size else []),
                       "--out", str(out)]
            print(f"== {step.name}: {' '.join(command[1:])}", flush=True)
            if subprocess.run(command, cwd=REPO).returncode == 0:
                return True
        # e.g. no batch fits in the GPU's memory: recorded, and the queue goes on
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"failed": True, "command": " ".join(command[1:])}) + "\n")
        return True
    arguments = step.args
    if step.candidates:
        chosen = best_candidate(results, step)
        if chosen is None:
            print(f"== {step.name}: waits for {', '.join(step.candidates)}", flush=True)
            return True
        arguments = [*chosen[1], "--seed", str(step.seed)]
    run_dir = scratch / step.name
    if (run_dir / "config.json").exists() and not (run_dir / "metrics.json").exists():
        command = [sys.executable, "train.py", "--resume", str(run_dir)]
    else:
        command = [sys.executable, "train.py", *arguments, "--run-dir", str(run_dir), "--overwrite"]
    print(f"== {step.name}: {' '.join(command[1:])}", flush=True)
    process = subprocess.Popen(command, cwd=REPO)
    try:
        process.wait(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGTERM)  # train.py keeps its finished epochs; the next call resumes
        process.wait()
        return False
    if process.returncode != 0:
        raise SystemExit(f"error: {step.name} failed (exit {process.returncode}); see its output above")
    keep = results / "runs" / step.name
    keep.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        shutil.copy2(run_dir / name, keep / name)
    (keep / "arguments.json").write_text(json.dumps(arguments) + "\n")
    (keep / "command.txt").write_text("python train.py " + " ".join(arguments) + "\n")
    return True


def summary(results, quick=False):
    """results/README.md: every finished run and speed file, grouped, with mean ± std over seeds."""
    lines = ["# GPU campaign results", "", f"Written by `python tools/gpu_campaign.py --summary` from the files "
             f"here. Accuracy: {DATA[quick]}; selection by validation accuracy, test accuracy of the last epoch.", "",
             "## Training runs", "", "| run | test acc | best val acc | epochs | train s | img/s | command |",
             "|---|---|---|---|---|---|---|"]
    runs = sorted((results / "runs").glob("*/metrics.json")) if (results / "runs").exists() else []
    for path in runs:
        run = read_run(results, path.parent.name)
        m = run["metrics"]
        lines.append(f"| {path.parent.name} | {m['test_accuracy']:.2%} | {(m['best_val_accuracy'] or 0):.2%} | "
                     f"{m['epochs_trained']} | {m['train_seconds']:,.0f} | {m['images_per_second']:,.0f} | "
                     f"`{run['command']}` |")
    lines += ["", "## Over seeds (the best candidate, seeds 0-2)", ""]
    for step in (step for step in queue(quick) if step.candidates and step.seed == 1):
        family = step.name.split("-")[0]
        best = best_candidate(results, step)  # the candidate the extra seeds repeat: seed 0
        names = [best[0], f"{family}-best-seed1", f"{family}-best-seed2"] if best else []
        chosen = [read_run(results, name) for name in names]
        if not chosen or None in chosen:
            continue
        values = [run["metrics"] for run in chosen]
        accuracy = [m["test_accuracy"] for m in values]
        seconds = [m["train_seconds"] for m in values]
        lines.append(f"- {family} ({best[0]}, seeds 0, 1, 2): test accuracy {statistics.mean(accuracy):.2%} ± "
                     f"{statistics.stdev(accuracy):.2%}, training {statistics.mean(seconds):,.0f} s ± "
                     f"{statistics.stdev(seconds):,.0f} s")
    lines += ["", "## Speed (benchmark.py)", ""]
    for path in sorted((results / "speed").glob("*.json")) if (results / "speed").exists() else []:
        report = json.loads(path.read_text())
        if "failed" in report:
            lines.append(f"- {path.stem}: failed: `{report['command']}`")
            continue
        for row in report["results"]:
            mfu = "-" if row["mfu"] is None else f"{row['mfu']:.1%}"
            lines.append(f"- {path.stem}: {row['name']} batch {row['batch_size']} {row['precision']}, "
                         f"{row['train_images_per_second']:,.0f} img/s training, MFU {mfu}, "
                         f"peak {row['accelerator_peak_mib'] or 0:,.0f} MiB, {row['input_pipeline']}, "
                         f"NaN guard {row['nan_guard']}")
        for name, ratio in report.get("speedup_over_baseline", {}).items():
            lines.append(f"- {path.stem}: {name} trains {ratio:.2f}x as fast as the straightforward baseline")
    (results / "README.md").write_text("\n".join(lines) + "\n")
    return results / "README.md"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=540, help="seconds this call may run (default: 540)")
    parser.add_argument("--results", default="results/gpu", help="where the evidence goes (default: results/gpu)")
    parser.add_argument("--scratch", default="campaign_runs", help="run directories, weights included (default: "
                        "campaign_runs, not committed)")
    parser.add_argument("--quick", action="store_true",
                        help="test sizes, one epoch, the embedded sample (a CPU rehearsal)")
    parser.add_argument("--only", nargs="+", metavar="PATTERN", help="only the steps whose names match (fnmatch)")
    parser.add_argument("--list", action="store_true", help="print the queue and stop")
    parser.add_argument("--summary", action="store_true", help="write RESULTS/README.md and stop")
    args = parser.parse_args(argv)
    results, scratch = REPO / args.results, REPO / args.scratch
    steps = [step for step in queue(args.quick)
             if not args.only or any(fnmatch.fnmatch(step.name, pattern) for pattern in args.only)]
    if args.list:
        for step in steps:
            print(f"{'done' if finished(results, step) else 'next':<5} {step.name}")
        return
    if args.summary:
        print(f"wrote {summary(results, args.quick)}")
        return
    deadline = time.monotonic() + args.budget
    # A module missing on the GPU machine answers here, in seconds, not after the first benchmark's start.
    check = subprocess.run([sys.executable, "-c", "import train, benchmark, harness.benchmarking.run"], cwd=REPO,
                           capture_output=True, text=True)
    if check.returncode != 0:
        raise SystemExit(f"error: the project does not import here: {check.stderr.strip().splitlines()[-1]} "
                         "(bring its wheel along: tools/gpu_wheels.sh)")
    for step in steps:
        if finished(results, step):
            continue
        left = deadline - time.monotonic()
        if left < 30 or (step.kind == "benchmark" and left < step.seconds):  # the next call starts with it
            print(f"== {step.name} waits for the next call ({left:.0f} s left)", flush=True)
            break
        if not run_step(step, results, scratch, deadline):
            print(f"== budget spent during {step.name}; the next call resumes it", flush=True)
            break
    print(f"wrote {summary(results, args.quick)}")


if __name__ == "__main__":
    main()
