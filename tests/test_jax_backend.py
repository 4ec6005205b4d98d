"""The model tests again, on the JAX backend, in a fresh process (the backend is fixed at import)."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
MODEL_TESTS = ["tests/test_vit_layers.py", "tests/test_vit_model.py", "tests/test_cnn.py", "tests/test_learning.py",
               "tests/test_checkpoint.py", "tests/test_distillation.py", "tests/test_bit_hybrid.py",
               "tests/test_checkpoint_resnets.py"]


def test_model_tests_pass_on_jax():
    pytest.importorskip("jax")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *MODEL_TESTS],
        cwd=REPO, env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.strip().splitlines()[-1]
