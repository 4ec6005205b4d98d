"""The data-scaling claim: nested stratified subsets, and the sweep that trains, resumes and plots."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from entry_points import REPO, run
from helpers import one_line_error, run_train, write_image_folder

from harness.data import Split, nested_subset
from harness.reporting.scaling import summarise


def test_subsets_are_nested_and_stratified():
    labels = np.repeat(np.arange(4), [300, 300, 300, 100])  # one class a third the size of the others
    split = Split(np.zeros((1000, 1, 1, 3), np.uint8), labels, np.arange(1000).astype(str))
    chosen = [set(nested_subset(split, n, seed=3).sources) for n in (8, 40, 200, 1000)]
    assert all(small <= large for small, large in zip(chosen, chosen[1:]))  # nested
    for n, members in zip((8, 40, 200, 1000), chosen):
        counts = np.bincount(labels[[int(i) for i in members]], minlength=4)
        assert len(members) == n and np.all(np.abs(counts - n * np.array([0.3, 0.3, 0.3, 0.1])) <= 1)
    assert chosen[1] != set(nested_subset(split, 40, seed=4).sources)  # another seed, another subset


@pytest.mark.trains
def test_train_size_trains_on_a_recorded_subset_with_the_same_validation_split(tmp_path):
    folder = write_image_folder(tmp_path / "images", per_class=(20, 2))
    configs = []
    for size in (6, 30):
        result = run_train("--preset", "vit_test", "--data-dir", folder, "--train-size", size, "--epochs", 1,
                           "--batch-size", 4, "--run-dir", tmp_path / f"n{size}")
        assert result.returncode == 0, result.stderr[-2000:]
        configs.append(json.loads((tmp_path / f"n{size}" / "config.json").read_text()))
    small, large = (c["split_sizes"]["train_per_class"] for c in configs)
    assert sum(small) == 6 and sum(large) == 30  # classes hold 17-19 images after the validation split:
    assert max(small) - min(small) <= 1 and all(abs(count - 10) <= 1 for count in large)  # each gets its share
    assert configs[0]["split_sizes"]["validation"] == configs[1]["split_sizes"]["validation"] == 6
    assert configs[0]["train_size"] == 6
    line = one_line_error(run_train("--preset", "vit_test", "--data-dir", folder, "--train-size", 100, "--epochs", 1,
                                    "--run-dir", tmp_path / "too_many"))
    assert "--train-size 100 is more than the 54 training images" in line


def sweep(folder, out, *extra):
    return run("scaling.py", "--data-dir", folder, "--vit-preset", "vit_test", "--cnn-preset", "resnet_test",
               "--sizes", 9, 30, "--batch-size", 8, "--out", out, *extra)


@pytest.mark.trains
def test_a_smoke_sweep_trains_every_size_writes_the_figure_and_continues_where_it_stopped(tmp_path):
    folder = write_image_folder(tmp_path / "images", per_class=(20, 3))
    out = tmp_path / "sweep"
    result = sweep(folder, out)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads((out / "scaling.json").read_text())["runs"]
    assert sorted((r["model"], r["train_images"]) for r in rows) == [("cnn", 9), ("cnn", 30), ("vit", 9), ("vit", 30)]
    assert (out / "scaling.png").stat().st_size > 5_000 and "| 30 |" in (out / "scaling.md").read_text()
    steps = [json.loads((out / "runs" / f"vit-n{n}-s0" / "config.json").read_text()) for n in (9, 30)]
    assert steps[0]["steps"] == steps[1]["steps"] and steps[0]["epochs"] > steps[1]["epochs"]  # same compute
    again = sweep(folder, out)
    assert again.returncode == 0 and again.stdout.count("finished earlier, kept") == 4
    assert "holds another sweep" in one_line_error(sweep(folder, out, "--seeds", 1))
    report = run("visualize.py", "--sweep", out, "--out", tmp_path / "report")
    assert report.returncode == 0, report.stderr[-2000:]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Data scaling" in text and "(tmp)" not in text and (tmp_path / "report" / "scaling.png").exists()


@pytest.mark.e2e
def test_a_killed_sweep_resumes_the_run_it_was_in(tmp_path):
    """One size: the ViT's run (the sweep's first) is killed after its first checkpoint."""
    folder = write_image_folder(tmp_path / "images", per_class=(40, 3))
    out = tmp_path / "sweep"
    command = [sys.executable, str(REPO / "scaling.py"), "--data-dir", str(folder), "--vit-preset", "vit_test",
               "--cnn-preset", "resnet_test", "--sizes", "90", "--batch-size", "4", "--out", str(out)]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    target = out / "runs" / "vit-n90-s0" / "checkpoint.weights.h5"
    deadline = time.time() + 300
    while time.time() < deadline and not target.exists():
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert target.exists() and not (out / "runs" / "vit-n90-s0" / "metrics.json").exists()
    continued = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert continued.returncode == 0, continued.stderr[-2000:]
    assert "resuming" in continued.stdout  # (finished runs are kept: the smoke sweep above)
    assert len(json.loads((out / "scaling.json").read_text())["runs"]) == 2


def test_summary_is_mean_and_sample_standard_deviation_over_seeds():
    rows = [{"model": "vit", "preset": "p", "train_images": 10, "test_accuracy": a} for a in (0.5, 0.7)]
    (row,) = summarise(rows)
    assert (row["test_accuracy_mean"] == pytest.approx(0.6)
            and row["test_accuracy_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1)))


@pytest.mark.parametrize("sizes, message", [(["2"], "--sizes 2 is fewer than the 3 classes; give at least 3"),
                                            (["5", "999"], "--sizes 999 is more than the")])
def test_sizes_that_cannot_train_are_refused_before_the_sweep_folder_is_written(tmp_path, sizes, message):
    folder = write_image_folder(tmp_path / "images", per_class=(8, 2))
    result = run("scaling.py", "--data-dir", folder, "--vit-preset", "vit_test", "--cnn-preset", "resnet_test",
                 "--recipe", "smoke", "--sizes", *sizes, "--out", tmp_path / "sweep")
    assert message in one_line_error(result) and "--train-size" not in result.stderr
    assert not (tmp_path / "sweep").exists()
