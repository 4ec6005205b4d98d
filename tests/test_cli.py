"""train.py end to end, as a user runs it, on data the test writes itself."""

import csv
import json
import pickle

import numpy as np
import pytest
from helpers import run_train, write_cifar_batch


@pytest.mark.parametrize("model, preset", [("vit", "vit_test"), ("cnn", "resnet_test")])
@pytest.mark.trains
def test_training_fills_the_run_directory(image_folder, tmp_path, model, preset):
    run_dir = tmp_path / "run"
    result = run_train(
        "--model", model, "--preset", preset, "--data-dir", image_folder, "--epochs", 2,
        "--batch-size", 4, "--val-fraction", 0.2, "--run-dir", run_dir,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "patch embedding" in result.stdout or "stem" in result.stdout  # the parameter breakdown
    summary = result.stdout.strip().splitlines()[-1]
    assert summary.startswith(f"done: {model} {preset} |") and "test accuracy" in summary

    config = json.loads((run_dir / "config.json").read_text())
    assert config["model"] == model and config["preset"] == preset and config["epochs"] == 2
    assert config["class_names"] == ["cat", "dog", "frog"]
    assert config["split_sizes"] == {"train": 14, "validation": 4, "test": 9, "train_per_class": [4, 5, 5]}
    with open(run_dir / "history.csv") as file:
        rows = list(csv.DictReader(file))
    assert [row["epoch"] for row in rows] == ["1", "2"]
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "seconds"):
        assert float(rows[-1][column]) >= 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in ("test_accuracy", "test_loss", "params", "train_seconds", "images_per_second"):
        assert key in metrics
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["params"] == config["params"]
    assert (run_dir / "model.keras").stat().st_size > 0


@pytest.mark.trains
def test_cifar_batches_and_default_run_name(tmp_path):
    """The CIFAR batch source through the command line, with the default runs/<recipe> folder."""
    batches = tmp_path / "cifar-10-batches-py"
    batches.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    for index in range(5):
        write_cifar_batch(batches / f"data_batch_{index + 1}", images[3 * index : 3 * index + 3], [0, 1, 2])
    write_cifar_batch(batches / "test_batch", images[15:], [0, 1, 2, 0, 1])
    with open(batches / "batches.meta", "wb") as file:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)]}, file)
    result = run_train("--model", "cnn", "--preset", "resnet_test", "--data-dir", batches, "--epochs", 1,
                       "--batch-size", 4, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert run_dir.name.startswith("cnn-resnet_test-cifar10-e1-lr0.1-wd0.005-crop_flip-s0-")
    assert (run_dir / "metrics.json").exists()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--epochs", "0"], "--epochs: 0 must be greater than 0"),
        (["--batch-size", "two"], "--batch-size: 'two' is not an integer"),
        (["--learning-rate", "-1"], "--learning-rate: -1 must be greater than 0"),
        (["--model", "mlp"], "argument --model: invalid choice: 'mlp'"),
        (["--preset", "vit_huge"], "unknown vit preset 'vit_huge'"),
        (["--dataset", "imagenet"], "unknown dataset 'imagenet'"),
        (["--image-size", "30"], "image size 30 is not divisible by patch size 4"),
        (["--data-dir", "/nonexistent/folder"], "--data-dir /nonexistent/folder does not exist"),
        (["--model", "cnn", "--drop-path-rate", "0.1"], "--drop-path-rate is a ViT option"),
        (["--recipe", "huge"], "argument --recipe: invalid choice: 'huge'"),
        (["--mixing-alpha", "0"], "--mixing-alpha: 0 must be greater than 0"),
    ],
)
def test_bad_input_prints_one_line_and_exits_2(tmp_path, arguments, message):
    epochs = [] if "--epochs" in arguments else ["--epochs", "1"]
    result = run_train(*arguments, *epochs, "--run-dir", tmp_path / "run", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


@pytest.mark.trains
def test_a_finished_run_is_not_overwritten(image_folder, tmp_path):
    run_dir = tmp_path / "run"
    arguments = ("--preset", "vit_test", "--data-dir", image_folder, "--epochs", 1, "--batch-size", 4,
                 "--run-dir", run_dir)
    assert run_train(*arguments).returncode == 0
    refused = run_train(*arguments)
    assert refused.returncode == 2 and "already holds a run" in refused.stderr
    assert run_train(*arguments, "--overwrite").returncode == 0


def test_help_explains_every_option():
    result = run_train("--help")
    assert result.returncode == 0
    for option in ("--model", "--preset", "--dataset", "--data-dir", "--epochs", "--batch-size", "--learning-rate",
                   "--seed", "--precision", "--run-dir"):
        assert option in result.stdout
    assert "vit_b16" in result.stdout and "resnet20" in result.stdout
