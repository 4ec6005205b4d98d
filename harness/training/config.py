"""Every setting of a training run, where its defaults come from, and how they are checked.

A setting left as None is filled, in this order, from: the budget recipe (`--recipe`, see
`harness.training.recipes`), the model family's defaults (`FAMILY_DEFAULTS`), then `DEFAULTS`.
Plain Python: the command lines check a whole config before Keras loads.
"""

import dataclasses
import math
import pathlib
from typing import Optional

from harness import backend
from harness.errors import UserError
from harness.models import MODEL_FAMILIES
from harness.training.recipes import RECIPES
from vit_tf.weight_sources import is_keras_hub_preset, uses_exact_gelu

DEFAULTS = dict(
    epochs=10, batch_size=128, label_smoothing=0.1, augmentation="crop_flip", mixing="none", mixing_alpha=1.0,
    drop_path_rate=0.0, test_time_augmentation=False, precision="auto",
)
# Images per prediction batch when a finished run is evaluated or reported (evaluate.py, visualize.py, the reports);
# training evaluates with its own --batch-size.
EVALUATION_BATCH_SIZE = 256
# DeiT-style: AdamW, weight decay 0.05 (decoupled: Keras multiplies it by the learning rate).
VIT_DEFAULTS = dict(optimizer="adamw", learning_rate=1e-3, weight_decay=0.05, warmup_epochs=5.0)
FAMILY_DEFAULTS = {
    "vit": VIT_DEFAULTS,
    "hybrid": VIT_DEFAULTS,  # the hybrid trains as the ViT does (the paper uses one recipe for both)
    # The classic CIFAR ResNet recipe: SGD with Nesterov momentum 0.9, lr 0.1 at batch 128. Coupled
    # L2 of 5e-4 with momentum 0.9 shrinks weights like decoupled decay of 5e-3 does.
    "cnn": dict(optimizer="sgd", learning_rate=0.1, weight_decay=5e-3, warmup_epochs=1.0),
}
OPTIMIZERS = ("adamw", "sgd", "momentum")  # sgd: Nesterov momentum 0.9; momentum: plain momentum 0.9
AUGMENTATIONS = ("crop_flip", "shift2_flip", "randaugment", "none")  # per image, in the model (training.augment)
MIXINGS = ("none", "mixup", "cutmix")  # per batch, in the input pipeline
KEEP = ("last", "best")  # which epoch's weights become model.keras
DISTILLATIONS = ("hard", "soft")
GELUS = ("tanh", "exact")  # the ViT MLP's GELU: the authors' tanh approximation, or the erf form of timm's weights
DISTILLATION_DEFAULTS = {"hard": dict(distillation_alpha=0.5, distillation_temperature=1.0),
                         "soft": dict(distillation_alpha=0.1, distillation_temperature=3.0)}
JIT_COMPILE = ("auto", "on", "off")
DATA_ON_DEVICE = ("auto", "on", "off")  # the training split as tensors on the accelerator (JAX, one device)
# auto: mixed precision on a GPU, float32 on a CPU; fastest: auto, but mixed bfloat16 on a CPU that multiplies
# bfloat16 natively (harness.training.precision.resolve_precision)
PRECISIONS = ("auto", "fastest", "float32", "mixed_float16", "mixed_bfloat16")
WARMUP_FRACTION_LIMIT = 0.2  # a default warmup never takes more than a fifth of a short run (capped_warmup)
# ViT architecture columns a run may change (train.py --patch-size, --hidden-dim, --depth, ...).
VIT_ARCHITECTURE = ("patch_size", "hidden_dim", "num_layers", "num_heads", "mlp_dim")


@dataclasses.dataclass
class TrainConfig:
    model: str = "vit"  # "vit", "hybrid" or "cnn" (harness.models.MODEL_FAMILIES)
    recipe: Optional[str] = None  # a key of harness.training.recipes.RECIPES: smoke, course, full
    preset: Optional[str] = None  # a key of the family's PRESETS; None: the recipe's or family default
    dataset: Optional[str] = None  # cifar10_sample (default), cifar10, cifar100, or a label for --data-dir
    data_dir: Optional[str] = None  # an image folder or CIFAR batch directory
    image_size: Optional[int] = None  # None: the preset's size
    train_size: Optional[int] = None  # train on a nested, class-stratified subset of this many images
    train_fraction: Optional[float] = None  # ... or of this share of the training split (after validation)
    patch_size: Optional[int] = None  # ViT architecture: None keeps the preset's column
    hidden_dim: Optional[int] = None
    num_layers: Optional[int] = None
    num_heads: Optional[int] = None
    mlp_dim: Optional[int] = None
    pretrained: Optional[str] = None  # a checkpoint to start from: the authors' .npz (ViT, R50+ViT, BiT) or timm's
    gelu: Optional[str] = None  # ViT and hybrid: "tanh" or "exact"; None: exact for a timm --pretrained, else tanh
    freeze_backbone: bool = False  # train the head only (feature extraction); needs `pretrained`
    teacher: Optional[str] = None  # a finished run whose model teaches the ViT's distillation token (DeiT)
    distillation: Optional[str] = None  # "hard" (DeiT's default) or "soft"; with a teacher
    distillation_alpha: Optional[float] = None  # weight of the teacher's term: hard 0.5, soft 0.1 (DeiT)
    distillation_temperature: Optional[float] = None  # soft distillation's T: 3 (DeiT)
    epochs: Optional[int] = None
    steps: Optional[int] = None  # train this many steps instead; the epochs follow (the last may stop part-way)
    time_budget: Optional[float] = None  # seconds: as many steps as fit (harness.training.time_budget)
    # a recipe's answer to a machine too slow for its preset: where the time budget gives the preset fewer epochs
    # than `needed_epochs`, the run trains `smaller_preset` (of the same family) instead (trainer.plan_time_budget)
    smaller_preset: Optional[str] = None
    needed_epochs: Optional[float] = None
    warmup_steps: Optional[int] = None  # with `steps`: the warmup, in steps
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None  # peak, after warmup
    weight_decay: Optional[float] = None  # decoupled; never on biases, norms, class token, E_pos
    optimizer: Optional[str] = None  # "adamw" or "sgd"
    warmup_epochs: Optional[float] = None  # linear warmup, then cosine decay to 0
    label_smoothing: Optional[float] = None
    gradient_clip_norm: Optional[float] = None  # clip the global gradient norm to this (None: no clipping)
    augmentation: Optional[str] = None  # per image, inside the training model: one of AUGMENTATIONS
    mixing: Optional[str] = None  # per batch, in the input pipeline: none, mixup, cutmix
    mixing_alpha: Optional[float] = None
    drop_path_rate: Optional[float] = None  # stochastic depth of the last ViT block (ViT only)
    test_time_augmentation: Optional[bool] = None  # also test with flips and shifts (harness.training.test_time)
    keep: Optional[str] = None  # "last" epoch or "best" validation accuracy; None: last, or best with patience
    patience: Optional[int] = None  # stop after this many epochs without a higher validation accuracy
    val_fraction: float = 0.1  # carved off the training split; the test split stays untouched
    seed: int = 0
    precision: Optional[str] = None  # one of PRECISIONS; None: the recipe's, else auto
    jit_compile: str = "auto"  # XLA (TensorFlow) / jit (JAX); auto: Keras' choice, on except TensorFlow on CPU
    devices: str = "1"  # data parallelism: "all" or a number of devices; batch_size is the global batch
    data_on_device: str = "auto"  # JAX: batches gathered from the split on the accelerator (harness.training.inputs)
    run_dir: Optional[str] = None  # None: runs/<settings>-<timestamp>

    def with_recipe_defaults(self, default_preset):
        """A copy with every None that has a default filled in (recipe, then family, then global)."""
        budget = (RECIPES[self.recipe][self.model] or {}) if self.recipe else {}
        layers = {**DEFAULTS, **FAMILY_DEFAULTS[self.model], "preset": default_preset, **budget,
                  "keep": "last" if self.patience is None else "best"}  # early stopping keeps the epoch it waited for
        if self.teacher:
            kind = self.distillation or "hard"
            layers.update(distillation=kind, **DISTILLATION_DEFAULTS[kind])
        by_time = self.epochs is None and self.steps is None and (self.time_budget or budget.get("time_budget"))
        by_steps = self.epochs is None and not by_time and (self.steps or budget.get("steps"))
        if by_steps or by_time:  # the epochs and the warmup follow from the data, or from the measured speed
            layers.pop("epochs")
            if "warmup_epochs" not in budget:
                layers.pop("warmup_epochs")
        if not by_steps:  # epochs or a time budget: a recipe's step counts do not apply
            layers.pop("steps", None)
            layers.pop("warmup_steps", None)
        if not by_time:
            layers.pop("time_budget", None)
        if MODEL_FAMILIES[self.model].transformer:  # timm's and keras-hub's weights were trained with the exact GELU
            layers["gelu"] = "exact" if self.pretrained and uses_exact_gelu(self.pretrained) else "tanh"
        if self.preset is not None or not by_time:  # a preset chosen on the command line is trained as chosen
            layers.pop("smaller_preset", None)
            layers.pop("needed_epochs", None)
        filled = {key: value for key, value in layers.items() if getattr(self, key) is None}
        if self.warmup_epochs is None and "warmup_epochs" not in budget and not (by_steps or by_time):
            epochs = self.epochs if self.epochs is not None else filled["epochs"]
            filled["warmup_epochs"] = capped_warmup(FAMILY_DEFAULTS[self.model]["warmup_epochs"], epochs)
        return dataclasses.replace(self, **filled)

    def steps_per_epoch(self, train_images):
        """The full batches of an epoch; a `steps` shorter than that is one short epoch of `steps` batches."""
        full = max(1, train_images // self.batch_size)
        return min(full, self.steps) if self.steps is not None else full

    def total_steps(self, steps_per_epoch):
        """The optimisation steps of the whole run: `steps` where given (the last epoch may stop part-way), else
        every step of every epoch. The learning-rate schedule ends on the last one."""
        return self.steps if self.steps is not None else self.epochs * steps_per_epoch

    def for_data(self, train_images):
        """A step-counted config (`steps`) turned into epochs for a training split of `train_images`."""
        if self.epochs is not None or self.steps is None:  # epochs given, or planned from a time budget
            return self
        per_epoch = self.steps_per_epoch(train_images)
        epochs = math.ceil(self.steps / per_epoch)
        if self.warmup_steps is not None:  # never more than a fifth of the steps, e.g. with a shorter --steps
            warmup = capped_warmup(self.warmup_steps, self.steps) / per_epoch
        elif self.warmup_epochs is not None:
            warmup = self.warmup_epochs
        else:
            warmup = capped_warmup(FAMILY_DEFAULTS[self.model]["warmup_epochs"], epochs)
        return dataclasses.replace(self, epochs=epochs, warmup_epochs=warmup)

    def to_dict(self):
        return dataclasses.asdict(self)


def capped_warmup(warmup, run_length):
    """`warmup`, at most WARMUP_FRACTION_LIMIT of a run of `run_length` (both in epochs, or both in steps)."""
    return min(warmup, run_length * WARMUP_FRACTION_LIMIT)


def from_saved(settings):
    """The TrainConfig of a run's config.json; runs written before a setting existed ran with its default."""
    settings = {**DEFAULTS, **settings}
    fields = dataclasses.fields(TrainConfig)
    return TrainConfig(**{field.name: settings.get(field.name, field.default) for field in fields})


def model_overrides(config):
    """Architecture settings the training config changes: ViT columns and stochastic depth (ViT and hybrid)."""
    if not MODEL_FAMILIES[config.model].transformer:
        return {}
    columns = {name: getattr(config, name) for name in VIT_ARCHITECTURE if getattr(config, name) is not None}
    return {**columns, "drop_path_rate": config.drop_path_rate, "approximate_gelu": config.gelu != "exact",
            **({"distillation": True} if config.teacher else {})}


def check_data_on_device(setting, devices="1"):
    """A one-line UserError for a --data-on-device setting that cannot apply (train.py and benchmark.py)."""
    if setting not in DATA_ON_DEVICE:
        raise UserError(f"data_on_device is {setting!r}; choose one of {', '.join(DATA_ON_DEVICE)}")
    if setting == "on":
        if backend.chosen_backend() != "jax":
            raise UserError(f"--data-on-device on is for the JAX backend; on {backend.chosen_backend()} the batches "
                            "come from the host (use auto, or KERAS_BACKEND=jax)")
        if devices != "1":
            raise UserError("--data-on-device on keeps the split on one device; with --devices, use auto")


def resolve(config: TrainConfig, pretrained_file_needed=True, resumed=False):
    """The config with every default filled in and the image size decided, or a one-line UserError
    for settings that do not fit together (checked before any data loads or Keras starts).

    In order: the options that exclude or need each other, then the defaults (recipe, family, global:
    `TrainConfig.with_recipe_defaults`), then what the model family accepts, then every value's range.
    `pretrained_file_needed=False`: a resumed run whose checkpoint holds the fine-tuned weights.
    `resumed`: the settings of a run that has started, whose time budget has become planned epochs and steps."""
    if config.model not in MODEL_FAMILIES:
        raise UserError(f"unknown model {config.model!r}; choose one of {', '.join(MODEL_FAMILIES)}")
    _check_combinations(config, pretrained_file_needed, resumed)
    family = MODEL_FAMILIES[config.model]
    if config.preset is not None and config.preset not in family.presets:
        raise UserError(f"unknown {config.model} preset {config.preset!r}; choose one of: {', '.join(family.presets)}")
    config = config.with_recipe_defaults(family.default_preset)
    _check_family(config, family)
    _check_values(config)
    try:
        architecture = family.resolve_config(config.preset, image_size=config.image_size, **model_overrides(config))
    except ValueError as error:
        raise UserError(str(error)) from None
    return dataclasses.replace(config, image_size=architecture["image_size"])


def _check_combinations(config, pretrained_file_needed, resumed=False):
    """Options that exclude each other, or need another one, as given (before any default)."""
    if config.time_budget is not None:
        if (config.epochs is not None or config.steps is not None) and not resumed:
            raise UserError("give one of --epochs, --steps and --time-budget: the budget chooses the epochs")
        if not (isinstance(config.time_budget, (int, float)) and math.isfinite(config.time_budget)
                and config.time_budget > 0):
            raise UserError(f"time_budget is {config.time_budget!r}; it must be a number of seconds above 0")
    if config.recipe and RECIPES[config.recipe][config.model] is None:
        raise UserError(f"the {config.recipe} recipe is not for the {config.model} "
                        f"({RECIPES[config.recipe]['budget']})")
    if config.recipe == "finetune" and not config.pretrained:
        raise UserError("--recipe finetune fine-tunes a released checkpoint; add --pretrained FILE")
    if config.pretrained is not None and pretrained_file_needed:
        if pathlib.Path(config.pretrained).is_dir() and not is_keras_hub_preset(config.pretrained):
            raise UserError(f"--pretrained {config.pretrained} is a folder; give the checkpoint file itself (a "
                            "released .npz such as ViT-B_16.npz or timm's model.safetensors), or a keras-hub preset "
                            "folder (config.json and model.weights.h5; docs/pretrained.md)")
        if not pathlib.Path(config.pretrained).is_file() and not is_keras_hub_preset(config.pretrained):
            raise UserError(f"--pretrained {config.pretrained} does not exist; give the path of a released .npz "
                            "checkpoint (docs/pretrained.md)")
    if config.train_size is not None and config.train_fraction is not None:
        raise UserError("give --train-size or --train-fraction, not both")
    if config.train_fraction is not None and not (isinstance(config.train_fraction, (int, float))
                                                  and 0 < config.train_fraction <= 1):
        raise UserError(f"train_fraction is {config.train_fraction!r}; it must be above 0 and at most 1")
    if config.teacher is not None:
        if config.model != "vit":
            raise UserError(f"--teacher distils into the ViT's distillation token; the {config.model} has none "
                            "(use --model vit)")
        if config.pretrained:
            raise UserError("--teacher and --pretrained do not combine: the released checkpoints have no "
                            "distillation token")
    elif config.distillation or config.distillation_alpha is not None or config.distillation_temperature is not None:
        raise UserError("--distillation, --distillation-alpha and --distillation-temperature need a --teacher RUN_DIR")
    if config.freeze_backbone and not config.pretrained:
        raise UserError("--freeze-backbone trains only the head, which needs pretrained features; add --pretrained")


def _check_family(config, family):
    """What the model family accepts: the CNN has no ViT columns, and loads only BiT's released files."""
    if family.transformer:
        return
    given = [f"--{name.replace('_', '-')}" for name in (*VIT_ARCHITECTURE, "drop_path_rate", "gelu")
             if getattr(config, name)]
    if given:
        raise UserError(f"{', '.join(given)} {'is a ViT option' if len(given) == 1 else 'are ViT options'}; "
                        "the CNN's size is chosen with --preset")
    if config.pretrained and family.presets[config.preset].get("architecture") != "bit":
        raise UserError(f"--pretrained loads a released BiT ResNet, and {config.preset} is a BatchNorm ResNet; "
                        "use a BiT preset (--preset bit_r50x1)")


def _check_values(config):
    """Every setting within its range, defaults filled in (the Python API can pass anything)."""
    if config.teacher:
        if config.distillation not in DISTILLATIONS:
            raise UserError(f"distillation is {config.distillation!r}; choose one of {', '.join(DISTILLATIONS)}")
        if not (isinstance(config.distillation_alpha, (int, float)) and 0 <= config.distillation_alpha <= 1):
            raise UserError(f"distillation_alpha is {config.distillation_alpha!r}; it must be between 0 and 1")
        if not (isinstance(config.distillation_temperature, (int, float)) and config.distillation_temperature > 0):
            raise UserError(f"distillation_temperature is {config.distillation_temperature!r}; it must be above 0")
    check_data_on_device(config.data_on_device, config.devices)
    if config.gelu not in (*GELUS, None):
        raise UserError(f"gelu is {config.gelu!r}; choose one of {', '.join(GELUS)}")
    if not isinstance(config.test_time_augmentation, bool):
        raise UserError(f"test_time_augmentation is {config.test_time_augmentation!r}; it must be true or false")
    if config.keep not in KEEP:
        raise UserError(f"keep is {config.keep!r}; choose one of {', '.join(KEEP)}")
    if (config.keep == "best" or config.patience is not None) and not config.val_fraction:
        raise UserError("--keep best and --patience choose epochs by validation accuracy; "
                        "give a --val-fraction above 0")
    whole = {"epochs": 1, "batch_size": 1, "seed": 0, "patience": 1, "steps": 1, "warmup_steps": 0, "train_size": 1,
             **{name: 1 for name in VIT_ARCHITECTURE},
             **({"image_size": 1} if config.image_size is not None else {})}
    for name, low in whole.items():
        value = getattr(config, name)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < low):
            raise UserError(f"{name} is {value!r}; it must be a whole number, at least {low}")
    numbers = {name: getattr(config, name) for name in ("learning_rate", "weight_decay", "warmup_epochs",
                                                        "label_smoothing", "mixing_alpha", "val_fraction",
                                                        "gradient_clip_norm", "time_budget")}
    optional = ("warmup_epochs", "gradient_clip_norm", "time_budget")  # warmup: set later with steps or a budget
    for name, value in numbers.items():
        if value is None and name in optional:
            continue
        if not isinstance(value, (int, float)) or not math.isfinite(value):
            raise UserError(f"{name} is {value!r}; it must be a finite number")
