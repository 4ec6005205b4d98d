"""tools/gpu_campaign.py rehearsed on the CPU (--quick: test-sized models, one epoch, the embedded sample), on JAX
as on the GPU machine: the queue runs, keeps its evidence without weights, picks the best candidate by validation
accuracy for the extra seeds, summarises, and a second call repeats nothing."""

import json
import pathlib
import subprocess
import sys

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.e2e, pytest.mark.backend]  # every test reads the rehearsal, run on JAX in its own process


def campaign(*args, env):
    return subprocess.run([sys.executable, "tools/gpu_campaign.py", "--quick", *args], cwd=REPO, env=env,
                          capture_output=True, text=True)


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory, jax_env):
    root = tmp_path_factory.mktemp("campaign")
    args = ["--results", str(root / "results"), "--scratch", str(root / "scratch"),
            "--only", "fast-path-vit_test-host-batches", "cnn-*"]
    first = campaign(*args, env=jax_env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    return root / "results", args, first


@pytest.fixture(scope="module")
def jax_env():
    import os

    pytest.importorskip("jax")
    return {**os.environ, "KERAS_BACKEND": "jax"}


def test_each_run_keeps_its_evidence_and_no_weights(rehearsal):
    results, _, _ = rehearsal
    runs = sorted(path.name for path in (results / "runs").iterdir())
    assert runs == ["cnn-best-seed1", "cnn-best-seed2", "cnn-course", "cnn-r18-e15-b512"]  # --quick: two candidates
    for run in runs:
        assert sorted(path.name for path in (results / "runs" / run).iterdir()) == [
            "arguments.json", "command.txt", "config.json", "history.csv", "manifest.json", "metrics.json"]
    assert not [path for path in results.rglob("*") if path.suffix in (".keras", ".h5", ".png", ".npz")]
    (row,) = json.loads((results / "speed" / "fast-path-vit_test-host-batches.json").read_text())["results"]
    assert (row["nan_guard"], row["mixing"]) == ("async", "mixup") and row["input_pipeline"].startswith("PyDataset")


def best_candidate(results):
    """The CNN candidate with the best validation accuracy, the first of equals (both train within 60 s here)."""
    candidates = ["cnn-course", "cnn-r18-e15-b512"]
    metrics = {name: json.loads((results / "runs" / name / "metrics.json").read_text()) for name in candidates}
    return max(candidates, key=lambda name: metrics[name]["best_val_accuracy"])


def test_the_extra_seeds_repeat_the_best_candidate_by_validation_accuracy(rehearsal):
    results, _, _ = rehearsal
    best = best_candidate(results)
    best_arguments = json.loads((results / "runs" / best / "arguments.json").read_text())
    for seed in (1, 2):
        arguments = json.loads((results / "runs" / f"cnn-best-seed{seed}" / "arguments.json").read_text())
        assert arguments == [*best_arguments, "--seed", str(seed)]
        config = json.loads((results / "runs" / f"cnn-best-seed{seed}" / "config.json").read_text())
        assert config["seed"] == seed


def test_the_summary_gives_mean_and_spread_over_the_three_seeds(rehearsal):
    import statistics

    results, _, _ = rehearsal
    text = (results / "README.md").read_text()
    assert "CPU rehearsal (--quick)" in text and "JPEG" not in text
    seed0 = best_candidate(results)
    accuracy = [json.loads((results / "runs" / name / "metrics.json").read_text())["test_accuracy"]
                for name in (seed0, "cnn-best-seed1", "cnn-best-seed2")]
    assert (f"- cnn ({seed0}, seeds 0, 1, 2): test accuracy {statistics.mean(accuracy):.2%} ± "
            f"{statistics.stdev(accuracy):.2%}") in text


def test_a_second_call_goes_on_from_what_is_done(rehearsal, jax_env):
    results, args, _ = rehearsal
    again = campaign(*args, env=jax_env)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "== " not in again.stdout  # nothing ran again
    listing = campaign("--list", "--results", str(results), env=jax_env).stdout.splitlines()
    assert "done  cnn-best-seed2" in listing and "next  vit-course" in listing
