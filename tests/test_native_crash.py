"""No native crash: TensorFlow's oneDNN CPU kernel for the weight gradient of a strided 1x1 convolution
corrupts the heap for odd batch sizes with fewer than 16 input channels (TF 2.20 and 2.21), which
once killed `train.py --model cnn --preset resnet_test --batch-size 65` with a segmentation fault."""

import os
import subprocess
import sys

import pytest
from entry_points import REPO
from helpers import run_train, write_image_folder

pytestmark = pytest.mark.e2e  # each test trains in a process of its own: a native crash kills its process


@pytest.fixture(autouse=True)
def tensorflow_backend():
    pytest.importorskip("tensorflow")
    import keras

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the crash was in TensorFlow's CPU kernels")


def test_the_reported_command_trains(tmp_path):
    """(Every preset at other odd batch sizes: the probe below.)"""
    result = run_train("--model", "cnn", "--preset", "resnet_test", "--batch-size", 65, "--epochs", 1,
                       "--run-dir", tmp_path / "run", fresh_process=True)  # a native crash kills its process
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_default_batch_on_81_training_images_trains(tmp_path):
    """One step over all 81 images: an odd batch, as in the report."""
    folder = write_image_folder(tmp_path / "images", per_class=(27, 2))
    result = run_train("--model", "cnn", "--preset", "resnet_test", "--data-dir", folder, "--val-fraction", 0,
                       "--epochs", 1, "--run-dir", tmp_path / "run", fresh_process=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_every_preset_takes_a_training_step_at_odd_batch_sizes():
    probe = subprocess.run([sys.executable, "tests/native_crash_probe.py"], cwd=REPO, capture_output=True, text=True,
                           env={**os.environ, "PYTHONPATH": str(REPO)})
    last = (probe.stdout.strip().splitlines() or ["nothing"])[-1]
    assert probe.returncode == 0, f"exit {probe.returncode} after: {last}\n{probe.stderr[-1500:]}"
