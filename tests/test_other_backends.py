"""The model, layer, learning and trainer tests again, on the JAX and PyTorch backends, each in a fresh process
(Keras fixes its backend at import). Neither loads TensorFlow: tests/test_backend_start.py."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
# The model and layer numerics, learning and the trainer; the command-line runs (e2e) are not repeated here:
# tests/test_backend_start.py and tests/test_gpu_campaign.py run those on JAX.
BACKEND_TESTS = ["tests/test_vit_layers.py", "tests/test_vit_model.py", "tests/test_cnn.py", "tests/test_learning.py",
                 "tests/test_checkpoint.py", "tests/test_distillation.py", "tests/test_bit_hybrid.py",
                 "tests/test_checkpoint_resnets.py", "tests/test_trainer.py", "tests/test_fast_path.py"]


def run_on(backend):
    pytest.importorskip(backend)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--numprocesses", "0", *BACKEND_TESTS],
        cwd=REPO, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and " failed" not in summary, summary


# One class per backend: the parallel workers (pytest-xdist, --dist loadscope) run the two at once.
class TestJax:
    def test_the_tests_pass_on_jax(self):
        run_on("jax")


class TestTorch:
    def test_the_tests_pass_on_torch(self):  # pip install -r requirements-torch.txt
        run_on("torch")
