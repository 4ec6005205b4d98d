"""Measure training and inference speed: img/s, FLOPs, model FLOPs utilisation, memory; print a table, write JSON.

    python benchmark.py --quick                                   # under a minute on 2 CPU cores
    python benchmark.py --model vit:vit_cifar_tiny --side-by-side --batch-size 512 --steps 100
    python benchmark.py --model cnn:resnet20 --precision float32 --jit-compile off
    python benchmark.py --model vit:vit_cifar_tiny --peers --batch-size 128 --rounds 3   # beside keras-hub and timm
    python benchmark.py --runs runs/A runs/B --target 0.93         # time-to-accuracy, mean ± std over seeds
"""

import datetime
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

# Light imports only: each speed row is measured in its own process (harness/benchmarking/one.py), which loads Keras.
from harness import backend
from harness.benchmarking.variants import PEER_KINDS, parse_variant, peer_backend, peer_rows
from harness.cli import MAX_BATCH, MAX_DEVICES, MAX_STEPS, OneLineErrorParser, fraction, positive, text
from harness.errors import UserError, cli_main
from harness.training.config import (
    AUGMENTATIONS,
    DATA_ON_DEVICE,
    DEFAULTS,
    GELUS,
    JIT_COMPILE,
    MIXINGS,
    PRECISIONS,
    TrainConfig,
    check_data_on_device,
)
from harness.training.run_dir import check_writable, open_finished_run, write_json

OURS = ("vit", "hybrid", "cnn")  # the rest: the baseline and the peers, measured on one device
QUICK = dict(models=["vit:vit_cifar_mini"], batch_size=64, warmup_steps=1, steps=4)
COLUMNS = [  # (heading, key, format)
    ("model", "name", "{}"), ("params", "params", "{:,}"), ("batch", "batch_size", "{}"),
    ("precision", "precision", "{}"), ("jit", "jit_compile", "{}"), ("GELU", "gelu", "{}"),
    ("train img/s", "train_images_per_second", "{:,.0f}"), ("train range", "train_range", "{0[0]:,.0f}-{0[1]:,.0f}"),
    ("eval img/s", "eval_images_per_second", "{:,.0f}"), ("GFLOPs/img", "forward_gflops_per_image", "{:.3f}"),
    ("MFU", "mfu", "{:.1%}"), ("accel. peak MiB", "accelerator_peak_mib", "{:,.0f}"),
    ("host RSS MiB", "host_peak_rss_mib", "{:,.0f}"), ("devices", "devices", "{}"), ("mixing", "mixing", "{}"),
    ("NaN guard", "nan_guard", "{}"), ("input pipeline", "input_pipeline", "{}"),
]


def print_table(rows, columns):
    cells = [[heading for heading, _, _ in columns]] + [
        ["-" if row.get(key) is None else fmt.format(row[key]) for _, key, fmt in columns] for row in rows
    ]
    widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
    for index, line in enumerate(cells):
        print("  ".join(cell.ljust(width) if i in (0, len(columns) - 1) else cell.rjust(width)
                        for i, (cell, width) in enumerate(zip(line, widths))))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def speed_rows(args):
    settings = {key: getattr(args, key) or QUICK[key] if args.quick else getattr(args, key) or default
                for key, default in (("batch_size", 256), ("warmup_steps", 5), ("steps", 50))}
    variants = list(args.model or (QUICK["models"] if args.quick else ["vit:vit_cifar_tiny"]))
    vit_presets = [text.partition(":")[2] for text in variants if text.partition(":")[0] == "vit"]
    if args.side_by_side or args.quick:
        variants += ["baseline:" + preset for preset in vit_presets]
    peers, skipped = peer_rows(PEER_KINDS if args.peers == [] else args.peers or [], variants)
    for line in skipped:
        print(line, flush=True)
    variants += peers
    # With --devices N, each of our models once on one device and once on N, for the scaling efficiency.
    measurements = [(variant, count) for variant in variants
                    for count in ([1] if args.devices == 1 or variant.partition(":")[0] not in OURS
                                  else [1, args.devices])]
    # Rounds interleave the rows, so that a slow spell of a shared machine spreads over all of them.
    measured = [measure_row(variant, count, settings, args, index, args.rounds)
                for index in range(args.rounds) for variant, count in measurements]
    environments = [row.pop("environment") for row in measured]
    environment = {**environments[0], "versions": {k: v for e in environments for k, v in e["versions"].items()}}
    rows = [median_of_rounds([row for row in measured if (row["name"], row["devices"]) == (name, count)])
            for name, count in dict.fromkeys((row["name"], row["devices"]) for row in measured)]
    return rows, settings, environment


def measure_row(variant, count, settings, args, index, rounds):
    """One row measured in a fresh process (harness/benchmarking/one.py); its JSON as a dict."""
    print(f"measuring {variant}{f' on {count} devices' if count > 1 else ''}"
          f"{f' (round {index + 1} of {rounds})' if rounds > 1 else ''} ...", flush=True)
    row_settings = {"variant": variant, **settings, "precision": args.precision, "jit_compile": args.jit_compile,
                    "devices": str(count), "mixing": args.mixing, "data_on_device": args.data_on_device,
                    "augmentation": args.augmentation, "gelu": args.gelu}
    backend_name = peer_backend(variant.partition(":")[0])
    with tempfile.TemporaryDirectory() as scratch:
        out = pathlib.Path(scratch) / "row.json"
        finished = subprocess.run([sys.executable, "-m", "harness.benchmarking.one", json.dumps(row_settings),
                                   str(out)], cwd=pathlib.Path(__file__).resolve().parent,
                                  env={**os.environ, **({"KERAS_BACKEND": backend_name} if backend_name else {})})
        if finished.returncode != 0:  # its one-line error is already on stderr
            sys.exit(finished.returncode)
        return json.loads(out.read_text())


def median_of_rounds(rounds):
    """A row's rounds -> one row: the median img/s, and the training range (min, max) over the rounds."""
    middle = sorted(rounds, key=lambda row: row["train_images_per_second"])[(len(rounds) - 1) // 2]
    return {**middle, "eval_images_per_second": statistics.median(r["eval_images_per_second"] for r in rounds),
            "rounds": len(rounds), "train_range": None if len(rounds) == 1 else [
                min(r["train_images_per_second"] for r in rounds), max(r["train_images_per_second"] for r in rounds)]}


def comparisons(rows, devices):
    """ours ÷ the baseline and ours ÷ each peer (train img/s, one device, the same preset), and the scaling
    efficiency over `devices`: img/s on N devices / (N x img/s on one), 1.0 being perfect scaling."""
    ours = {row["name"].partition(":")[2]: row for row in rows  # (vit and cnn presets have different names)
            if row["name"].startswith(("vit:", "cnn:")) and row["devices"] == 1}
    speedups, peers, efficiency = {}, {}, {}
    for row in rows:
        kind, _, preset = row["name"].partition(":")
        if row["devices"] > 1:
            single = next(r for r in rows if r["name"] == row["name"] and r["devices"] == 1)
            efficiency[row["name"]] = round(row["train_images_per_second"] /
                                            (row["devices"] * single["train_images_per_second"]), 3)
        elif kind not in OURS and preset in ours:
            mine = ours[preset]
            ratio = round(mine["train_images_per_second"] / row["train_images_per_second"], 2)
            if kind == "baseline":
                speedups[mine["name"]] = ratio
            else:
                row["forward_gflops_per_image"] = mine["forward_gflops_per_image"]  # the same architecture
                peers.setdefault(mine["name"], {})[kind] = {
                    "train_ratio": ratio, "params_agree": row["params"] == mine["params"],
                    "eval_ratio": round(mine["eval_images_per_second"] / row["eval_images_per_second"], 2)}
    return speedups, peers, efficiency


def build_parser():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", type=text, metavar="KIND:PRESET",
                        help="vit:PRESET, hybrid:PRESET, cnn:PRESET, baseline:PRESET or PEER:PRESET; repeatable "
                        "(default: vit:vit_cifar_tiny)")
    parser.add_argument("--quick", action="store_true",
                        help=f"small models and few steps: {', '.join(QUICK['models'])} and the baseline ViT")
    parser.add_argument("--side-by-side", action="store_true",
                        help="also time the straightforward Keras ViT (stock MultiHeadAttention, float32, no XLA, "
                        "tf.data augmentation) of each vit preset")
    parser.add_argument("--peers", nargs="*", choices=PEER_KINDS, metavar="PEER",
                        help="also time what a student would use instead, at the size of each vit and cnn preset: "
                        f"{', '.join(PEER_KINDS)} (default: all; pip install -r requirements-peers.txt)")
    parser.add_argument("--rounds", type=positive(int, 20), default=1,
                        help="measure every row this many times, interleaved, and print the median and the range "
                        "(default: 1)")
    parser.add_argument("--batch-size", type=positive(int, MAX_BATCH), help="default: 256 (quick: 64)")
    parser.add_argument("--warmup-steps", type=positive(int, MAX_STEPS),
                        help="untimed steps first, compilation included (default: 5)")
    parser.add_argument("--steps", type=positive(int, MAX_STEPS), help="timed training steps (default: 50)")
    parser.add_argument("--precision", choices=PRECISIONS, default=DEFAULTS["precision"],
                        help=f"as train.py (default: {DEFAULTS['precision']})")
    parser.add_argument("--jit-compile", choices=JIT_COMPILE, default=TrainConfig.jit_compile,
                        help=f"as train.py (default: {TrainConfig.jit_compile})")
    parser.add_argument("--gelu", choices=GELUS,
                        help="our ViTs' MLP activation, as train.py: tanh (the authors') or exact (erf, what keras-hub "
                        "and timm compute) (default: tanh)")
    parser.add_argument("--mixing", choices=MIXINGS, default=DEFAULTS["mixing"],
                        help="MixUp or CutMix each batch, as train.py --mixing (the course recipe: mixup) "
                        f"(default: {DEFAULTS['mixing']})")
    parser.add_argument("--augmentation", choices=AUGMENTATIONS, default=DEFAULTS["augmentation"],
                        help=f"ours, as train.py: in the model (default: {DEFAULTS['augmentation']}); none times ours "
                        "as the --peers are timed, without augmentation")
    parser.add_argument("--data-on-device", choices=DATA_ON_DEVICE, default=TrainConfig.data_on_device,
                        help="as train.py: JAX batches made on the accelerator (on) or sent from host memory (off) "
                        f"(default: {TrainConfig.data_on_device})")
    parser.add_argument("--devices", type=positive(int, MAX_DEVICES), default=int(TrainConfig.devices),
                        help="also time our models data-parallel on N devices (as train.py --devices; the batch is "
                        "global) and print the scaling efficiency, img/s on N / (N x img/s on one) "
                        f"(default: {TrainConfig.devices})")
    parser.add_argument("--runs", nargs="+", type=text, metavar="RUN_DIR",
                        help="report time-to-accuracy of finished runs instead")
    parser.add_argument("--target", type=fraction, default=0.9, help="validation accuracy for --runs (default: 0.9)")
    parser.add_argument("--out", type=text, help="JSON file to write (default: benchmarks/benchmark-<time>.json)")
    return parser


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    out = pathlib.Path(args.out or f"benchmarks/benchmark-{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    if out.is_dir():
        raise UserError(f"--out {out} is a folder; give the JSON file to write")
    check_writable(out.parent, option="--out")
    for run in args.runs or []:  # checked before anything slow starts
        open_finished_run(run)
    kinds = [parse_variant(variant)[0] for variant in args.model or []]
    if args.peers is not None and args.model and not {"vit", "cnn"} & set(kinds):
        raise UserError("--peers times keras-hub's and timm's ViTs at the size of each vit:PRESET measured and "
                        "timm's ResNet at each cnn:PRESET; add one, e.g. --model vit:vit_cifar_tiny")
    if args.gelu and args.model and not {"vit", "hybrid"} & set(kinds):
        raise UserError("--gelu chooses our ViTs' MLP activation; add a ViT, e.g. --model vit:vit_cifar_tiny")
    check_data_on_device(args.data_on_device, str(args.devices))

    result = {}
    if args.runs:
        backend.start()
        from harness.benchmarking.measure import environment
        from harness.benchmarking.time_to_accuracy import mean_and_spread, time_to_accuracy

        result["environment"] = environment()

        rows = [time_to_accuracy(run, args.target) for run in args.runs]
        key = f"seconds_to_val_{args.target:g}"
        print_table(rows, [("run", "run", "{}"), ("model", "model", "{}"), ("epochs", "epochs", "{}"),
                           ("test acc", "test_accuracy", "{:.2%}"), ("train s", "train_seconds", "{:,.0f}"),
                           (f"s to val {args.target:.0%}", key, "{:,.0f}"), ("img/s", "images_per_second", "{:,.0f}")])
        result["runs"] = rows
        result["summary"] = mean_and_spread(rows)
        for group in result["summary"]:
            spread = f" ± {group['test_accuracy_std']:.2%}" if group["test_accuracy_std"] is not None else ""
            print(f"{group['model']} on {group['dataset']}, {group['epochs']} epochs, {group['runs']} run(s): "
                  f"test accuracy {group['test_accuracy_mean']:.2%}{spread}, "
                  f"{group['train_seconds_mean']:.0f} s training")
    else:
        load = [round(value, 2) for value in os.getloadavg()]  # 1, 5, 15 minutes before: was the machine busy?
        rows, settings, env = speed_rows(args)
        speedups, peers, efficiency = comparisons(rows, args.devices)
        result["environment"] = {**env, "command": " ".join(sys.argv), "load_average_at_start": load}
        print(f"\n{env['device']}, {env['machine']} | backend {env['backend']} | "
              + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
        print_table(rows, COLUMNS)
        for name, speedup in speedups.items():
            print(f"{name} trains {speedup:.2f}x as fast as the straightforward baseline ViT of its size")
        for name, by_peer in peers.items():
            for peer, ratio in by_peer.items():
                print(f"{name} ÷ {peer}: {ratio['train_ratio']:.2f}x training, {ratio['eval_ratio']:.2f}x inference"
                      + ("" if ratio["params_agree"] else " (NOT the same parameter count: see the params column)"))
        for name, share in efficiency.items():
            print(f"{name} on {args.devices} devices: scaling efficiency {share:.0%} (img/s on {args.devices} "
                  f"devices / ({args.devices} x img/s on one), the same global batch)")
        result.update(settings={**settings, "devices": args.devices, "rounds": args.rounds,
                                "augmentation": args.augmentation}, results=rows,
                      speedup_over_baseline=speedups, speedup_over_peers=peers, scaling_efficiency=efficiency)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)  # whole or not at all: a full disk leaves no empty file behind
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
