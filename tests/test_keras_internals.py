"""The private Keras API the harness uses (harness/training/keras_internals.py), checked on the installed Keras:
an upgrade that renames or changes one of them fails here, by name, not part-way through a training run."""

import keras
import numpy as np
import pytest

from harness.training import keras_internals


def test_the_optimizer_keeps_its_schedule_object_or_its_fixed_rate():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=10)
    assert keras_internals.learning_rate_schedule(keras.optimizers.SGD(schedule)) is schedule
    fixed = keras_internals.learning_rate_schedule(keras.optimizers.SGD(0.1))
    assert isinstance(fixed, keras.Variable) and not callable(fixed)  # the epoch recorder tells the two apart so


def test_a_schedule_reads_the_length_a_time_budget_sets_when_it_is_called():
    """BudgetGuard.replan shortens or stretches a run by setting these two attributes."""
    schedule = keras.optimizers.schedules.CosineDecay(0.0, 8, warmup_target=1.0, warmup_steps=2)
    schedule.warmup_steps, schedule.decay_steps = 1, 3
    assert float(schedule(1)) == pytest.approx(1.0)  # the peak, after the new warmup
    assert float(schedule(4)) == pytest.approx(0.0, abs=1e-6)  # the end of the new decay


def test_a_retraced_training_step_uses_the_schedule_length_set_after_it_was_compiled():
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=1000)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, use_bias=False, kernel_initializer="zeros")])
    model.compile(optimizer=keras.optimizers.SGD(schedule), loss="mse")
    x, y = np.ones((1, 1), "float32"), np.ones((1, 1), "float32")
    model.train_on_batch(x, y)  # step 0 at the full rate; the step is traced with 1000 steps of decay
    trained = keras.ops.convert_to_numpy(model.weights[0])
    assert trained[0, 0] == pytest.approx(0.2)
    schedule.decay_steps = 1  # the decay now ends at step 1: a rate of 0 from there on
    keras_internals.retrace_train_step(model)
    model.train_on_batch(x, y)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model.weights[0]), trained, atol=1e-6)


def tensorboard_callback(log_dir):
    pytest.importorskip("tensorflow")  # TensorBoard's writers are TensorFlow's, whatever the backend
    callback = keras.callbacks.TensorBoard(log_dir=str(log_dir), write_graph=False, update_freq="epoch")
    callback.set_model(keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)]))
    return callback


def test_tensorboards_writers_are_made_once_in_its_train_and_validation_folders(tmp_path):
    """backfill_tensorboard writes into the same two folders on resume, with writers of its own."""
    from harness.training.callbacks import write_scalars

    callback = tensorboard_callback(tmp_path)
    for part, folder in (("train", "train"), ("validation", "validation")):
        writer = keras_internals.tensorboard_writer(callback, part)
        assert keras_internals.tensorboard_writer(callback, part) is writer
        write_scalars(writer, 0, {"epoch_loss": 1.0})
        assert list((tmp_path / folder).glob("events.out.tfevents.*"))
    assert keras_internals.tensorboard_writer(callback, "train") is not keras_internals.tensorboard_writer(
        callback, "validation")


def test_leaving_the_validation_writer_closes_what_the_start_of_validation_opened(tmp_path):
    callback = tensorboard_callback(tmp_path)
    for _ in range(2):  # two epochs' validations, each begun by Keras and ended by TensorBoardLogger
        callback.on_test_begin()
        keras_internals.leave_validation_writer(callback)


def test_a_random_layers_state_is_the_variable_augment_reseed_looks_for():
    """harness.training.augment.reseed finds the random layers' states by this name (not a private attribute,
    but Keras' naming, which nothing public promises)."""
    assert keras.random.SeedGenerator(1).state.name == "seed_generator_state"
    flip = keras.layers.RandomFlip(seed=1)
    assert "seed_generator_state" in [variable.name for variable in flip.variables]
