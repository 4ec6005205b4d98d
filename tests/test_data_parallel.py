"""train.py --devices N: data parallelism with keras.distribution (JAX) and tf.distribute (TensorFlow), tested
on N virtual CPU devices: the same numbers as one device on the same global batch, variables replicated and
batches split, exact resume after a kill, evaluation and refusals."""

import csv
import json
import os
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
from entry_points import REPO, run
from helpers import kill_after_first_checkpoint, one_line_error, write_image_folder

from harness.errors import UserError

BACKENDS = ["tensorflow", pytest.param("jax", marks=pytest.mark.backend)]  # TensorFlow: this process's backend


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("dp") / "images", per_class=(20, 3))


def history(run_dir):
    with open(run_dir / "history.csv") as file:
        return [{k: float(row[k]) for k in ("loss", "cross_entropy", "val_loss", "val_accuracy")}
                for row in csv.DictReader(file)]


def train(images, run_dir, backend, *extra):
    result = run("train.py", "--preset", "vit_test", "--data-dir", images, "--epochs", 2, "--batch-size", 8,
                 "--augmentation", "none", "--run-dir", run_dir, *extra, env={"KERAS_BACKEND": backend})
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.fixture(scope="module")
def two_device_run(images, tmp_path_factory):
    """backend -> its two-device run, trained once for the module (one worker runs all of it): the one-device
    run and the two-process job compare with it."""
    made = {}

    def on(backend):
        if backend not in made:
            made[backend] = tmp_path_factory.mktemp(f"two-devices-{backend}") / "run"
            result = train(images, made[backend], backend, "--devices", 2)
            assert "data parallel: 2 devices" in result.stdout
        return made[backend]

    return on


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.e2e
@pytest.mark.trains
def test_two_devices_give_one_devices_numbers(images, tmp_path, backend, two_device_run):
    pytest.importorskip(backend)
    two = two_device_run(backend)
    train(images, tmp_path / "one", backend)
    for one_epoch, two_epoch in zip(history(tmp_path / "one"), history(two), strict=True):
        assert two_epoch == pytest.approx(one_epoch, rel=1e-4, abs=1e-5)
    config = json.loads((two / "config.json").read_text())
    assert config["devices"] == "2" and config["placement"]["count"] == 2
    assert config["placement"]["per_device_batch"] == 4
    assert json.loads((two / "manifest.json").read_text())["placement"]["count"] == 2
    evaluated = run("evaluate.py", two, env={"KERAS_BACKEND": backend})  # on one device
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    accuracy = json.loads((two / "eval" / "metrics.json").read_text())["accuracy"]
    assert accuracy == pytest.approx(json.loads((two / "metrics.json").read_text())["test_accuracy"])


@pytest.mark.e2e
def test_a_batchnorm_cnn_trains_and_evaluates_on_two_tensorflow_devices(images, tmp_path):
    """An uneven last evaluation batch would leave a device without images, which breaks BatchNorm there:
    it is padded (weighted 0), and the test accuracy counts the real images only."""
    result = run("train.py", "--model", "cnn", "--preset", "resnet_test", "--data-dir", images, "--epochs", 1,
                 "--batch-size", 8, "--devices", 2, "--run-dir", tmp_path / "run")
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert round(metrics["test_accuracy"] * 9) == pytest.approx(metrics["test_accuracy"] * 9)  # k of 9 images
    evaluated = run("evaluate.py", tmp_path / "run")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())["accuracy"] == pytest.approx(
        metrics["test_accuracy"])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.e2e
def test_variables_are_replicated_and_batches_split(backend):
    pytest.importorskip(backend)
    probe = subprocess.run([sys.executable, "tests/data_parallel_probe.py"], cwd=REPO, capture_output=True, text=True,
                           env={**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO)})
    assert probe.returncode == 0, probe.stderr[-3000:]
    found = json.loads(probe.stdout.strip().splitlines()[-1])
    assert found["variable_devices"] == [2]  # every variable on both devices
    assert found["batch_shards"] == [[4, 32, 32, 3]] * 2  # each device holds half of the batch (JSON: lists)
    if backend == "jax":
        assert found["variables_replicated"]
    else:
        assert found["replicas"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.e2e
def test_a_two_device_run_killed_mid_epoch_resumes_exactly(images, tmp_path, backend):
    pytest.importorskip(backend)
    # (TensorFlow with MixUp/CutMix resumes, but not to the bit: tf.distribute rewrites the mixing pipeline)
    mixing = ["--mixing", "cutmix"] if backend == "jax" else []
    # JAX's epochs here take tenths of a second: with 4 the whole run once ended in the half second before the kill
    epochs = 8 if backend == "jax" else 4
    arguments = ["--preset", "vit_test", "--data-dir", images, "--epochs", epochs, "--batch-size", 4, *mixing,
                 "--devices", 2]
    env = {**os.environ, "KERAS_BACKEND": backend}
    reference = subprocess.run([sys.executable, str(REPO / "train.py"), *map(str, arguments), "--run-dir",
                                str(tmp_path / "reference")], capture_output=True, text=True, env=env)
    assert reference.returncode == 0, reference.stderr[-2000:]
    os.environ["KERAS_BACKEND"] = backend  # kill_after_first_checkpoint starts train.py with this environment
    try:
        kill_after_first_checkpoint(tmp_path / "killed", *arguments, "--run-dir", tmp_path / "killed")
    finally:
        del os.environ["KERAS_BACKEND"]
    resumed = subprocess.run([sys.executable, str(REPO / "train.py"), "--resume", str(tmp_path / "killed")],
                             capture_output=True, text=True, env=env)
    assert resumed.returncode == 0 and "resuming" in resumed.stdout, resumed.stderr[-2000:]
    assert history(tmp_path / "killed") == history(tmp_path / "reference")


@pytest.mark.parametrize("arguments, message", [
    (["--devices", 2, "--batch-size", 7], "--batch-size 7 does not split evenly across 2 devices; use a multiple of 2, "
                                          "e.g. 6 or 8"),
    (["--devices", 64], "--devices 64: there is no GPU here, and virtual CPU devices stop at one per core"),
])
@pytest.mark.e2e
def test_devices_that_cannot_be_had_are_one_line(images, tmp_path, arguments, message):
    line = one_line_error(run("train.py", "--preset", "vit_test", "--data-dir", images, "--epochs", 1,
                              "--run-dir", tmp_path / "run", *arguments))
    assert message in line


@pytest.mark.e2e
@pytest.mark.backend
def test_pytorch_says_it_has_no_data_parallelism(images, tmp_path):
    pytest.importorskip("torch")
    line = one_line_error(run("train.py", "--preset", "vit_test", "--data-dir", images, "--epochs", 1, "--devices", 2,
                              "--run-dir", tmp_path / "run", env={"KERAS_BACKEND": "torch"}))
    assert "not available on the PyTorch backend" in line


@pytest.mark.e2e
@pytest.mark.backend
def test_the_dry_run_prints_the_mesh_and_trains_nothing(tmp_path):
    pytest.importorskip("jax")
    result = run("train.py", "--devices", 2, "--batch-size", 8, "--dry-run", "--run-dir", tmp_path / "run",
                 env={"KERAS_BACKEND": "jax"})
    assert result.returncode == 0, result.stderr[-2000:]
    assert ("would train on 2 devices (cpu:0, cpu:1) with keras.distribution.DataParallel, 4 images each per step; "
            "global batch 8") in result.stdout
    assert not (tmp_path / "run").exists()


def unused_port():
    with socket.socket() as probe:
        probe.bind(("localhost", 0))
        return probe.getsockname()[1]  # nobody listens there once the probe closes


@pytest.mark.e2e
@pytest.mark.backend
def test_a_multi_host_dry_run_never_joins_and_an_unreachable_coordinator_is_one_line_in_time(tmp_path):
    pytest.importorskip("jax")
    job = {"KERAS_BACKEND": "jax", "JAX_COORDINATOR_ADDRESS": f"localhost:{unused_port()}", "JAX_NUM_PROCESSES": "2",
           "JAX_PROCESS_ID": "1"}
    dry = run("train.py", "--multi-host", "--dry-run", "--run-dir", tmp_path / "run", env=job)
    assert dry.returncode == 0 and "would train on 1 device" in dry.stdout, dry.stderr[-2000:]
    started = time.monotonic()
    line = one_line_error(run("train.py", "--multi-host", "--join-timeout", "2s", "--run-dir", tmp_path / "run",
                              env=job))
    assert f"could not reach the job's coordinator at {job['JAX_COORDINATOR_ADDRESS']} within 2 s" in line
    assert "--join-timeout" in line and time.monotonic() - started < 60 and not (tmp_path / "run").exists()


def test_a_dry_run_still_says_multi_host_needs_jax():
    from harness import backend
    from harness.training import devices

    if backend.chosen_backend() == "jax":
        pytest.skip("on JAX a multi-host dry run is allowed")
    with pytest.raises(UserError, match="--multi-host runs on JAX's jax.distributed; set KERAS_BACKEND=jax"):
        devices.start("1", multi_host=True, join=False)


def test_in_a_multi_host_job_each_process_feeds_its_slice_of_every_batch():
    from harness.data import Split
    from harness.training.array_pipeline import EvaluationBatches, TrainingBatches

    rng = np.random.default_rng(0)
    split = Split(rng.integers(0, 256, (20, 8, 8, 3)), np.arange(20) % 3)
    whole = TrainingBatches(split, 3, 8, first_epoch=2, seed=1, mixing="mixup")
    parts = [TrainingBatches(split, 3, 8, first_epoch=2, seed=1, mixing="mixup", shard=(i, 2)) for i in range(2)]
    for step in range(len(whole)):
        for array, *shares in zip(whole[step], *(part[step] for part in parts)):
            np.testing.assert_array_equal(np.concatenate(shares), array)
    evaluation = [EvaluationBatches(split, 3, 8, multiple=4, shard=(i, 2)) for i in range(2)]
    last = [part[2] for part in evaluation]  # 4 real images padded to 4: two per process
    assert [len(images) for images, _, _ in last] == [2, 2]
    assert np.concatenate([weights for _, _, weights in last]).tolist() == [1, 1, 1, 1]


@pytest.mark.e2e
@pytest.mark.backend
def test_two_processes_train_as_one_job_with_the_numbers_of_one_process(images, tmp_path, two_device_run):
    """Multi-host JAX on this one machine: two processes of one CPU device each, joined by jax.distributed
    (gloo collectives), train as one job, and give the numbers of one process on two devices."""
    pytest.importorskip("jax")
    arguments = [sys.executable, str(REPO / "train.py"), "--preset", "vit_test", "--data-dir", str(images),
                 "--epochs", "2", "--batch-size", "8", "--augmentation", "none"]  # as train() has it
    single = two_device_run("jax")  # one process on two devices
    with socket.socket() as probe:  # a free port for process 0's coordinator
        probe.bind(("localhost", 0))
        port = probe.getsockname()[1]
    job = {**os.environ, "KERAS_BACKEND": "jax", "JAX_COORDINATOR_ADDRESS": f"localhost:{port}",
           "JAX_NUM_PROCESSES": "2", "JAX_CPU_COLLECTIVES_IMPLEMENTATION": "gloo"}
    processes = [subprocess.Popen([*arguments, "--devices", "all", "--multi-host", "--run-dir", str(tmp_path / "job")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**job, "JAX_PROCESS_ID": str(index)}) for index in range(2)]
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs[0][1][-2000:] + outputs[1][1][-2000:]
    assert "process 0 of 2 feeds 4 images per step" in outputs[0][0]
    assert history(tmp_path / "job") == history(single)
    placement = json.loads((tmp_path / "job" / "config.json").read_text())["placement"]
    assert placement["processes"] == 2 and placement["count"] == 2
