"""The model, layer, learning and precision tests again, on the JAX and PyTorch backends, each in a fresh process
(Keras fixes its backend at import). Neither loads TensorFlow: tests/test_backend_start.py."""

import os
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.backend, pytest.mark.e2e]  # a pytest of its own per backend

# The model and layer numerics, checkpoints and the mixed-precision and on-device paths: what differs between
# backends. Not repeated: the trainer's own logic (plain Python, the same on every backend); the command-line
# runs, mixed precision's included (tests/test_backend_start.py and tests/test_gpu_campaign.py train, evaluate and
# report on JAX and PyTorch); tests/test_learning.py's float32 runs (each backend's whole training step learns
# here, in test_fast_path's mixed-bfloat16 test of the ViT and the CNN, and its layers match numpy); the
# presets' parameter counts, FLOPs and token counts (shapes alone, the same on every backend; the paper sizes are the
# costliest builds); of the CIFAR presets, the test and mini sizes predict (the same layers at every size).
BACKEND_TESTS = ["tests/test_vit_layers.py", "tests/test_vit_model.py", "tests/test_cnn.py", "tests/test_checkpoint.py",
                 "tests/test_distillation.py", "tests/test_bit_hybrid.py", "tests/test_checkpoint_resnets.py",
                 "tests/test_fast_path.py"]
NOT_REPEATED = ("not test_a_mixed_precision_run and not parameter_count and not counted_parameters "
                "and not flops_match "
                "and not classic_size and not r50_vit_b16 "
                "and not (test_cifar_presets_build_and_predict_float32_logits and (tiny or small))")


def run_on(backend):
    pytest.importorskip(backend)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--numprocesses", "0", "-k", NOT_REPEATED,
         *BACKEND_TESTS],
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
