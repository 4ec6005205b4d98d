"""Starting a backend: TensorFlow's start-up chatter hidden, its fatal errors never; the JAX and PyTorch
backends never load TensorFlow (next to a CUDA PyTorch, loading it aborts the process)."""

import json
import os
import subprocess
import sys

import pytest
from entry_points import REPO, run
from helpers import forbidding, one_line_error, write_image_folder

from harness import backend

TENSORFLOW_CHATTER = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795380305.615150    9413 port.cc:153] oneDNN custom operations are on.",
    "E0000 00:00:1795380309.404886    9413 cuda_platform.cc:52] failed call to cuInit: CUDA error (303)",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow.",
]


def test_chatter_is_dropped_and_everything_else_kept(capfd):
    real = ["LLVM ERROR: Option 'debug-counter' registered more than once!",
            "F0000 00:00:1.0 1 status.cc:1] a fatal check failed", "E0000 00:00:1.0 1 op.cc:1] kernel not found"]
    with backend.native_noise_filtered("testing"):
        os.write(2, "\n".join(TENSORFLOW_CHATTER[:2] + real[:2] + TENSORFLOW_CHATTER[2:] + real[2:]).encode() + b"\n")
    assert capfd.readouterr().err.splitlines() == real


def test_a_python_error_inside_passes_through_and_prints_no_death_notice(capfd):
    with pytest.raises(ValueError, match="raised inside"), backend.native_noise_filtered("testing"):
        raise ValueError("raised inside")
    assert capfd.readouterr().err == ""


@pytest.mark.e2e
def test_a_crash_while_importing_tensorflow_is_reported_not_hidden(tmp_path):
    """The exit code 134 with no message of a CUDA PyTorch beside TensorFlow, reproduced by a stand-in."""
    stand_in = tmp_path / "crashing" / "tensorflow"
    stand_in.mkdir(parents=True)
    chatter = "".join(line + "\\n" for line in TENSORFLOW_CHATTER)
    (stand_in / "__init__.py").write_text(
        f"import os\nos.write(2, b'{chatter}LLVM ERROR: Option registered more than once!\\n')\nos.abort()\n")
    result = run("train.py", "--epochs", 1, "--run-dir", tmp_path / "run",
                 env={"KERAS_BACKEND": "tensorflow", "PYTHONPATH": str(tmp_path / "crashing")})
    assert result.returncode != 0
    assert result.stderr.splitlines() == ["LLVM ERROR: Option registered more than once!",
                                          "error: the process died while importing TensorFlow (its own last words "
                                          "are above, if it left any)"]


@pytest.mark.parametrize("backend_name", ["jax", "torch"])
@pytest.mark.e2e
@pytest.mark.backend
def test_training_evaluation_and_report_never_import_tensorflow(tmp_path, backend_name):
    pytest.importorskip(backend_name)
    env = {"KERAS_BACKEND": backend_name, "PYTHONPATH": forbidding(tmp_path / "no_tensorflow", "tensorflow")}
    folder = write_image_folder(tmp_path / "images")
    # (as on the GPU machines, which have JAX and no TensorFlow: batches from memory, mixing and drop-path included)
    trained = run("train.py", "--preset", "vit_test", "--data-dir", folder, "--epochs", 2, "--batch-size", 4,
                  "--mixing", "cutmix", "--drop-path-rate", 0.1, "--run-dir", tmp_path / "run", env=env)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["backend"] == backend_name
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["backend"] == backend_name and "tensorflow" not in manifest["versions"]
    for script, arguments in [("evaluate.py", []), ("visualize.py", ["--out", tmp_path / "report"])]:
        result = run(script, tmp_path / "run", *arguments, env=env)
        assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "report" / "report.md").exists()
    recomputed = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())["accuracy"]
    assert recomputed == pytest.approx(json.loads((tmp_path / "run" / "metrics.json").read_text())["test_accuracy"],
                                       abs=1e-6)


@pytest.mark.e2e
@pytest.mark.backend
def test_tfds_on_another_backend_says_to_use_a_folder(tmp_path):
    pytest.importorskip("jax")
    line = one_line_error(run("train.py", "--dataset", "cifar10", "--epochs", 1, "--run-dir", tmp_path / "run",
                              env={"KERAS_BACKEND": "jax"}))
    assert "needs the TensorFlow backend" in line and "--data-dir" in line


# Every script that starts Keras in its own process.
SCRIPTS = ("train.py", "evaluate.py", "visualize.py", "compare.py", "benchmark.py", "scaling.py",
           "tools/profile_step.py")


@pytest.mark.parametrize("script", SCRIPTS)
@pytest.mark.e2e
def test_an_unknown_backend_is_one_line_and_exit_2_even_for_help(script):
    result = run(script, "--help", env={"KERAS_BACKEND": "nonsense"})
    assert one_line_error(result) == ("error: KERAS_BACKEND=nonsense is not a Keras backend; use one of tensorflow, "
                                      "jax, torch, or unset it for TensorFlow")
    assert result.stdout == ""  # refused before the options were parsed


@pytest.mark.e2e
def test_a_keras_json_naming_no_backend_is_one_line(tmp_path):
    (tmp_path / "keras.json").write_text(json.dumps({"backend": "nonsense"}))
    env = {name: value for name, value in os.environ.items() if name != "KERAS_BACKEND"}
    result = subprocess.run([sys.executable, str(REPO / "train.py"), "--help"], capture_output=True, text=True,
                            env={**env, "KERAS_HOME": str(tmp_path)})
    line = one_line_error(result)
    assert f"{tmp_path / 'keras.json'} names the backend 'nonsense', which is not a Keras backend" in line
