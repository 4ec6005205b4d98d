"""The model, training, evaluation and report tests again, on the JAX and PyTorch backends, each in a fresh
process (Keras fixes its backend at import). Neither loads TensorFlow: tests/test_backend_start.py."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
BACKEND_TESTS = ["tests/test_vit_layers.py", "tests/test_vit_model.py", "tests/test_cnn.py", "tests/test_learning.py",
                 "tests/test_checkpoint.py", "tests/test_distillation.py", "tests/test_bit_hybrid.py",
                 "tests/test_checkpoint_resnets.py", "tests/test_trainer.py", "tests/test_evaluate.py",
                 "tests/test_visualize.py", "tests/test_fast_path.py"]


@pytest.mark.parametrize("backend", ["jax", "torch"])  # torch: pip install -r requirements-torch.txt
def test_the_tests_pass_on_another_backend(backend):
    pytest.importorskip(backend)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *BACKEND_TESTS],
        cwd=REPO, env={**os.environ, "KERAS_BACKEND": backend}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    summary = result.stdout.strip().splitlines()[-1]
    assert " passed" in summary and " failed" not in summary, summary
