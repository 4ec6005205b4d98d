"""One command: train a ViT and the CNN baseline, evaluate both, and write the comparison report.

    python compare.py                                    # embedded CIFAR-10 sample, a few CPU minutes
    python compare.py --data-dir cifar10 --epochs 30 --vit-preset vit_cifar_tiny --cnn-preset resnet20
"""

import datetime
import pathlib

from harness import quiet

quiet.silence_tensorflow_startup()

from harness.cli import OneLineErrorParser, positive  # noqa: E402
from harness.config import TrainConfig  # noqa: E402
from harness.errors import UserError, cli_main  # noqa: E402
from harness.models import MODEL_FAMILIES  # noqa: E402

# Sized for the embedded sample on a CPU: both finish in about four minutes on two cores.
QUICK = dict(vit_preset="vit_cifar_mini", cnn_preset="resnet8", vit_epochs=8, cnn_epochs=10)


@cli_main
def main(argv=None):
    parser = OneLineErrorParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", help="as train.py (default: the embedded cifar10_sample)")
    parser.add_argument("--data-dir", help="as train.py: an image folder or CIFAR batch directory")
    parser.add_argument("--vit-preset", default=QUICK["vit_preset"], help=f"default: {QUICK['vit_preset']}")
    parser.add_argument("--cnn-preset", default=QUICK["cnn_preset"], help=f"default: {QUICK['cnn_preset']}")
    parser.add_argument("--epochs", type=positive(int),
                        help=f"epochs for both (default: vit {QUICK['vit_epochs']}, cnn {QUICK['cnn_epochs']})")
    parser.add_argument("--batch-size", type=positive(int), default=128, help="default: 128")
    parser.add_argument("--seed", type=int, default=0, help="default: 0")
    parser.add_argument("--out", help="folder for both runs and the report (default: reports/<time>)")
    args = parser.parse_args(argv)
    for model, preset in (("vit", args.vit_preset), ("cnn", args.cnn_preset)):
        if preset not in MODEL_FAMILIES[model].presets:
            raise UserError(f"unknown {model} preset {preset!r}; choose one of: {', '.join(MODEL_FAMILIES[model].presets)}")
    out = pathlib.Path(args.out or f"reports/{datetime.datetime.now():%Y%m%d-%H%M%S}")
    from harness.evaluate_run import evaluate_run  # loads Keras
    from harness.report import write_report
    from harness.trainer import train

    run_dirs = []
    for model, preset in (("vit", args.vit_preset), ("cnn", args.cnn_preset)):
        print(f"== training {model} {preset}")
        config = TrainConfig(
            model=model, preset=preset, dataset=args.dataset, data_dir=args.data_dir, seed=args.seed,
            epochs=args.epochs or QUICK[f"{model}_epochs"], batch_size=args.batch_size, run_dir=str(out / model),
        )
        train(config)
        evaluate_run(out / model)
        run_dirs.append(out / model)
    report = write_report(run_dirs, out / "report")
    print(f"report: {report}")


if __name__ == "__main__":
    main()
