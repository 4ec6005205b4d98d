"""One command: train a ViT and the CNN baseline, evaluate both, and write the comparison report.

    python compare.py                                    # embedded CIFAR-10 sample, a few CPU minutes
    python compare.py --recipe course --data-dir cifar10  # full CIFAR-10, the course recipe (GPU)
    python compare.py --data-dir cifar10 --epochs 30 --vit-preset vit_cifar_tiny --cnn-preset resnet20
"""

import datetime
import pathlib

from harness import quiet

quiet.silence_tensorflow_startup()

from harness.cli import OneLineErrorParser, positive  # noqa: E402
from harness.errors import UserError, cli_main  # noqa: E402
from harness.models import MODEL_FAMILIES  # noqa: E402
from harness.training.config import TrainConfig  # noqa: E402
from harness.training.recipes import RECIPES  # noqa: E402

DEFAULT_RECIPE = "smoke"  # sized for the embedded sample on a CPU (its budget: harness/training/recipes.py)


@cli_main
def main(argv=None):
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="as train.py (default: the embedded cifar10_sample)")
    parser.add_argument("--data-dir", help="as train.py: an image folder or CIFAR batch directory")
    parser.add_argument("--recipe", choices=list(RECIPES), default=DEFAULT_RECIPE,
                        help=f"budget recipe for both models, as train.py (default: {DEFAULT_RECIPE})")
    parser.add_argument("--vit-preset", help="default: the recipe's")
    parser.add_argument("--cnn-preset", help="default: the recipe's")
    parser.add_argument("--epochs", type=positive(int), help="epochs for both (default: the recipe's)")
    parser.add_argument("--batch-size", type=positive(int), help="default: the recipe's")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--out", help="folder for both runs and the report (default: reports/<time>)")
    args = parser.parse_args(argv)
    for model, preset in (("vit", args.vit_preset), ("cnn", args.cnn_preset)):
        if preset is not None and preset not in MODEL_FAMILIES[model].presets:
            raise UserError(f"unknown {model} preset {preset!r}; choose one of: {', '.join(MODEL_FAMILIES[model].presets)}")
    out = pathlib.Path(args.out or f"reports/{datetime.datetime.now():%Y%m%d-%H%M%S}")
    from harness import data  # loads Keras
    from harness.reporting.report import write_report

    with data.loading_once():  # both models, their evaluation and the report share one loaded copy
        run_dirs = [train_and_evaluate(model, preset, args, out) for model, preset in
                    (("vit", args.vit_preset), ("cnn", args.cnn_preset))]
        report = write_report(run_dirs, out / "report")
    print(f"report: {report}")


def train_and_evaluate(model, preset, args, out):
    from harness.reporting.evaluate_run import evaluate_run
    from harness.training.trainer import train

    config = TrainConfig(
        model=model, recipe=args.recipe, preset=preset, dataset=args.dataset, data_dir=args.data_dir,
        seed=args.seed, epochs=args.epochs, batch_size=args.batch_size, run_dir=str(out / model),
    )
    print(f"== training {model} {preset or RECIPES[args.recipe][model]['preset']} ({args.recipe} recipe)")
    train(config)
    evaluate_run(out / model)
    return out / model


if __name__ == "__main__":
    main()
