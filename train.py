"""Train a Vision Transformer, the hybrid or a CNN baseline and save everything into a run directory.

    python train.py --model vit --preset vit_cifar_mini --epochs 10   # embedded CIFAR-10 sample
    python train.py --model cnn --dataset cifar10                     # full CIFAR-10 via TFDS
    python train.py --model vit --data-dir path/to/images             # DIR/train/<class>, DIR/test/<class>
    python train.py --model vit --data-dir photos --image-size 96 --patch-size 8   # own images, own patches
    python train.py --model vit --recipe course --data-dir cifar10    # a budget recipe: smoke, cpu10, cpu30,
                                                                      # cpu60, course, full, finetune
    python train.py --recipe finetune --pretrained ViT-B_16.npz --data-dir my_food   # fine-tune a released ViT
    python train.py --model hybrid --preset hybrid_cifar_mini         # the paper's hybrid: ResNet stem + ViT
    python train.py --model cnn --preset bit_cifar                    # BiT's ResNet-v2 (GroupNorm, WS) from scratch
    python train.py --model cnn --recipe finetune --pretrained BiT-M-R50x1.npz --data-dir my_food  # fine-tune BiT
    python train.py --model vit --teacher runs/CNN_RUN                # DeiT: distil a finished CNN into the ViT
    python train.py --resume runs/RUN                                 # continue a killed run
"""

import argparse
import dataclasses
import shutil
import tempfile

from harness.cli import (
    MAX_BATCH,
    MAX_EPOCHS,
    MAX_IMAGE_SIZE,
    MAX_STEPS,
    OneLineErrorParser,
    device_count,
    duration,
    fraction,
    non_negative,
    non_negative_int,
    positive,
    text,
)
from harness.data import DATASETS, DEFAULT_DATASET
from harness.errors import cli_main
from harness.models import MODEL_FAMILIES
from harness.training import devices
from harness.training.config import (
    AUGMENTATIONS,
    DATA_ON_DEVICE,
    DEFAULTS,
    DISTILLATIONS,
    GELUS,
    JIT_COMPILE,
    KEEP,
    MIXINGS,
    OPTIMIZERS,
    PRECISIONS,
    TrainConfig,
    resolve,
)
from harness.training.recipes import RECIPES
from harness.training.run_dir import DEFAULT_RUNS_FOLDER, RunDirectory, check_writable, open_unfinished_run


def build_parser():
    presets = {name: ", ".join(family.presets) for name, family in MODEL_FAMILIES.items()}
    parser = OneLineErrorParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Defaults marked 'recipe' come from --recipe if given, else from --model: " + "; ".join(
            f"{m}: preset {f.default_preset}" for m, f in MODEL_FAMILIES.items()) + ". See README.md.",
    )
    data = parser.add_argument_group("data")
    data.add_argument(
        "--dataset", type=text, help=f"{', '.join(DATASETS)} (default: {DEFAULT_DATASET}, embedded, offline); "
        "cifar10/cifar100 download with TensorFlow Datasets; with --data-dir, only a label"
    )
    data.add_argument(
        "--data-dir", type=text, help="local data instead of a download: an image folder DIR/train/<class>/*, "
        "DIR/test/<class>/* (any size, resized), the CIFAR-10/100 python batch files, or a .tar.gz/.zip of either"
    )
    data.add_argument("--image-size", type=positive(int, MAX_IMAGE_SIZE),
                      help="input size in pixels (default: the preset's)")
    data.add_argument("--val-fraction", type=fraction, default=TrainConfig.val_fraction,
                      help=f"share of the training split held out for validation (default: {TrainConfig.val_fraction})")
    subset = data.add_mutually_exclusive_group()
    subset.add_argument("--train-size", type=positive(int, MAX_BATCH * 64),
                        help="train on this many images: a class-stratified subset, nested across sizes for one "
                        "seed; the validation and test splits stay the same (default: all)")
    subset.add_argument("--train-fraction", type=positive(float, 1.0),
                        help="... or on this share of the training split (default: 1)")

    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=list(MODEL_FAMILIES), default=TrainConfig.model,
                       help="which model to train: the ViT, the hybrid (ResNet stem + ViT) or a CNN "
                            f"(default: {TrainConfig.model})")
    model.add_argument("--preset", type=text,
                       help=f"model size; vit: {presets['vit']}; hybrid: {presets['hybrid']}; cnn: {presets['cnn']} "
                       "(default: recipe)")
    for flag, dest, meaning in (("--patch-size", "patch_size", "patch size P"),
                                ("--hidden-dim", "hidden_dim", "hidden size D"),
                                ("--depth", "num_layers", "number of encoder blocks L"),
                                ("--heads", "num_heads", "attention heads k (must divide D)"),
                                ("--mlp-dim", "mlp_dim", "MLP size M")):
        model.add_argument(flag, dest=dest, type=positive(int, 1 << 16),
                           help=f"ViT and hybrid {meaning} (default: the preset's)")
    model.add_argument("--pretrained", type=text, metavar="FILE",
                       help="start from a released checkpoint of the --preset's size: ViT (ViT-B_16.npz), hybrid "
                       "(R50+ViT-B_16.npz), BiT (BiT-M-R50x1.npz, --model cnn), or a timm ViT "
                       "(model.safetensors); its head is replaced by a new zero one (docs/pretrained.md)")
    model.add_argument("--gelu", choices=GELUS,
                       help="ViT and hybrid MLP activation: tanh (the authors' approximation) or exact (erf, as "
                       "timm's) (default: exact with a timm --pretrained file, else tanh)")
    model.add_argument("--freeze-backbone", action="store_true",
                       help="with --pretrained: train only the new head (feature extraction)")
    model.add_argument("--teacher", type=text, metavar="RUN_DIR",
                       help="DeiT distillation: a finished run (e.g. the CNN) teaches the ViT's distillation token")
    model.add_argument("--distillation", choices=DISTILLATIONS,
                       help="with --teacher: hard (the teacher's labels; DeiT's default) or soft (its softened "
                       "probabilities)")
    model.add_argument("--distillation-alpha", type=fraction,
                       help="weight of the teacher's term (default: hard 0.5, soft 0.1, as DeiT)")
    model.add_argument("--distillation-temperature", type=positive(float, 100),
                       help="soft distillation's temperature (default: 3, as DeiT)")
    model.add_argument("--drop-path-rate", type=fraction,
                       help="ViT stochastic depth of the last block, rising linearly from 0 (default: recipe, else 0)")

    training = parser.add_argument_group("training")
    training.add_argument(
        "--recipe", choices=list(RECIPES),
        help="budget recipe: " + "; ".join(f"{name}: {recipe['budget']}" for name, recipe in RECIPES.items()),
    )
    length = training.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=positive(int, MAX_EPOCHS),
                        help=f"passes over the training split (default: recipe, else {DEFAULTS['epochs']})")
    length.add_argument("--time-budget", type=duration, metavar="DURATION",
                        help="train for as many epochs as fit in this much time (30m, 1h, 90s), measured on this "
                        "machine before the first epoch; the learning-rate schedule ends with the last epoch "
                        "(docs/training.md, 'Time budgets')")
    length.add_argument("--steps", type=positive(int, MAX_STEPS),
                        help="optimisation steps instead of epochs (the epochs follow from the data; the finetune "
                        "recipe's 500)")
    training.add_argument("--batch-size", type=positive(int, MAX_BATCH),
                          help=f"images per step (default: recipe, else {DEFAULTS['batch_size']})")
    training.add_argument("--learning-rate", type=positive(float),
                          help="peak learning rate after warmup (default: recipe, vit 1e-3 AdamW, cnn 0.1 SGD)")
    training.add_argument("--weight-decay", type=non_negative, help="decoupled weight decay (default: recipe)")
    training.add_argument("--optimizer", choices=OPTIMIZERS,
                          help="sgd: Nesterov momentum 0.9; momentum: plain momentum 0.9 (default: recipe, vit adamw, "
                          "cnn sgd, finetune momentum)")
    training.add_argument("--warmup-epochs", type=non_negative,
                          help="linear warmup before cosine decay (default: recipe, at most a fifth of --epochs)")
    training.add_argument("--label-smoothing", type=fraction, help=f"default: {DEFAULTS['label_smoothing']}")
    training.add_argument("--gradient-clip-norm", type=positive(float),
                          help="clip the global gradient norm to this (default: recipe, else none; finetune: 1)")
    training.add_argument("--augmentation", choices=AUGMENTATIONS,
                          help="per image, on the accelerator; crop_flip: random 4-pixel shift and horizontal flip "
                          "(default); shift2_flip: random 2-pixel shift, edges reflected, and the flip (airbench's, "
                          "for short runs); randaugment: crop_flip, then Keras' RandAugment (2 operations, strength "
                          "0.5) and RandomErasing (a quarter of the images), as DeiT")
    training.add_argument("--mixing", choices=MIXINGS,
                          help="MixUp or CutMix of each batch (default: recipe, else none)")
    training.add_argument("--mixing-alpha", type=positive(float),
                          help=f"MixUp's Beta(alpha, alpha); CutMix's upper bound of alpha (default: recipe, else "
                          f"{DEFAULTS['mixing_alpha']})")
    training.add_argument("--tta", dest="test_time_augmentation", action="store_true", default=None,
                          help="after training, also test with test-time augmentation (the mean logits of each "
                          "image, its mirror and 1-pixel shifts), reported beside the plain test accuracy "
                          "(default: recipe, else no; the CPU recipes' CNN has it)")
    training.add_argument("--keep", choices=KEEP,
                          help="which weights model.keras gets: the last epoch's, or those of the best validation "
                          "accuracy (default: last; best with --patience)")
    training.add_argument("--patience", type=positive(int, MAX_EPOCHS),
                          help="stop after this many epochs without a higher validation accuracy (default: never)")
    training.add_argument("--seed", type=non_negative_int, default=TrainConfig.seed,
                          help=f"random seed (default: {TrainConfig.seed})")
    training.add_argument("--precision", choices=PRECISIONS,
                          help="auto: mixed_bfloat16 on Ampere+ GPUs, mixed_float16 on older ones, float32 on CPU; "
                               "fastest: auto, but mixed_bfloat16 on CPUs with bfloat16 instructions (default: "
                               f"recipe, else {DEFAULTS['precision']}; the CPU recipes use fastest)")
    training.add_argument("--jit-compile", choices=JIT_COMPILE, default=TrainConfig.jit_compile,
                          help="XLA (TensorFlow) or jit (JAX) compilation; auto: on, except TensorFlow on a CPU "
                               f"(default: {TrainConfig.jit_compile})")
    training.add_argument("--devices", type=device_count, default=TrainConfig.devices,
                          help="data-parallel training on N devices, or all: keras.distribution on JAX, "
                          "tf.distribute.MirroredStrategy on TensorFlow. --batch-size stays the global batch, split "
                          "evenly across them, so the learning rate needs no change; if you raise --batch-size, "
                          "the linear rule (Goyal et al. 2017) raises --learning-rate by the same factor, which you "
                          "pass yourself. Without a GPU, N virtual CPU devices (no faster) "
                          f"(default: {TrainConfig.devices})")
    training.add_argument("--data-on-device", choices=DATA_ON_DEVICE, default=TrainConfig.data_on_device,
                          help="JAX: put the training split on the accelerator once and gather, convert and mix each "
                          "batch there, so that no step waits for the host; auto: on a GPU with one device, when "
                          f"the split's pixels take at most 4 GiB (default: {TrainConfig.data_on_device})")
    training.add_argument("--multi-host", action="store_true",
                          help="JAX: join the other processes of a multi-host job (one per host, started by a "
                          "scheduler such as SLURM's srun) with jax.distributed, and train on every device of the job")
    training.add_argument("--join-timeout", type=duration, default=60.0, metavar="DURATION",
                          help="--multi-host: how long to wait for the job's coordinator and other processes, like "
                          "90s or 5m (default: 60s)")
    training.add_argument("--dry-run", action="store_true",
                          help="print the devices and mesh the run would train on, then stop (never joins a "
                          "multi-host job: it shows this process's own devices)")

    output = parser.add_argument_group("output")
    output.add_argument("--run-dir", type=text,
                        help=f"where to write the run (default: {DEFAULT_RUNS_FOLDER}/<settings>-<time>)")
    output.add_argument("--overwrite", action="store_true", help="replace a run already in --run-dir")
    output.add_argument("--resume", metavar="RUN_DIR", type=text,
                        help="continue a killed run from its last finished epoch, with the settings it started with")
    return parser


# How this process starts, not what it trains: allowed with --resume, and not part of the run's settings.
LAUNCH_OPTIONS = ("resume", "multi_host", "join_timeout", "dry_run")


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume:
        others = sorted(f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                        if k not in LAUNCH_OPTIONS and v != parser.get_default(k))
        if others:
            parser.error(f"--resume uses the run's own settings; drop {', '.join(others)}")
    return args


@cli_main(resumable=True)
def main(argv=None):
    args = parse_args(argv)
    # Everything that can be checked without Keras is checked first: mistakes answer in a second.
    if args.resume:
        _, config = open_unfinished_run(args.resume)
    else:
        config = resolve(TrainConfig(**{k: v for k, v in vars(args).items()
                                        if k not in ("overwrite", *LAUNCH_OPTIONS)}))
        if config.run_dir:
            RunDirectory(config.run_dir).check_available(args.overwrite)
        else:
            check_writable(DEFAULT_RUNS_FOLDER)
    # Keras, with virtual CPU devices where N are asked for without a GPU, and joined to a multi-host job.
    devices.start(config.devices, multi_host=args.multi_host, join_timeout=args.join_timeout,
                  join=not args.dry_run)
    if args.dry_run:
        placement = devices.resolve_placement(config.devices, config.batch_size, config.batch_size)
        print(f"would train on {placement.describe()}; global batch {config.batch_size}")
        return
    from harness.training.trainer import resume, train

    scratch = None
    if devices.process_index_and_count()[0] > 0:  # every process trains; only the first writes the run directory
        scratch = tempfile.mkdtemp(prefix="vit-process-")
        if args.resume:
            args.resume = shutil.copytree(args.resume, scratch, dirs_exist_ok=True,
                                          ignore=shutil.ignore_patterns(".lock"))  # process 0's, not ours
        else:
            config = dataclasses.replace(config, run_dir=scratch)
    try:
        if args.resume:
            resume(args.resume)
        else:
            train(config, overwrite=args.overwrite)
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
