"""evaluate.py RUN --export: the exported SavedModel or ONNX file gives the .keras model's logits, run by
its own runtime (TensorFlow's SavedModel loader, ONNX Runtime) in this process."""

import json

import keras
import numpy as np
import pytest
from entry_points import run
from helpers import one_line_error, run_train, write_image_folder

from harness.data import load_dataset
from harness.training.run_dir import load_model, open_finished_run

pytestmark = pytest.mark.trains  # every test uses a run trained in this process


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("exporting goes through TensorFlow")
    root = tmp_path_factory.mktemp("export")
    folder = write_image_folder(root / "images", per_class=(6, 4))
    result = run_train("--preset", "vit_test", "--data-dir", folder, "--epochs", 1, "--batch-size", 4,
                       "--run-dir", root / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    return root / "run", folder


def exported_logits(folder, export_format, images):
    if export_format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
        assert [i.name for i in session.get_inputs()] == ["images"]
        return session.run(None, {"images": images})[0]
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder / "saved_model"))
    return loaded.signatures["serving_default"](images=tf.constant(images))["output_0"].numpy()


@pytest.mark.parametrize("export_format", ["onnx", "saved_model"])
def test_the_exported_model_gives_the_keras_models_logits(finished_run, tmp_path, export_format):
    run_dir, images_folder = finished_run
    result = run("evaluate.py", run_dir, "--export", tmp_path / "export", "--format", export_format)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "the same logits as model.keras" in result.stdout
    test_images = load_dataset(data_dir=images_folder).test.images.astype("float32")  # real images, 12 of them
    expected = keras.ops.convert_to_numpy(load_model(open_finished_run(run_dir)[0])(test_images))
    np.testing.assert_allclose(exported_logits(tmp_path / "export", export_format, test_images), expected,
                               rtol=1e-5, atol=1e-5)
    assert np.abs(expected).max() > 1e-3  # not a model that outputs zeros whatever it sees
    summary = json.loads((tmp_path / "export" / "export.json").read_text())
    assert summary["class_names"] == ["cat", "dog", "frog"] and summary["input"]["shape"] == [None, 32, 32, 3]
    assert summary["check"]["max_abs_logit_difference"] < 1e-4


@pytest.mark.e2e
@pytest.mark.backend
def test_export_refusals_are_one_line(finished_run, tmp_path):
    run_dir, _ = finished_run
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "file").write_text("x")
    assert "already exists and is not an empty folder" in one_line_error(
        run("evaluate.py", run_dir, "--export", tmp_path / "taken"))
    assert "--format goes with --export" in one_line_error(run("evaluate.py", run_dir, "--format", "onnx"))
    line = one_line_error(run("evaluate.py", run_dir, "--export", tmp_path / "e", env={"KERAS_BACKEND": "jax"}))
    assert "KERAS_BACKEND=tensorflow" in line and not (tmp_path / "e").exists()


def test_an_export_into_an_empty_mount_point_fills_it_without_removing_it(finished_run, tmp_path, monkeypatch):
    """A mount point cannot be removed or replaced (EBUSY): the export must write into it as it is."""
    import errno
    import os

    from harness.reporting.export import export_run

    run_dir, _ = finished_run
    mount = tmp_path / "mount"
    mount.mkdir()
    replace, rmdir = os.replace, os.rmdir

    def busy_if_mount(path):
        if os.path.abspath(path) == str(mount):
            raise OSError(errno.EBUSY, "Device or resource busy", str(path))

    monkeypatch.setattr(os, "rmdir", lambda path, *a, **k: busy_if_mount(path) or rmdir(path, *a, **k))
    monkeypatch.setattr(os, "replace", lambda src, dst, *a, **k: busy_if_mount(dst) or replace(src, dst, *a, **k))
    summary = export_run(run_dir, mount, "onnx")
    assert sorted(path.name for path in mount.iterdir()) == ["export.json", "model.onnx"]
    assert json.loads((mount / "export.json").read_text()) == json.loads(json.dumps(summary))


def test_an_export_the_disk_cannot_hold_leaves_the_folder_as_it_was(finished_run, tmp_path, monkeypatch):
    from harness.reporting import export

    run_dir, _ = finished_run

    class ResourceExhaustedError(Exception):  # what TensorFlow raises there: not an OSError
        pass

    def full(*args, **kwargs):
        raise ResourceExhaustedError("variables.data-00000-of-00001; No space left on device")

    monkeypatch.setattr(export, "_export_timm", full)
    monkeypatch.setattr(keras.Model, "export", full)
    for target in (tmp_path / "new", tmp_path / "empty"):
        if target.name == "empty":
            target.mkdir()
        with pytest.raises(ResourceExhaustedError):
            export.export_run(run_dir, target, "saved_model")
        assert (list(target.iterdir()) == []) if target.name == "empty" else not target.exists()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["empty"]
