"""Every setting of a training run, and where its defaults come from.

A setting left as None is filled, in this order, from: the budget recipe (`--recipe`, see
`harness.training.recipes`), the model family's defaults (`FAMILY_DEFAULTS`), then `DEFAULTS`.
"""

import dataclasses
from typing import Optional

from harness.training.recipes import RECIPES

DEFAULTS = dict(
    epochs=10, batch_size=128, label_smoothing=0.1, augmentation="crop_flip", mixing="none", mixing_alpha=1.0,
    drop_path_rate=0.0,
)
FAMILY_DEFAULTS = {
    # DeiT-style: AdamW, weight decay 0.05 (decoupled: Keras multiplies it by the learning rate).
    "vit": dict(optimizer="adamw", learning_rate=1e-3, weight_decay=0.05, warmup_epochs=5.0),
    # The classic CIFAR ResNet recipe: SGD with Nesterov momentum 0.9, lr 0.1 at batch 128. Coupled
    # L2 of 5e-4 with momentum 0.9 shrinks weights like decoupled decay of 5e-3 does.
    "cnn": dict(optimizer="sgd", learning_rate=0.1, weight_decay=5e-3, warmup_epochs=1.0),
}
OPTIMIZERS = ("adamw", "sgd")
JIT_COMPILE = ("auto", "on", "off")
PRECISIONS = ("auto", "float32", "mixed_float16", "mixed_bfloat16")
WARMUP_FRACTION_LIMIT = 0.2  # a default warmup never takes more than a fifth of a short run


@dataclasses.dataclass
class TrainConfig:
    model: str = "vit"  # "vit" or "cnn"
    recipe: Optional[str] = None  # a key of harness.training.recipes.RECIPES: smoke, course, full
    preset: Optional[str] = None  # a key of the family's PRESETS; None: the recipe's or family default
    dataset: Optional[str] = None  # cifar10_sample (default), cifar10, cifar100, or a label for --data-dir
    data_dir: Optional[str] = None  # an image folder or CIFAR batch directory
    image_size: Optional[int] = None  # None: the preset's size
    epochs: Optional[int] = None
    batch_size: Optional[int] = None
    learning_rate: Optional[float] = None  # peak, after warmup
    weight_decay: Optional[float] = None  # decoupled; never on biases, norms, class token, E_pos
    optimizer: Optional[str] = None  # "adamw" or "sgd"
    warmup_epochs: Optional[float] = None  # linear warmup, then cosine decay to 0
    label_smoothing: Optional[float] = None
    augmentation: Optional[str] = None  # per image, inside the training model: crop_flip or none
    mixing: Optional[str] = None  # per batch, in the input pipeline: none, mixup, cutmix
    mixing_alpha: Optional[float] = None
    drop_path_rate: Optional[float] = None  # stochastic depth of the last ViT block (ViT only)
    val_fraction: float = 0.1  # carved off the training split; the test split stays untouched
    seed: int = 0
    precision: str = "auto"  # auto: mixed on a GPU, float32 on a CPU
    jit_compile: str = "auto"  # XLA (TensorFlow) / jit (JAX); auto: Keras' choice, on except TensorFlow on CPU
    run_dir: Optional[str] = None  # None: runs/<settings>-<timestamp>

    def with_recipe_defaults(self, default_preset):
        """A copy with every None that has a default filled in (recipe, then family, then global)."""
        budget = RECIPES[self.recipe][self.model] if self.recipe else {}
        layers = {**DEFAULTS, **FAMILY_DEFAULTS[self.model], "preset": default_preset, **budget}
        filled = {key: value for key, value in layers.items() if getattr(self, key) is None}
        if self.warmup_epochs is None and "warmup_epochs" not in budget:
            epochs = self.epochs or filled["epochs"]
            filled["warmup_epochs"] = min(FAMILY_DEFAULTS[self.model]["warmup_epochs"], epochs * WARMUP_FRACTION_LIMIT)
        return dataclasses.replace(self, **filled)

    def to_dict(self):
        return dataclasses.asdict(self)
