"""Every use of Keras' private API, in one place, each with the reason it is needed.

tests/test_keras_internals.py checks on the installed Keras that each still exists and behaves as assumed,
so that an upgrade which changes one fails there, by name, rather than part-way through a training run.
"""


def learning_rate_schedule(optimizer):
    """The optimizer's schedule object (or its fixed rate): `optimizer.learning_rate` only gives its value now."""
    return optimizer._learning_rate


def retrace_train_step(model):
    """Makes `model.fit` trace its training step again: the compiled step holds the schedule's old length."""
    model.make_train_function(force=True)


def tensorboard_writer(callback, part):
    """The summary writer of Keras' TensorBoard `callback` for "train" or "validation", made on first use, so
    that our epoch scalars go where Keras' curves go: Keras offers no public way to it."""
    return callback._train_writer if part == "train" else callback._val_writer


def leave_validation_writer(callback):
    """What Keras' TensorBoard `on_test_end` does besides writing scalars: leaves the writer `on_test_begin` entered."""
    callback._pop_writer()
