"""Every setting of a training run, with per-model defaults (the "recipe")."""

import dataclasses
from typing import Optional

# Defaults each model family trains with unless the command line says otherwise.
RECIPES = {
    # DeiT-style: AdamW, weight decay 0.05 (decoupled: Keras multiplies it by the learning rate).
    "vit": dict(optimizer="adamw", learning_rate=1e-3, weight_decay=0.05, warmup_epochs=5.0),
    # The classic CIFAR ResNet recipe: SGD with Nesterov momentum 0.9, lr 0.1 at batch 128. Coupled
    # L2 of 5e-4 with momentum 0.9 shrinks weights like decoupled decay of 5e-3 does.
    "cnn": dict(optimizer="sgd", learning_rate=0.1, weight_decay=5e-3, warmup_epochs=1.0),
}
OPTIMIZERS = ("adamw", "sgd")
WARMUP_FRACTION_LIMIT = 0.2  # a default warmup never takes more than a fifth of a short run


@dataclasses.dataclass
class TrainConfig:
    model: str = "vit"  # "vit" or "cnn"
    preset: Optional[str] = None  # a key of the family's PRESETS; None: the family default
    dataset: Optional[str] = None  # cifar10_sample (default), cifar10, cifar100, or a label for --data-dir
    data_dir: Optional[str] = None  # an image folder or CIFAR batch directory
    image_size: Optional[int] = None  # None: the preset's size
    epochs: int = 10
    batch_size: int = 128
    learning_rate: Optional[float] = None  # peak, after warmup; None: the recipe's
    weight_decay: Optional[float] = None  # decoupled; never on biases, norms, class token, E_pos
    optimizer: Optional[str] = None  # "adamw" or "sgd"
    warmup_epochs: Optional[float] = None  # linear warmup, then cosine decay to 0
    label_smoothing: float = 0.1
    augmentation: str = "crop_flip"
    val_fraction: float = 0.1  # carved off the training split; the test split stays untouched
    seed: int = 0
    precision: str = "auto"  # auto: mixed on a GPU, float32 on a CPU
    run_dir: Optional[str] = None  # None: runs/<recipe>-<timestamp>

    def with_recipe_defaults(self, default_preset):
        """A copy with every None that has a default filled in."""
        recipe = RECIPES[self.model]
        filled = {key: value for key, value in recipe.items() if getattr(self, key) is None}
        if self.warmup_epochs is None:
            filled["warmup_epochs"] = min(recipe["warmup_epochs"], self.epochs * WARMUP_FRACTION_LIMIT)
        return dataclasses.replace(self, preset=self.preset or default_preset, **filled)

    def to_dict(self):
        return dataclasses.asdict(self)
