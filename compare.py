"""One command: train a ViT and the CNN baseline (and the hybrid), evaluate them, and write the comparison report.

    python compare.py                                    # embedded CIFAR-10 sample, a few CPU minutes
    python compare.py --recipe course --data-dir cifar10  # full CIFAR-10, the course recipe (GPU)
    python compare.py --data-dir cifar10 --epochs 30 --vit-preset vit_cifar_tiny --cnn-preset resnet20
    python compare.py --pretrained ViT-B_16.npz --data-dir my_food --recipe course  # a fine-tuned ViT vs a CNN
    python compare.py --distill                          # adds a third run: the ViT distilled from the CNN (DeiT)
    python compare.py --hybrid                           # the paper's three families: ViT, CNN and hybrid
    python compare.py --pretrained ViT-B_16.npz --cnn-pretrained BiT-M-R50x1.npz \
        --hybrid-pretrained R50+ViT-B_16.npz --data-dir cifar10   # the paper's Table 2 comparison, fine-tuned (GPU)
"""

import datetime
import pathlib

from harness import backend
from harness.cli import MAX_BATCH, MAX_EPOCHS, OneLineErrorParser, duration, non_negative_int, positive, text
from harness.errors import cli_main
from harness.training.config import TrainConfig, resolve
from harness.training.recipes import RECIPES
from harness.training.run_dir import RunDirectory

DEFAULT_RECIPE = "smoke"  # sized for the embedded sample on a CPU (its budget: harness/training/recipes.py)


def build_parser():
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", type=text, help="as train.py (default: the embedded cifar10_sample)")
    parser.add_argument("--data-dir", type=text, help="as train.py: an image folder or CIFAR batch directory")
    parser.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                        help=f"budget recipe for both models, as train.py (default: {DEFAULT_RECIPE})")
    parser.add_argument("--pretrained", type=text, metavar="FILE.npz",
                        help="fine-tune this released ViT checkpoint with the finetune recipe instead of training the "
                        "ViT from scratch; the other models still follow --recipe")
    parser.add_argument("--hybrid", action="store_true",
                        help="also train the hybrid (ResNet stem + ViT, paper section 3.1): the report compares all "
                        "three of the paper's families")
    parser.add_argument("--hybrid-pretrained", type=text, metavar="FILE.npz",
                        help="fine-tune this released R50+ViT checkpoint as the hybrid (implies --hybrid)")
    parser.add_argument("--cnn-pretrained", type=text, metavar="FILE.npz",
                        help="fine-tune this released BiT checkpoint (BiT-M-R50x1.npz) as the CNN, with BiT's "
                        "finetune recipe")
    parser.add_argument("--distill", action="store_true",
                        help="also train the ViT with the trained CNN as its DeiT teacher (hard distillation): "
                        "the report then compares CNN, ViT and distilled ViT")
    parser.add_argument("--vit-preset", type=text, help="default: the recipe's")
    parser.add_argument("--cnn-preset", type=text, help="default: the recipe's")
    parser.add_argument("--hybrid-preset", type=text, help="default: the recipe's (implies --hybrid)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive(int, MAX_EPOCHS), help="epochs for both (default: the recipe's)")
    length.add_argument("--time-budget", type=duration, metavar="DURATION",
                        help="as train.py: each model trains for as many epochs as fit in this time (30m, 1h); "
                        "the budget is each model's, not shared")
    parser.add_argument("--batch-size", type=positive(int, MAX_BATCH), help="default: the recipe's")
    parser.add_argument("--seed", type=non_negative_int, default=TrainConfig.seed, help=f"default: {TrainConfig.seed}")
    parser.add_argument("--out", type=text, help="folder for the runs and the report (default: reports/<time>)")
    return parser


@cli_main
def main(argv=None):
    args = build_parser().parse_args(argv)
    out = pathlib.Path(args.out or f"reports/{datetime.datetime.now():%Y%m%d-%H%M%S}")

    def settings(model, name, **extra):
        shared = dict(recipe=args.recipe, preset=getattr(args, f"{model}_preset"), dataset=args.dataset,
                      data_dir=args.data_dir, seed=args.seed, epochs=args.epochs, batch_size=args.batch_size,
                      time_budget=args.time_budget)
        return resolve(TrainConfig(model=model, run_dir=str(out / name), **{**shared, **extra}))

    fine_tune = lambda path: {"recipe": "finetune", "pretrained": path} if path else {}  # noqa: E731
    configs = {"vit": settings("vit", "vit", **fine_tune(args.pretrained)),
               "cnn": settings("cnn", "cnn", **fine_tune(args.cnn_pretrained))}
    if args.hybrid or args.hybrid_pretrained or args.hybrid_preset:
        configs["hybrid"] = settings("hybrid", "hybrid", **fine_tune(args.hybrid_pretrained))
    if args.distill:  # trained last, once its teacher (the CNN) has finished
        configs["vit_distilled"] = settings("vit", "vit_distilled", teacher=str(out / "cnn"))
    for config in configs.values():  # all checked before any trains
        RunDirectory(config.run_dir).check_available(remedy="choose a new --out folder")
    backend.start()
    from harness import data
    from harness.reporting.evaluate_run import evaluate_run
    from harness.reporting.report import write_report
    from harness.training.trainer import check_pretrained, train

    for config in configs.values():  # a checkpoint that does not fit answers before anything trains
        check_pretrained(config)

    with data.loading_once():  # the models, their evaluation and the report share one loaded copy
        for model, config in configs.items():
            print(f"== training {model} {config.preset} ({config.recipe} recipe"
                  f"{', distilled from the CNN' if config.teacher else ''})")
            train(config)
            evaluate_run(config.run_dir)
        report = write_report([config.run_dir for config in configs.values()], out / "report")
    print(f"report: {report}; to hand in: {report.with_suffix('.html')} (one file, figures inside) or "
          f"{report.with_suffix('.pdf')}")


if __name__ == "__main__":
    main()
