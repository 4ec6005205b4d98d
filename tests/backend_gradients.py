"""Gradients of a model's loss w.r.t. its trainable weights, on whichever backend Keras runs."""

import keras
import numpy as np


def loss_gradients(model, images, labels):
    loss_fn = keras.losses.CategoricalCrossentropy(from_logits=True)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_fn(labels, model(images, training=True))
        return [np.asarray(g) for g in tape.gradient(loss, model.trainable_variables)]
    if backend == "jax":
        import jax

        frozen = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable):
            logits, _ = model.stateless_call(trainable, frozen, images, training=True)
            return loss_fn(labels, logits)

        return [np.asarray(g) for g in jax.grad(loss_of)([v.value for v in model.trainable_variables])]
    if backend == "torch":
        loss = loss_fn(labels, model(images, training=True))
        loss.backward()
        return [v.value.grad.cpu().numpy() for v in model.trainable_variables]
    raise NotImplementedError(backend)
