"""The accelerator-friendly training path: batches made on the device, a NaN guard that does not stall it,
no recompilation once training runs. Runs on every backend (tests/test_other_backends.py adds JAX and PyTorch);
the JAX-only parts skip elsewhere."""

import json

import keras
import numpy as np
import pytest
from helpers import numpy_of

from harness.data import Split
from harness.errors import UserError
from harness.training.array_pipeline import TrainingBatches
from harness.training.callbacks import NonFiniteLossGuard
from harness.training.config import TrainConfig, resolve
from harness.training.run_dir import RunDirectory

on_jax = pytest.mark.skipif(keras.backend.backend() != "jax", reason="the device-resident path is JAX's")


def small_split(count=40, size=8, classes=5, seed=0):
    rng = np.random.default_rng(seed)
    return Split(rng.integers(0, 256, (count, size, size, 3), dtype=np.uint8), rng.integers(0, classes, count))


@pytest.mark.parametrize("mixing", ["none", "mixup", "cutmix"])
def test_batches_made_on_the_device_are_the_host_batches(mixing):
    """Gathered, converted to float32, one-hot and mixed on the device: the values the host path gives,
    epoch after epoch (each epoch reshuffles and redraws the mixing)."""
    split = small_split()
    host = TrainingBatches(split, 5, 16, first_epoch=3, seed=7, mixing=mixing, mixing_alpha=0.8)
    device = TrainingBatches(split, 5, 16, first_epoch=3, seed=7, mixing=mixing, mixing_alpha=0.8, on_device=True)
    assert len(host) == len(device) == 2
    for _ in range(2):
        for index in range(len(host)):
            (host_images, host_labels), (images, labels) = host[index], device[index]
            assert not isinstance(images, np.ndarray)  # a tensor of the backend, not a host copy
            np.testing.assert_allclose(numpy_of(images), host_images, rtol=1e-6, atol=1e-4)
            np.testing.assert_allclose(numpy_of(labels), host_labels, rtol=1e-6, atol=1e-6)
        host.on_epoch_end()
        device.on_epoch_end()


def test_the_nan_guard_does_not_make_each_step_wait_for_the_host(monkeypatch):
    """Keras runs a batch hook in its worker threads only where the backend is thread-safe (JAX, PyTorch)
    and every callback says it is safe there; otherwise each step waits for its loss to reach the host.
    Checked as on a thread-safe backend whichever backend runs it (TensorFlow never dispatches so): the guard
    lets the steps run on, where a batch hook that does not say it is safe would not."""
    from keras.src import backend as keras_backend
    from keras.src.callbacks.callback_list import CallbackList

    class Unsafe(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            pass

    def dispatched_in_threads(*callbacks):  # a private flag: the one place Keras decides it
        return CallbackList(list(callbacks), model=keras.Sequential([keras.layers.Dense(1)]))._async_train

    assert dispatched_in_threads(NonFiniteLossGuard()) == keras_backend.IS_THREAD_SAFE  # this backend as it is
    monkeypatch.setattr(keras_backend, "IS_THREAD_SAFE", True)
    assert dispatched_in_threads(NonFiniteLossGuard())
    assert not dispatched_in_threads(NonFiniteLossGuard(), Unsafe())


def test_the_nan_guard_keeps_the_earliest_bad_step_whatever_order_the_threads_report():
    guard = NonFiniteLossGuard()
    guard.set_model(keras.Sequential([keras.layers.Dense(1)]))
    guard.on_epoch_begin(2)
    guard.on_train_batch_end(5, {"loss": 1.0})
    guard.on_train_batch_end(9, {"loss": float("nan")})
    guard.on_train_batch_end(7, {"loss": float("inf")})
    guard.on_train_batch_end(8, {"loss": float("nan")})
    assert guard.failure == (3, 8, float("inf")) and guard.model.stop_training


def test_data_on_device_on_is_refused_where_it_cannot_apply(monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    with pytest.raises(UserError, match="--data-on-device on is for the JAX backend"):
        resolve(TrainConfig(data_on_device="on"))
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(UserError, match="with --devices, use auto"):
        resolve(TrainConfig(data_on_device="on", devices="2"))
    with pytest.raises(UserError, match="choose one of auto, on, off"):
        resolve(TrainConfig(data_on_device="yes"))
    assert resolve(TrainConfig(data_on_device="on")).data_on_device == "on"


class CompilationCounter(keras.callbacks.Callback):
    """XLA compilations per epoch, from JAX's monitoring events (one per backend compile)."""

    def __init__(self):
        super().__init__()
        import jax.monitoring

        self.per_epoch, self.count = [], 0
        jax.monitoring.register_event_duration_secs_listener(self._event)

    def _event(self, name, seconds, **kwargs):
        if name == "/jax/core/compile/backend_compile_duration":
            self.count += 1

    def on_epoch_end(self, epoch, logs=None):
        self.per_epoch.append(self.count)
        self.count = 0


@on_jax
@pytest.mark.parametrize("mixing", ["none", "mixup"])
@pytest.mark.trains
def test_training_compiles_in_its_first_epoch_only(image_folder, tmp_path, mixing, monkeypatch):
    """A step that recompiles (a changing shape or a Python number traced in) costs seconds each time on
    a GPU; after the first epoch (training and validation steps), nothing compiles again."""
    from harness.training import trainer

    counter = CompilationCounter()
    original = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit",
                        lambda self, *a, callbacks=(), **k: original(self, *a, callbacks=[*callbacks, counter], **k))
    trainer.train(TrainConfig(preset="vit_test", data_dir=str(image_folder), epochs=3, batch_size=4, mixing=mixing,
                              data_on_device="on", run_dir=str(tmp_path / "run")), verbose=0)
    assert counter.per_epoch[0] > 0 and counter.per_epoch[1:] == [0, 0]


@on_jax
@pytest.mark.trains
def test_a_run_with_its_data_on_the_device_trains_as_one_from_the_host(image_folder, tmp_path):
    from harness.training import trainer

    metrics = {}
    for setting in ("off", "on"):
        metrics[setting] = trainer.train(TrainConfig(preset="vit_test", data_dir=str(image_folder), epochs=2,
                                                     batch_size=4, mixing="cutmix", data_on_device=setting,
                                                     run_dir=str(tmp_path / setting)), verbose=0)
    assert metrics["on"]["test_accuracy"] == metrics["off"]["test_accuracy"]
    assert metrics["on"]["test_loss"] == pytest.approx(metrics["off"]["test_loss"], rel=1e-5)
    losses = {setting: [float(row["loss"]) for row in RunDirectory(tmp_path / setting).read_history()]
              for setting in metrics}
    np.testing.assert_allclose(losses["on"], losses["off"], rtol=1e-5)
    pipelines = {setting: json.loads((tmp_path / setting / "manifest.json").read_text())["input_pipeline"]
                 for setting in metrics}
    assert pipelines == {"off": "PyDataset from host memory", "on": "on the device"}


@pytest.mark.parametrize("model_name,preset", [("vit", "vit_test"), ("cnn", "resnet_test")])
@pytest.mark.trains
def test_the_training_model_learns_in_mixed_bfloat16(model_name, preset):
    """The whole training step as a GPU runs it, in bfloat16 (the CPU emulates it): in-model augmentation,
    MixUp from the device path, label smoothing, AdamW or SGD with warmup. Every loss is finite, and it
    falls on 16 images it can memorise (without MixUp, which only has to stay finite: fewer epochs)."""
    from harness.models import MODEL_FAMILIES
    from harness.training.trainer import training_model

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    family = MODEL_FAMILIES[model_name]
    split = small_split(count=16, size=32, classes=3, seed=1)
    losses = {}
    for mixing in ("mixup", "none"):
        config = TrainConfig(model=model_name, preset=preset, epochs=40 if mixing == "none" else 8, batch_size=8,
                             mixing=mixing, warmup_epochs=2.0, learning_rate=3e-3 if model_name == "vit" else 0.1,
                             augmentation="none").with_recipe_defaults(family.default_preset)
        model = family.build(preset, image_size=32, num_classes=3, **({"drop_path_rate": 0.0} if model_name == "vit"
                                                                      else {}))
        trainee = training_model(model, config, steps_per_epoch=2)
        batches = TrainingBatches(split, 3, 8, first_epoch=0, seed=0, mixing=mixing, on_device=True)
        history = trainee.fit(batches, epochs=config.epochs, verbose=0, shuffle=False).history
        losses[mixing] = history["loss"]
        assert model.dtype_policy.name == "mixed_bfloat16"
    assert np.all(np.isfinite(losses["mixup"])) and np.all(np.isfinite(losses["none"]))
    assert np.mean(losses["none"][-5:]) < 0.75 * np.mean(losses["none"][:5]), losses["none"]


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
@pytest.mark.parametrize("model_name,preset", [("vit", "vit_test"), ("cnn", "resnet_test")])
@pytest.mark.trains
def test_a_mixed_precision_run_trains_evaluates_and_reports(image_folder, tmp_path, monkeypatch, model_name, preset,
                                                            precision):
    """A GPU's precision end to end on the CPU (which emulates it): train with MixUp and the augmentation
    (float16: with Keras' loss scaling), checkpoint, evaluate the test split, save; evaluate.py and the
    report load the saved model in a fresh state and give its numbers."""
    if precision == "mixed_float16" and keras.backend.backend() == "jax":
        pytest.skip("JAX's CPU backend has no float16 matrix product (its GPU backend has)")
    from harness.reporting.evaluate_run import evaluate_run
    from harness.reporting.report import write_report
    from harness.training import run_plan, trainer

    monkeypatch.setattr(run_plan, "resolve_precision", lambda requested: precision)
    metrics = trainer.train(TrainConfig(model=model_name, preset=preset, data_dir=str(image_folder), epochs=2,
                                        batch_size=4, mixing="mixup", run_dir=str(tmp_path / "run")), verbose=0)
    assert metrics["precision"] == precision and np.isfinite(metrics["test_loss"])
    keras.mixed_precision.set_global_policy("float32")  # as a new process starts
    evaluation, _ = evaluate_run(tmp_path / "run")
    assert evaluation["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert (write_report([tmp_path / "run"], tmp_path / "report")).exists()
