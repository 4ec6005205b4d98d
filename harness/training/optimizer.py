"""The optimizer: AdamW or SGD with momentum, warmup then cosine decay, gradient clipping if asked, and no
weight decay on biases, norms and embeddings."""

import keras

# Weights that get no weight decay besides biases and normalisation scales (all of rank < 2).
NO_DECAY_NAMES = ("class_token", "position_embedding")


def no_decay_variables(model):
    """Biases, LayerNorm/BatchNorm parameters, the class token and position embeddings."""
    return [v for v in model.trainable_variables if len(v.shape) < 2 or v.name in NO_DECAY_NAMES]


def learning_rate_schedule(peak, total_steps, warmup_steps):
    """Linear warmup from 0 to `peak` over `warmup_steps`, then cosine decay to 0."""
    warmup_steps = min(warmup_steps, total_steps - 1)
    if warmup_steps <= 0:
        return keras.optimizers.schedules.CosineDecay(peak, total_steps)
    return keras.optimizers.schedules.CosineDecay(
        0.0, total_steps - warmup_steps, warmup_target=peak, warmup_steps=warmup_steps
    )


def build_optimizer(config, model, steps_per_epoch):
    schedule = learning_rate_schedule(
        config.learning_rate,
        total_steps=config.total_steps(steps_per_epoch),
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
