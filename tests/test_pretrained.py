"""Fine-tuning and feature extraction from a released checkpoint, as a student runs them."""

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import keras
import numpy as np
import pytest
from checkpoint_files import bit_arrays, hybrid_arrays, vit_arrays, write
from entry_points import REPO, run
from helpers import one_line_error, run_train, write_image_folder
from keras import ops

import vit_tf  # noqa: F401  (after keras, as a notebook would: registers the layers for load_model)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("pretrained")
    arrays = vit_arrays(grid=8, num_classes=21, representation=16)  # vit_test's size, pre-trained at 32 px
    return dict(root=root, arrays=arrays, checkpoint=write(root / "ViT-test.npz", arrays),
                folder=write_image_folder(root / "food", size=64))


def fine_tune(files, run_dir, *extra):
    return run_train("--recipe", "finetune", "--preset", "vit_test", "--pretrained", files["checkpoint"],
                     "--data-dir", files["folder"], "--image-size", 64, "--steps", 6, "--batch-size", 4,
                     "--run-dir", run_dir, *extra)


@pytest.mark.trains
def test_fine_tuning_a_released_checkpoint_records_it_and_follows_the_papers_recipe(files, tmp_path):
    run_dir = tmp_path / "run"
    result = fine_tune(files, run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "dropped the pre-training head" in result.stdout
    assert "position embeddings interpolated from a 8x8 to a 16x16 patch grid" in result.stdout
    config = json.loads((run_dir / "config.json").read_text())
    digest = hashlib.sha256(files["checkpoint"].read_bytes()).hexdigest()
    assert (config["pretrained_checkpoint"]["sha256"] == digest
            and config["pretrained_checkpoint"]["file"] == "ViT-test.npz")
    assert json.loads((run_dir / "manifest.json").read_text())["pretrained_checkpoint"]["sha256"] == digest
    # The paper's fine-tuning: plain momentum SGD, no weight decay, clipping at 1, no smoothing; 6 steps of
    # 4 images from 16 training images are 2 epochs, the warmup at most a fifth of them.
    assert (config["optimizer"], config["weight_decay"], config["gradient_clip_norm"], config["label_smoothing"]) == \
        ("momentum", 0.0, 1.0, 0.0)
    assert config["epochs"] == 2 and config["warmup_epochs"] == pytest.approx(1.2 / 4)
    classified = run("evaluate.py", run_dir, "--image", next((files["folder"] / "test" / "cat").iterdir()))
    assert classified.returncode == 0 and "cat" in classified.stdout, classified.stderr[-2000:]


@pytest.mark.e2e
@pytest.mark.trains
def test_a_killed_fine_tuning_run_resumes_without_the_released_file(files, tmp_path):
    checkpoint, run_dir = tmp_path / "ViT-test.npz", tmp_path / "run"
    shutil.copy(files["checkpoint"], checkpoint)
    command = [sys.executable, str(REPO / "train.py"), "--recipe", "finetune", "--preset", "vit_test", "--pretrained",
               str(checkpoint), "--data-dir", str(files["folder"]), "--image-size", "64", "--steps", "40",
               "--batch-size", "4", "--run-dir", str(run_dir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoint.weights.h5").exists():
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (run_dir / "checkpoint.weights.h5").exists() and not (run_dir / "metrics.json").exists()
    checkpoint.unlink()  # the released file is gone, or on another machine
    resumed = run_train("--resume", run_dir)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs_trained"] == 10


@pytest.mark.trains
def test_freeze_backbone_trains_only_the_new_head(files, tmp_path):
    run_dir = tmp_path / "run"
    result = fine_tune(files, run_dir, "--freeze-backbone")
    assert result.returncode == 0, result.stderr[-2000:]
    model = keras.saving.load_model(run_dir / "model.keras")
    query = ops.convert_to_numpy(model.get_layer("encoder_block_1").attention.query.kernel)
    stored = files["arrays"]["Transformer/encoderblock_1/MultiHeadDotProductAttention_1/query/kernel"]
    np.testing.assert_array_equal(query, stored.reshape(16, 16))  # the encoder did not move
    projection = ops.convert_to_numpy(model.get_layer("patch_embedding").projection.kernel)
    np.testing.assert_array_equal(projection, files["arrays"]["embedding/kernel"].reshape(48, 16))
    assert np.any(ops.convert_to_numpy(model.get_layer("head").kernel))  # the zero head learned


def test_a_checkpoint_of_another_size_is_refused_before_the_data_loads(files, tmp_path):
    other = write(tmp_path / "ViT-mini.npz", vit_arrays(hidden=128, layers=3, mlp=256, heads=4))
    line = one_line_error(run_train("--preset", "vit_test", "--pretrained", other, "--data-dir", tmp_path / "missing",
                                    "--run-dir", tmp_path / "run"))
    assert "use --model vit --preset vit_cifar_mini" in line  # answered before the missing --data-dir was reached


@pytest.mark.parametrize("arguments, message", [
    (["--recipe", "finetune"], "--recipe finetune fine-tunes a released checkpoint; add --pretrained"),
    (["--freeze-backbone"], "--freeze-backbone trains only the head"),
    (["--model", "cnn", "--pretrained", "README.md"], "resnet20 is a BatchNorm ResNet; use a BiT preset"),
    (["--model", "cnn", "--recipe", "finetune"], "--recipe finetune fine-tunes a released checkpoint"),
    (["--model", "hybrid", "--teacher", "runs"], "the hybrid has none (use --model vit)"),
    (["--pretrained", "README.md"], "is not an .npz file"),
])
def test_pretrained_options_that_do_not_fit_are_one_line(tmp_path, arguments, message):
    assert message in one_line_error(run_train(*arguments, "--epochs", 1, "--run-dir", tmp_path / "run"))


@pytest.mark.trains
def test_compare_sets_a_fine_tuned_vit_beside_the_cnn(files, tmp_path):
    folder = write_image_folder(tmp_path / "images")
    result = run("compare.py", "--pretrained", files["checkpoint"], "--vit-preset", "vit_test", "--cnn-preset",
                 "resnet_test", "--epochs", 1, "--batch-size", 4, "--data-dir", folder, "--out", tmp_path / "out")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "== training vit vit_test (finetune recipe)" in result.stdout
    report = (tmp_path / "out" / "report" / "report.md").read_text()
    assert "| vit vit_test pretrained |" in report and "| cnn resnet_test |" in report


@pytest.mark.parametrize("model, preset, arrays, stem_key, said", [
    ("hybrid", "hybrid_test", lambda: hybrid_arrays(grid=8, num_classes=21), "conv_root/kernel",
     "position embeddings interpolated from a 8x8 to a 16x16 patch grid"),
    ("cnn", "bit_test", lambda: bit_arrays(num_classes=21), "resnet/root_block/standardized_conv2d/kernel",
     "dropped the pre-training head (head/conv2d/bias, head/conv2d/kernel)"),
], ids=["hybrid", "bit"])
@pytest.mark.trains
def test_the_hybrid_and_bit_fine_tune_from_their_released_files(files, tmp_path, model, preset, arrays, stem_key, said):
    stored = arrays()
    checkpoint = write(tmp_path / f"{model}.npz", stored)
    run_dir = tmp_path / "run"
    result = run_train("--model", model, "--recipe", "finetune", "--preset", preset, "--pretrained", checkpoint,
                       "--data-dir", files["folder"], "--image-size", 64, "--steps", 4, "--batch-size", 4,
                       "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr[-2000:]
    assert said in result.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert config["pretrained_checkpoint"]["sha256"] == hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    expected = {"hybrid": ("momentum", 0.01), "cnn": ("momentum", 0.003)}[model]  # ViT's protocol; BiT-HyperRule
    assert (config["optimizer"], config["learning_rate"]) == expected
    root = ops.convert_to_numpy(keras.saving.load_model(run_dir / "model.keras").get_layer("conv_root").kernel)
    np.testing.assert_allclose(root, stored[stem_key], atol=0.05)  # fine-tuned from the file's weights (std 0.5)
    # A fresh process loads the saved model (its weight-standardised convolutions registered) and classifies.
    classified = run("evaluate.py", run_dir, "--image", next((files["folder"] / "test" / "cat").iterdir()))
    assert classified.returncode == 0 and "cat" in classified.stdout, classified.stderr[-2000:]
