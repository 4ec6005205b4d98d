"""The preflight line: what a run will cost, and warnings for settings far past the data or the machine."""

import signal
import subprocess
import sys

import numpy as np
import pytest
from entry_points import REPO
from helpers import run_train

import vit_tf
from harness.data import ImageDataset, Split
from harness.models import MODEL_FAMILIES
from harness.training import preflight
from harness.training.config import TrainConfig, resolve


def test_vit_activation_count_matches_the_formula_written_out():
    model = vit_tf.build_vit("vit_test", num_classes=10)  # P 4, D 16, L 2, M 32, k 2, 32 px: T = 65
    tokens, hidden, mlp, heads = 65, 16, 32, 2
    per_block = tokens * (12 * hidden + 4 * mlp + 2 * heads * tokens)
    assert vit_tf.activations_per_image(model) == tokens * (4 * 4 * 3 + 2 * hidden) + 2 * per_block


def fake_dataset(count, size=32, source_size=32):
    images = np.zeros((count, size, size, 3), np.uint8)
    split = Split(images, np.arange(count) % 2)
    return ImageDataset("fake", ["a", "b"], split, split, source_size=source_size)


def estimate(preset, image_size=None, batch_size=128, images=1000, source_size=32, model="vit"):
    config = resolve(TrainConfig(model=model, preset=preset, image_size=image_size, batch_size=batch_size, epochs=2))
    family = MODEL_FAMILIES[model]
    network = family.build(config.preset, image_size=config.image_size, num_classes=2)
    architecture = family.resolve_config(config.preset, config.image_size, 2)
    dataset = fake_dataset(images, source_size=source_size)
    return preflight.check(network, family, architecture, config, dataset,
                           min(images, batch_size * (images // batch_size) or images),
                           "float32", False, "CPU")


def test_upscaled_images_are_warned_about_with_a_size_that_would_not_upscale():
    report = estimate("vit_cifar_mini", image_size=224, images=8, batch_size=8)
    assert report.tokens == 56 * 56 + 1
    (upscaled,) = [w for w in report.warnings if "upscaled" in w]
    assert "from about 32 px to 224 px: 49x the pixels" in upscaled and "3,137 tokens per image" in upscaled
    assert "--image-size 32 would not upscale them" in upscaled
    assert not [w for w in estimate("vit_cifar_mini", images=8, batch_size=8).warnings if "upscaled" in w]


def test_a_batch_larger_than_the_data_and_memory_past_the_machine_are_warned_about(monkeypatch):
    report = estimate("vit_test", batch_size=512, images=100)
    assert any("--batch-size 512 is more than the 100 training images" in w for w in report.warnings)
    monkeypatch.setattr(preflight, "free_host_bytes", lambda: 10_000_000)  # 10 MB free
    report = estimate("vit_test", batch_size=100, images=100)
    (memory,) = [w for w in report.warnings if "activations" in w]
    assert "more than this CPU has free (10.0 MB); lower --batch-size or --image-size" in memory
    assert (report.activation_bytes
            == vit_tf.activations_per_image(vit_tf.build_vit("vit_test", num_classes=2)) * 100 * 4)


def test_the_preflight_line_states_tokens_parameters_flops_memory_and_time():
    report = estimate("resnet_test", model="cnn", batch_size=10, images=100)
    line = report.line(batch_size=10, epochs=2)
    assert report.tokens is None and "tokens" not in line
    assert (line.startswith("preflight: 5,210 parameters, ") and "per batch of 10" in line
            and "for 2 epochs on this CPU" in line)
    assert report.seconds_per_epoch > 0 and report.dataset_bytes == 2 * 100 * 32 * 32 * 3


def test_a_paper_preset_on_the_sample_is_warned_about():
    report = estimate("vit_b16", images=8, batch_size=8)  # at its own 224 px
    assert report.tokens == 197
    assert any("upscaled from about 32 px to 224 px" in warning for warning in report.warnings)


@pytest.mark.e2e
@pytest.mark.trains
def test_costly_settings_on_the_sample_are_warned_about_before_the_first_step(tmp_path):
    """A reported example (the other, --preset vit_b16, above): warnings print before training; stopped then,
    the folder is reusable."""
    run_dir = tmp_path / "run"
    process = subprocess.Popen([sys.executable, str(REPO / "train.py"), "--preset", "vit_cifar_mini", "--image-size",
                                "224", "--run-dir", str(run_dir)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if line.startswith("warning: a batch of") or len(seen) > 200:
            break
    process.send_signal(signal.SIGTERM)
    output = "".join(seen) + process.communicate(timeout=120)[0]
    assert process.returncode == 143, output[-2000:]
    preflight_line = next(line for line in output.splitlines() if line.startswith("preflight: "))
    assert "3,137 tokens per image" in output, output[-2000:]
    assert "warning: a batch of 128 needs about" in output  # far past this machine's memory
    assert "per epoch" in preflight_line
    assert "before epoch 1 finished, so no epoch is saved; a new run may use" in output
    reused = run_train("--preset", "vit_test", "--epochs", 1, "--run-dir", run_dir)
    assert reused.returncode == 0, reused.stderr[-2000:]
