"""Measure training and inference speed: img/s, FLOPs, model FLOPs utilisation, memory; print a table, write JSON.

    python benchmark.py --quick                                   # under a minute on 2 CPU cores
    python benchmark.py --model vit:vit_cifar_tiny --side-by-side --batch-size 512 --steps 100
    python benchmark.py --model cnn:resnet20 --precision float32 --jit-compile off
    python benchmark.py --runs runs/A runs/B --target 0.93         # time-to-accuracy, mean ± std over seeds
"""

import datetime
import json
import os
import pathlib
import platform
import sys

from harness import quiet

quiet.silence_tensorflow_startup()

from harness.cli import OneLineErrorParser, fraction, positive  # noqa: E402
from harness.config import JIT_COMPILE  # noqa: E402
from harness.errors import UserError, cli_main  # noqa: E402
from harness.precision import PRECISIONS  # noqa: E402

QUICK = dict(models=["vit:vit_cifar_mini", "cnn:resnet8"], batch_size=64, warmup_steps=2, steps=6)
COLUMNS = [  # (heading, key, format)
    ("model", "name", "{}"), ("params", "params", "{:,}"), ("batch", "batch_size", "{}"),
    ("precision", "precision", "{}"), ("jit", "jit_compile", "{}"), ("train img/s", "train_images_per_second", "{:,.0f}"),
    ("eval img/s", "eval_images_per_second", "{:,.0f}"), ("GFLOPs/img", "forward_gflops_per_image", "{:.3f}"),
    ("MFU", "mfu", "{:.1%}"), ("accel. peak MiB", "accelerator_peak_mib", "{:,.0f}"),
    ("host RSS MiB", "host_peak_rss_mib", "{:,.0f}"), ("input pipeline", "input_pipeline", "{}"),
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


def environment():
    import keras

    from bench.measure import device_name
    from harness.manifest import library_versions

    return {"device": device_name(), "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
            "backend": keras.backend.backend(), "versions": library_versions(),
            "date": datetime.datetime.now().isoformat(timespec="seconds"), "command": " ".join(sys.argv)}


def speed_rows(args):
    from bench.run import parse_variant, run_variant

    settings = {key: getattr(args, key) or QUICK[key] if args.quick else getattr(args, key) or default
                for key, default in (("batch_size", 256), ("warmup_steps", 5), ("steps", 50))}
    variants = list(args.model or (QUICK["models"] if args.quick else ["vit:vit_cifar_tiny"]))
    try:
        parsed = [parse_variant(text) for text in variants]
    except ValueError as error:
        raise UserError(str(error)) from None
    if args.side_by_side or args.quick:
        parsed += [("baseline", preset) for kind, preset in parsed if kind == "vit"]
    rows = []
    for kind, preset in parsed:
        print(f"measuring {kind}:{preset} ...", flush=True)
        try:
            measurement = run_variant(kind, preset, settings["batch_size"], args.precision, args.jit_compile,
                                      settings["warmup_steps"], settings["steps"])
        except ValueError as error:
            raise UserError(str(error)) from None
        rows.append(measurement.__dict__)
    speedups = {}
    for row in rows:
        if row["name"].startswith("baseline:"):
            ours = next(r for r in rows if r["name"] == "vit:" + row["name"].split(":", 1)[1])
            speedups[ours["name"]] = round(ours["train_images_per_second"] / row["train_images_per_second"], 2)
    return rows, speedups, settings


@cli_main
def main(argv=None):
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", metavar="KIND:PRESET",
                        help="vit:PRESET, cnn:PRESET or baseline:PRESET; repeatable (default: vit:vit_cifar_tiny)")
    parser.add_argument("--quick", action="store_true",
                        help=f"small models and few steps: {', '.join(QUICK['models'])} and the baseline ViT")
    parser.add_argument("--side-by-side", action="store_true",
                        help="also time the straightforward Keras ViT (stock MultiHeadAttention, float32, no XLA, "
                        "tf.data augmentation) of each vit preset")
    parser.add_argument("--batch-size", type=positive(int), help="default: 256 (quick: 64)")
    parser.add_argument("--warmup-steps", type=positive(int), help="untimed steps first, compilation included (default: 5)")
    parser.add_argument("--steps", type=positive(int), help="timed training steps (default: 50)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="as train.py (default: auto)")
    parser.add_argument("--jit-compile", choices=JIT_COMPILE, default="auto", help="as train.py (default: auto)")
    parser.add_argument("--runs", nargs="+", metavar="RUN_DIR", help="report time-to-accuracy of finished runs instead")
    parser.add_argument("--target", type=fraction, default=0.9, help="validation accuracy for --runs (default: 0.9)")
    parser.add_argument("--out", help="JSON file to write (default: benchmarks/benchmark-<time>.json)")
    args = parser.parse_args(argv)

    result = {"environment": environment()}
    if args.runs:
        from bench.time_to_accuracy import mean_and_spread, time_to_accuracy

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
                  f"test accuracy {group['test_accuracy_mean']:.2%}{spread}, {group['train_seconds_mean']:.0f} s training")
    else:
        rows, speedups, settings = speed_rows(args)
        env = result["environment"]
        print(f"\n{env['device']} | backend {env['backend']} | " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
        print_table(rows, COLUMNS)
        for name, speedup in speedups.items():
            print(f"{name} trains {speedup:.2f}x as fast as the straightforward baseline ViT of its size")
        result.update(settings=settings, results=rows, speedup_over_baseline=speedups)
    out = pathlib.Path(args.out or f"benchmarks/benchmark-{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
