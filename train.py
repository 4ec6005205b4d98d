"""Train a Vision Transformer or the CNN baseline and save everything into a run directory.

    python train.py --model vit --preset vit_cifar_mini --epochs 10   # embedded CIFAR-10 sample
    python train.py --model cnn --dataset cifar10                     # full CIFAR-10 via TFDS
    python train.py --model vit --data-dir path/to/images             # DIR/train/<class>, DIR/test/<class>
    python train.py --model vit --recipe course --data-dir cifar10    # a budget recipe (smoke, course, full)
    python train.py --resume runs/RUN                                 # continue a killed run
"""

import argparse

from harness import quiet

quiet.silence_tensorflow_startup()

from harness.cli import OneLineErrorParser, fraction, non_negative, positive  # noqa: E402
from harness.data import DATASETS, DEFAULT_DATASET  # noqa: E402
from harness.errors import UserError, cli_main  # noqa: E402
from harness.models import MODEL_FAMILIES  # noqa: E402
from harness.training.augment import AUGMENTATIONS, MIXINGS  # noqa: E402
from harness.training.config import DEFAULTS, JIT_COMPILE, OPTIMIZERS, PRECISIONS, TrainConfig  # noqa: E402
from harness.training.recipes import RECIPES  # noqa: E402


def parse_args(argv=None):
    presets = {name: ", ".join(family.presets) for name, family in MODEL_FAMILIES.items()}
    parser = OneLineErrorParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Defaults marked 'recipe' come from --recipe if given, else from --model: " + "; ".join(
            f"{m}: preset {f.default_preset}" for m, f in MODEL_FAMILIES.items()) + ". See README.md.",
    )
    parser.add_argument("--model", choices=list(MODEL_FAMILIES), default="vit", help="which model to train (default: vit)")
    parser.add_argument(
        "--recipe", choices=list(RECIPES),
        help="budget recipe: " + "; ".join(f"{name}: {recipe['budget']}" for name, recipe in RECIPES.items()),
    )
    parser.add_argument(
        "--preset", help=f"model size; vit: {presets['vit']}; cnn: {presets['cnn']} (default: recipe)"
    )
    parser.add_argument(
        "--dataset", help=f"{', '.join(DATASETS)} (default: {DEFAULT_DATASET}, embedded, offline); "
        "cifar10/cifar100 download with TensorFlow Datasets; with --data-dir, only a label"
    )
    parser.add_argument(
        "--data-dir", help="local data instead of a download: an image folder DIR/train/<class>/*, "
        "DIR/test/<class>/* (any size, resized), or the CIFAR-10/100 python batch files"
    )
    parser.add_argument("--image-size", type=positive(int), help="input size in pixels (default: the preset's)")
    parser.add_argument("--epochs", type=positive(int),
                        help=f"passes over the training split (default: recipe, else {DEFAULTS['epochs']})")
    parser.add_argument("--batch-size", type=positive(int),
                        help=f"images per step (default: recipe, else {DEFAULTS['batch_size']})")
    parser.add_argument(
        "--learning-rate", type=positive(float),
        help="peak learning rate after warmup (default: recipe, vit 1e-3 AdamW, cnn 0.1 SGD)",
    )
    parser.add_argument("--weight-decay", type=non_negative, help="decoupled weight decay (default: recipe)")
    parser.add_argument("--optimizer", choices=OPTIMIZERS, help="default: recipe (vit adamw, cnn sgd)")
    parser.add_argument(
        "--warmup-epochs", type=non_negative,
        help="linear warmup before cosine decay (default: recipe, at most a fifth of --epochs)",
    )
    parser.add_argument("--label-smoothing", type=fraction, help=f"default: {DEFAULTS['label_smoothing']}")
    parser.add_argument("--augmentation", choices=AUGMENTATIONS,
                        help="per image, on the accelerator; crop_flip: random 4-pixel shift and horizontal flip (default)")
    parser.add_argument("--mixing", choices=MIXINGS, help="MixUp or CutMix of each batch (default: recipe, else none)")
    parser.add_argument("--mixing-alpha", type=positive(float),
                        help=f"MixUp's Beta(alpha, alpha); CutMix's upper bound of alpha (default: recipe, else "
                        f"{DEFAULTS['mixing_alpha']})")
    parser.add_argument("--drop-path-rate", type=fraction,
                        help="ViT stochastic depth of the last block, rising linearly from 0 (default: recipe, else 0)")
    parser.add_argument("--val-fraction", type=fraction, default=0.1,
                        help="share of the training split held out for validation (default: 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--precision", choices=PRECISIONS, default="auto",
                        help="auto: mixed_bfloat16 on Ampere+ GPUs, mixed_float16 on older ones, float32 on CPU")
    parser.add_argument("--jit-compile", choices=JIT_COMPILE, default="auto",
                        help="XLA (TensorFlow) or jit (JAX) compilation; auto: on, except TensorFlow on a CPU")
    parser.add_argument("--run-dir", help="where to write the run (default: runs/<recipe>-<timestamp>)")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --run-dir")
    parser.add_argument("--resume", metavar="RUN_DIR",
                        help="continue a killed run from its last finished epoch, with the settings it started with")
    args = parser.parse_args(argv)
    if args.resume:
        others = sorted(f"--{k.replace('_', '-')}" for k, v in vars(args).items() if k != "resume" and v != parser.get_default(k))
        if others:
            parser.error(f"--resume uses the run's own settings; drop {', '.join(others)}")
        return args
    family = MODEL_FAMILIES[args.model]
    if args.preset is not None and args.preset not in family.presets:
        parser.error(f"unknown {args.model} preset {args.preset!r}; choose one of: {presets[args.model]}")
    return args


@cli_main
def main(argv=None):
    args = parse_args(argv)
    options = {k: v for k, v in vars(args).items() if k not in ("overwrite", "resume")}
    from harness.training.trainer import resume, train  # imported late: it loads Keras and TensorFlow

    try:
        if args.resume:
            resume(args.resume)
        else:
            train(TrainConfig(**options), overwrite=args.overwrite)
    except ValueError as error:  # from model builders, e.g. an image size the patch size does not divide
        raise UserError(str(error)) from None


if __name__ == "__main__":
    main()
