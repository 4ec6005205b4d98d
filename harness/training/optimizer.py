"""The optimizer: AdamW or SGD with momentum, warmup then cosine decay, gradient clipping if asked, and no
weight decay on biases, norms and embeddings."""

import math

import keras
from keras import ops

# Weights that get no weight decay besides biases and normalisation scales (all of rank < 2).
NO_DECAY_NAMES = ("class_token", "position_embedding")


def no_decay_variables(model):
    """Biases, LayerNorm/BatchNorm parameters, the class token and position embeddings."""
    return [v for v in model.trainable_variables if len(v.shape) < 2 or v.name in NO_DECAY_NAMES]


@keras.saving.register_keras_serializable(package="harness")
class WarmupCosineDecay(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then cosine decay to 0 at `total_steps`.

    Keras' CosineDecay computes the same numbers with a `cond`, which JAX compiles anew at every call
    outside the training step, and the history reads the learning rate after every epoch; this one
    uses elementwise ops only.
    """

    def __init__(self, peak, total_steps, warmup_steps):
        super().__init__()
        self.peak, self.total_steps, self.warmup_steps = peak, total_steps, warmup_steps

    def __call__(self, step):
        step = ops.cast(step, "float32")
        warmup = self.peak * step / max(self.warmup_steps, 1)
        progress = ops.clip((step - self.warmup_steps) / max(self.total_steps - self.warmup_steps, 1), 0.0, 1.0)
        decay = 0.5 * self.peak * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < self.warmup_steps, warmup, decay)

    def get_config(self):
        return {"peak": self.peak, "total_steps": self.total_steps, "warmup_steps": self.warmup_steps}


def learning_rate_schedule(peak, total_steps, warmup_steps):
    """Linear warmup from 0 to `peak` over `warmup_steps` (at most all steps but one), then cosine decay to 0."""
    return WarmupCosineDecay(peak, total_steps, max(0, min(warmup_steps, total_steps - 1)))


def build_optimizer(config, model, steps_per_epoch):
    schedule = learning_rate_schedule(
        config.learning_rate,
        total_steps=config.epochs * steps_per_epoch,
        warmup_steps=round(config.warmup_epochs * steps_per_epoch),
    )
    clip = {"global_clipnorm": config.gradient_clip_norm} if config.gradient_clip_norm else {}
    if config.optimizer == "adamw":
        optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay, **clip)
    else:  # "sgd": Nesterov momentum (the CIFAR ResNet recipe); "momentum": plain, as the paper fine-tunes
        optimizer = keras.optimizers.SGD(schedule, momentum=0.9, nesterov=config.optimizer == "sgd",
                                         weight_decay=config.weight_decay, **clip)
    optimizer.exclude_from_weight_decay(var_list=no_decay_variables(model))
    return optimizer
