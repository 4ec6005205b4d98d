"""The paper's data-scaling claim (section 4.2): train the ViT and the CNN on growing subsets, plot accuracy.

    python scaling.py                                   # smoke sweep on the embedded sample (CPU minutes)
    python scaling.py --recipe course --data-dir cifar10-jpeg.tar.gz --seeds 0 1 2   # the full sweep (GPU)
    python scaling.py --sizes 500 1000 2000 --seeds 0 1                            # own sizes and seeds

Running the same command again continues a killed sweep: finished runs are kept, the rest resume.
Writes OUT/scaling.png, OUT/scaling.md, OUT/scaling.json and one run directory per run in OUT/runs/.
"""

import pathlib
import sys

from harness import backend
from harness.cli import MAX_BATCH, OneLineErrorParser, non_negative_int, positive, text
from harness.errors import Interrupted, UserError, cli_main
from harness.sweeps import MODELS, SweepPlan, base_config, recipe_names
from harness.training.config import TrainConfig

DEFAULT_RECIPE = "smoke"


def build_parser():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=text, help="as train.py (default: the embedded cifar10_sample)")
    parser.add_argument("--data-dir", type=text, help="as train.py: an image folder or CIFAR batch directory")
    parser.add_argument("--recipe", choices=recipe_names(), default=DEFAULT_RECIPE,
                        help=f"budget recipe of both models; every size gets its number of steps on the largest "
                        f"size (default: {DEFAULT_RECIPE})")
    parser.add_argument("--sizes", nargs="+", type=positive(int, MAX_BATCH * 64), metavar="N",
                        help="training-set sizes (default: 1,000, 2,500, 5,000, 10,000, 25,000 and 45,000 where "
                        "there are that many, and all)")
    parser.add_argument("--seeds", nargs="+", type=non_negative_int, default=[TrainConfig.seed], metavar="SEED",
                        help=f"one run per seed and size; 3 give mean ± std bands (default: {TrainConfig.seed})")
    parser.add_argument("--vit-preset", type=text, help="default: the recipe's")
    parser.add_argument("--cnn-preset", type=text, help="default: the recipe's")
    parser.add_argument("--batch-size", type=positive(int, MAX_BATCH), help="default: the recipe's")
    parser.add_argument("--out", type=text, help="the sweep's folder (default: sweeps/<recipe>-<data>)")
    return parser


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    label = args.dataset or (pathlib.Path(args.data_dir).name.split(".")[0] if args.data_dir else "cifar10_sample")
    out = pathlib.Path(args.out or f"sweeps/{args.recipe}-{label}")
    plan = SweepPlan(sizes=tuple(sorted(set(args.sizes or ()))), seeds=tuple(sorted(set(args.seeds))),
                     recipe=args.recipe, dataset=args.dataset, data_dir=args.data_dir, vit_preset=args.vit_preset,
                     cnn_preset=args.cnn_preset, batch_size=args.batch_size)
    for model in MODELS:  # presets and settings answer before Keras loads
        base_config(plan, model)
    backend.start()
    from harness import data, sweeps
    from harness.reporting.scaling import markdown_table, write_scaling_report
    from harness.training.run_plan import training_splits
    from harness.training.trainer import resume, train

    with data.loading_once():
        config = base_config(plan, "vit")
        dataset = data.load_dataset(config.dataset, config.data_dir, config.image_size)
        available = len(training_splits(dataset, config)[0])
        if plan.sizes:
            sizes = sweeps.check_sizes(plan.sizes, available, dataset.num_classes)
        else:
            sizes = sweeps.default_sizes(available)
        plan = sweeps.schedule(sweeps.SweepPlan(**{**plan.to_dict(), "sizes": sizes}))
        for size in sizes:  # every run's settings answer before the sweep folder is written
            for model in MODELS:
                sweeps.run_config(plan, model, size, plan.seeds[0], out)
        sweeps.open_sweep(plan, out)
        print(f"sweep {out}: sizes {', '.join(f'{s:,}' for s in sizes)}; seeds {', '.join(map(str, plan.seeds))}; "
              f"{len(sizes) * len(plan.seeds) * len(MODELS)} runs", flush=True)
        try:
            sweeps.run_sweep(plan, out, train, resume)
        except Interrupted as interruption:
            raise Interrupted(f"{interruption}\nthe sweep keeps every finished run; continue it with the same "
                              f"command: python scaling.py {' '.join(sys.argv[1:])}",
                              interruption.exit_code == 143) from None
    rows = sweeps.collect(out)
    if not rows:
        raise UserError(f"{out} has no finished runs")
    report = write_scaling_report(rows, out, dataset.name)
    print(markdown_table(rows))
    print(f"scaling report: {report} (figure: {out / 'scaling.png'})")


if __name__ == "__main__":
    main()
