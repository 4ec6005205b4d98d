"""Every user-caused error is one line and exit code 2, on every entry point, and answers before Keras loads."""

import json
import os
import sys

import pytest
from entry_points import REPO, run
from helpers import one_line_error, run_train, write_image_folder

ENTRY_POINTS = ("train.py", "evaluate.py", "visualize.py", "compare.py", "benchmark.py")


def hiding(folder, *packages):
    """PYTHONPATH for a subprocess in which importing `packages` fails as if they were not installed."""
    for name in packages:
        stand_in = folder / name
        stand_in.mkdir(parents=True)
        (stand_in / "__init__.py").write_text(f'raise ModuleNotFoundError("No module named {name}", name="{name}")\n')
    return str(folder)


@pytest.mark.parametrize("script", ENTRY_POINTS)
@pytest.mark.e2e
def test_help_and_option_errors_never_import_keras(script, tmp_path):
    """With Keras made unimportable, --help still works and a bad option is still one line."""
    env = {"PYTHONPATH": f"{hiding(tmp_path / 'no_keras', 'keras')}{os.pathsep}{REPO}"}
    helped = run(script, "--help", env=env)
    assert helped.returncode == 0 and "usage:" in helped.stdout, helped.stderr[-2000:]
    assert "error: argument --batch-size" in one_line_error(run(script, "x", "--batch-size", "0", env=env))


@pytest.mark.parametrize("package, arguments", [("tqdm", ["--help"]), ("numpy", ["--epochs", 1]),
                                                 ("keras", ["--epochs", 1]), ("tensorflow", ["--epochs", 1])])
@pytest.mark.e2e
def test_a_missing_requirement_is_one_line_naming_the_environment(tmp_path, package, arguments):
    env = {"PYTHONPATH": hiding(tmp_path / "hidden", package)}
    error = one_line_error(run("train.py", *arguments, "--run-dir", tmp_path / "run", env=env))
    assert f"error: {package} is not installed in the virtual environment" in error and "requirements.txt" in error
    assert not (tmp_path / "run").exists()


def test_outside_a_virtual_environment_the_advice_is_to_activate_it(monkeypatch):
    from harness.errors import not_installed

    monkeypatch.setattr(sys, "base_prefix", sys.prefix)
    assert "activate the project's virtual environment (source .venv/bin/activate)" in not_installed("numpy")


@pytest.mark.parametrize("backend, message, help_exit", [
    ("torch", "KERAS_BACKEND=torch needs torch, which is not installed", 0),  # --help needs no backend
    ("pytorch", "KERAS_BACKEND=pytorch is not a Keras backend", 2),  # a name Keras does not know: refused at once
])
@pytest.mark.e2e
@pytest.mark.backend
def test_a_backend_that_cannot_load_is_one_line(tmp_path, backend, message, help_exit):
    env = {"KERAS_BACKEND": backend, "PYTHONPATH": hiding(tmp_path / "no_torch", "torch")}
    assert run("train.py", "--help", env=env).returncode == help_exit
    assert message in one_line_error(run("train.py", "--epochs", 1, "--run-dir", tmp_path / "run", env=env))
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("content, message", [
    ("{}", "is damaged or was not written by train.py (it lacks model, preset"),
    ("not json", "cannot be read"),
    ('{"model": "vit", "preset": "vit_test", "dataset": "cifar10_sample", "image_size": 32, "epochs": "ten", '
     '"batch_size": 4, "learning_rate": 0.001, "weight_decay": 0.05, "optimizer": "adamw", "warmup_epochs": 0, '
     '"seed": 0, "val_fraction": 0.1}', "epochs is 'ten'; it must be a whole number"),
])
def test_resume_of_a_damaged_config_names_the_file(tmp_path, content, message):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(content)
    line = one_line_error(run_train("--resume", tmp_path / "run"))
    assert str(tmp_path / "run" / "config.json") in line and message in line


def test_an_unwritable_run_directory_is_refused_before_the_data_loads(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    line = one_line_error(run_train("--data-dir", tmp_path / "missing", "--run-dir", blocker / "run"))
    assert f"{blocker} is a file" in line  # the missing --data-dir was not reached
    if os.path.isdir("/proc"):  # a folder nobody, not even root, can create files in
        assert "cannot create files in /proc" in one_line_error(run_train("--run-dir", "/proc/vit-run"))


@pytest.mark.trains
def test_a_run_folder_that_never_trained_an_epoch_can_be_reused(image_folder, tmp_path):
    started = tmp_path / "run"
    started.mkdir()
    (started / "config.json").write_text("{}")
    (started / "manifest.json").write_text("{}")
    result = run_train("--preset", "vit_test", "--data-dir", image_folder, "--epochs", 1, "--batch-size", 4,
                       "--run-dir", started)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads((started / "config.json").read_text())["preset"] == "vit_test"
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "thesis.txt").write_text("mine")
    assert "holds other files (thesis.txt)" in one_line_error(run_train("--run-dir", tmp_path / "notes"))


@pytest.mark.trains
def test_architecture_options_change_the_vit_and_are_checked(tmp_path):
    folder = write_image_folder(tmp_path / "images", size=64)
    result = run_train("--preset", "vit_test", "--data-dir", folder, "--image-size", 64, "--patch-size", 16,
                       "--hidden-dim", 24, "--depth", 1, "--heads", 3, "--mlp-dim", 40, "--epochs", 1,
                       "--batch-size", 4, "--run-dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-2000:]
    architecture = json.loads((tmp_path / "run" / "config.json").read_text())["model_config"]
    assert {k: architecture[k] for k in ("image_size", "patch_size", "hidden_dim", "num_layers", "num_heads",
                                         "mlp_dim")} == dict(image_size=64, patch_size=16, hidden_dim=24, num_layers=1,
                                                             num_heads=3, mlp_dim=40)
    assert "not divisible by 5 heads" in one_line_error(run_train("--heads", 5, "--run-dir", tmp_path / "r2"))
    assert "--patch-size is a ViT option" in one_line_error(
        run_train("--model", "cnn", "--patch-size", 8, "--run-dir", tmp_path / "r3"))


@pytest.fixture(scope="module")
def two_runs_with_different_classes(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    for name, classes in (("three", ("cat", "dog", "frog")), ("two", ("cat", "dog"))):
        folder = write_image_folder(root / f"images_{name}", classes=classes)
        result = run_train("--preset", "vit_test", "--data-dir", folder, "--epochs", 1, "--batch-size", 4,
                           "--run-dir", root / name)
        assert result.returncode == 0, result.stderr[-2000:]
    return root


@pytest.mark.trains
def test_visualize_refuses_runs_of_different_classes_before_writing_anything(two_runs_with_different_classes, tmp_path):
    root = two_runs_with_different_classes
    line = one_line_error(run("visualize.py", root / "three", root / "two", "--out", tmp_path / "report"))
    assert "were trained on different classes" in line
    assert not (tmp_path / "report").exists() and not list(tmp_path.glob(".report*"))


@pytest.mark.trains
def test_evaluate_says_an_unfinished_run_can_be_resumed(two_runs_with_different_classes, tmp_path):
    run_dir = tmp_path / "unfinished"
    run_dir.mkdir()
    (run_dir / "config.json").write_text((two_runs_with_different_classes / "two" / "config.json").read_text())
    (run_dir / "checkpoint.weights.h5").write_bytes(b"")
    assert f"continue it with python train.py --resume {run_dir}" in one_line_error(run("evaluate.py", run_dir))
