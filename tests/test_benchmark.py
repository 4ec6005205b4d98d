"""benchmark.py as a user runs it: it measures, prints a table and writes JSON (no speed is asserted)."""

import csv
import importlib.util
import json
import os

import keras
import pytest
from entry_points import REPO, run
from helpers import run_train

from harness.errors import UserError
from harness.training.manifest import cpu_description


def run_benchmark(*arguments, env=None):
    return run("benchmark.py", *arguments, env=env)


@pytest.mark.e2e
@pytest.mark.backend
def test_side_by_side_measures_ours_the_baseline_and_the_peers(tmp_path):
    if any(importlib.util.find_spec(peer) is None for peer in ("keras_hub", "timm")):
        pytest.skip("pip install -r requirements-peers.txt")
    out = tmp_path / "bench.json"
    result = run_benchmark("--model", "vit:vit_test", "--model", "cnn:resnet_test", "--side-by-side",
                           "--peers", "keras-hub", "timm", "--batch-size", 8, "--warmup-steps", 1, "--steps", 2,
                           "--gelu", "tanh", "--out", out)  # --gelu reaches our ViT and leaves the CNN alone
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    names = [row["name"] for row in report["results"]]
    assert names == ["vit:vit_test", "cnn:resnet_test", "baseline:vit_test", "keras-hub:vit_test", "timm:vit_test",
                     "timm:resnet_test"]
    ours, cnn, baseline, keras_hub, timm, timm_resnet = report["results"]
    # The same architectures as ours: timm's ResNet-v2 counts BatchNorm's moving statistics, as Keras does.
    for mine, peer, name in ((ours, keras_hub, "keras-hub"), (ours, timm, "timm"), (cnn, timm_resnet, "timm")):
        assert peer["params"] == mine["params"] and peer["train_images_per_second"] > 0, peer
        assert peer["forward_gflops_per_image"] == mine["forward_gflops_per_image"]
        assert report["speedup_over_peers"][mine["name"]][name] == {
            "train_ratio": pytest.approx(mine["train_images_per_second"] / peer["train_images_per_second"], abs=0.01),
            "eval_ratio": pytest.approx(mine["eval_images_per_second"] / peer["eval_images_per_second"], abs=0.01),
            "params_agree": True}
        assert f"{mine['name']} ÷ {name}: " in result.stdout
    assert "skipping keras-hub:resnet_test: keras-hub's ResNetBackbone always starts with ImageNet's" in result.stdout
    assert timm["input_pipeline"] == "PyTorch eager; no augmentation" and keras_hub["jit_compile"] is False
    assert timm["precision"] == keras_hub["precision"] == ours["precision"]  # each resolves --precision as ours
    assert {"keras_hub", "timm", "torch", "tensorflow"} <= set(report["environment"]["versions"])
    assert report["environment"]["machine"].endswith(f"({cpu_description()})")  # speeds differ several-fold by CPU
    assert len(report["environment"]["load_average_at_start"]) == 3
    assert ours["params"] > 0 and ours["train_images_per_second"] > 0 and ours["eval_images_per_second"] > 0
    assert baseline["forward_gflops_per_image"] == ours["forward_gflops_per_image"]  # same architecture
    assert baseline["jit_compile"] is False and baseline["precision"] == "float32"
    # The authors' tanh GELU by default; Keras' "gelu", keras-hub's and timm's are the erf form.
    assert (ours["gelu"], baseline["gelu"], keras_hub["gelu"], timm["gelu"], cnn["gelu"]) == (
        "tanh", "exact", "exact", "exact", None)
    assert report["speedup_over_baseline"]["vit:vit_test"] == pytest.approx(
        ours["train_images_per_second"] / baseline["train_images_per_second"], rel=0.01)
    assert report["environment"]["backend"] == "tensorflow" and "keras" in report["environment"]["versions"]
    assert "baseline:vit_test" in result.stdout and "trains" in result.stdout


def test_the_cpu_is_named_by_its_model_and_widest_vector_instructions(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    core = "model name\t: AMD EPYC 9B14\nflags\t\t: fpu sse avx avx2 avx512f avx512_bf16\n"
    cpuinfo.write_text(f"processor\t: 0\n{core}\nprocessor\t: 1\n{core}")
    assert cpu_description(cpuinfo) == "AMD EPYC 9B14, AVX-512 BF16"
    cpuinfo.write_text("model name\t: AMD EPYC\nflags\t\t: fpu sse avx avx2\n")
    assert cpu_description(cpuinfo) == "AMD EPYC, AVX2"
    assert cpu_description(tmp_path / "absent")  # not Linux: what platform knows, never an error


@pytest.mark.e2e
@pytest.mark.backend
def test_side_by_side_runs_with_jax_where_tensorflow_is_not_installed(tmp_path, jax_without_tensorflow):
    out = tmp_path / "bench.json"
    result = run_benchmark("--model", "vit:vit_test", "--side-by-side", "--batch-size", 8, "--warmup-steps", 1,
                           "--steps", 2, "--out", out, env=jax_without_tensorflow)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["environment"]["backend"] == "jax" and "tensorflow" not in report["environment"]["versions"]
    ours, baseline = report["results"]
    assert ours["jit_compile"] is True and ours["input_pipeline"].startswith("PyDataset")
    assert baseline["input_pipeline"] == "PyDataset from host memory; augmentation on the CPU"
    assert ours["nan_guard"] == "async" and baseline["nan_guard"] is None


@pytest.mark.e2e
@pytest.mark.backend
def test_the_fast_path_switches_reach_the_measurement(tmp_path, jax_without_tensorflow):
    """What the GPU campaign compares: batches made on the device or sent from the host, and mixing, with the
    NaN guard as training runs it; each row says what it measured."""
    out = tmp_path / "bench.json"
    result = run_benchmark("--model", "vit:vit_test", "--batch-size", 8, "--warmup-steps", 1, "--steps", 2,
                           "--mixing", "cutmix", "--data-on-device", "on", "--augmentation", "none", "--gelu", "exact",
                           "--out", out, env=jax_without_tensorflow)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    (row,) = report["results"]
    assert (row["mixing"], row["nan_guard"], report["settings"]["augmentation"], row["gelu"]) == (
        "cutmix", "async", "none", "exact")
    assert row["input_pipeline"] == "on the device; no augmentation"  # as the peers are timed


@pytest.mark.trains
def test_the_profile_of_a_step_names_every_part(monkeypatch, capsys):
    """tools/profile_step.py (docs/benchmarking.md, "Where the time goes"), here on the test size."""
    import runpy

    if keras.backend.backend() != "tensorflow":
        pytest.skip("the profile times TensorFlow functions")
    for precision in ("float32", "mixed_bfloat16"):
        monkeypatch.setattr("sys.argv", ["profile_step.py", "--preset", "vit_test", "--batch-size", "4",
                                         "--precision", precision])
        try:
            runpy.run_path(str(REPO / "tools" / "profile_step.py"), run_name="__main__")
        finally:
            keras.mixed_precision.set_global_policy("float32")
        lines = capsys.readouterr().out.splitlines()
        assert lines[0].startswith(f"vit_test, batch 4, {precision}, TensorFlow ")
        timed = {line[:40].strip(): float(line[40:]) for line in lines[1:]}
        assert list(timed) == ["whole training step", "forward", "forward + backward", "AdamW update",
                               "one encoder block, fwd + bwd (x2)", "attention", "its q, k, v, output products alone",
                               "MLP (with GELU)", "its two products alone", "its GELU alone", "one LayerNorm (x2)"]
        assert all(milliseconds > 0 for milliseconds in timed.values())


def test_rounds_give_the_median_and_the_range_and_a_missing_peer_is_one_line(monkeypatch):
    import benchmark
    from harness.benchmarking import variants

    rounds = [{"name": "vit:p", "train_images_per_second": rate, "eval_images_per_second": rate * 3}
              for rate in (30.0, 10.0, 20.0)]
    row = benchmark.median_of_rounds(rounds)
    assert (row["train_images_per_second"], row["eval_images_per_second"]) == (20.0, 60.0)
    assert row["train_range"] == [10.0, 30.0] and row["rounds"] == 3
    assert benchmark.median_of_rounds(rounds[:1])["train_range"] is None
    assert variants.parse_variant("timm:resnet20") == ("timm", "resnet20")  # timm has ViTs and ResNets
    with pytest.raises(UserError, match="unknown preset 'resnet20' in 'keras-hub:resnet20'"):
        variants.parse_variant("keras-hub:resnet20")
    with monkeypatch.context() as installed:
        installed.setattr(variants, "missing_peer", lambda kind: None)
        rows, skipped = variants.peer_rows(["keras-hub", "timm"], ["cnn", "vit:vit_test"])  # cnn: its default preset
    assert rows == ["keras-hub:vit_test", "timm:resnet20", "timm:vit_test"] and len(skipped) == 1
    assert skipped[0].startswith("skipping keras-hub:resnet20: keras-hub's ResNetBackbone")
    monkeypatch.setitem(variants.PEER_MODULES, "timm", "no_such_module_here")
    assert variants.missing_peer("timm") == ("skipping timm: no_such_module_here is not installed "
                                             "(pip install -r requirements-peers.txt)")
    assert variants.peer_rows(["timm"], ["cnn", "vit:vit_test"]) == ([], [variants.missing_peer("timm")])


@pytest.mark.trains
def test_time_to_accuracy_reads_finished_runs(tmp_path):
    run_dir = tmp_path / "run"
    trained = run_train("--preset", "vit_test", "--epochs", 2, "--batch-size", 64, "--run-dir", run_dir)
    assert trained.returncode == 0, trained.stderr
    out = tmp_path / "runs.json"
    result = run_benchmark("--runs", run_dir, "--target", 0.01, "--out", out)
    assert result.returncode == 0, result.stderr
    (row,) = json.loads(out.read_text())["runs"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert row["test_accuracy"] == metrics["test_accuracy"]
    with open(run_dir / "history.csv", newline="") as file:
        first_epoch_seconds = float(next(csv.DictReader(file))["seconds"])
    assert row["seconds_to_val_0.01"] == pytest.approx(first_epoch_seconds, abs=0.1)  # reached after epoch 1


def test_seeds_of_one_recipe_are_summarised_as_mean_and_standard_deviation():
    from harness.benchmarking.time_to_accuracy import mean_and_spread

    rows = [dict(model="vit:a", dataset="d", epochs=5, test_accuracy=acc, train_seconds=10.0 * i)
            for i, acc in enumerate([0.90, 0.92, 0.94])] + [
        dict(model="cnn:b", dataset="d", epochs=5, test_accuracy=0.5, train_seconds=3.0)]
    vit, cnn = mean_and_spread(rows)
    assert (vit["runs"], cnn["runs"]) == (3, 1)
    assert vit["test_accuracy_mean"] == pytest.approx(0.92) and vit["test_accuracy_std"] == pytest.approx(0.02)
    assert vit["train_seconds_mean"] == pytest.approx(10.0) and cnn["test_accuracy_std"] is None


def test_bad_model_names_fail_in_one_line():
    result = run_benchmark("--model", "mlp:big")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: unknown model kind 'mlp'")
    result = run_benchmark("--model", "cnn:resnet_test", "--gelu", "exact")  # the CNN has no GELU to choose
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: --gelu chooses our ViTs' MLP activation")


@pytest.mark.parametrize("backend", ["tensorflow", pytest.param("jax", marks=pytest.mark.backend)])
@pytest.mark.e2e
def test_devices_measures_one_and_n_devices_and_the_scaling_efficiency(tmp_path, backend):
    pytest.importorskip(backend)
    out = tmp_path / "bench.json"
    result = run_benchmark("--model", "vit:vit_test", "--batch-size", 8, "--warmup-steps", 1, "--steps", 2,
                           "--devices", 2, "--out", out, env={**os.environ, "KERAS_BACKEND": backend})
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    one, two = report["results"]
    assert (one["name"], one["devices"], two["name"], two["devices"]) == ("vit:vit_test", 1, "vit:vit_test", 2)
    assert report["scaling_efficiency"]["vit:vit_test"] == pytest.approx(  # kept to 3 decimals
        two["train_images_per_second"] / (2 * one["train_images_per_second"]), abs=5e-4)
    assert "on 2 devices: scaling efficiency" in result.stdout
