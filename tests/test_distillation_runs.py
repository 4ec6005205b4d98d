"""Distilled runs from the command line: the teacher recorded, exact resume, teachers refused in one line."""

import hashlib
import json
import shutil

import pytest
from helpers import kill_after_first_checkpoint, losses, run_train, write_image_folder

pytestmark = pytest.mark.trains  # every test uses a teacher trained in this process


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_image_folder(tmp_path_factory.mktemp("data") / "images", per_class=(60, 10))


@pytest.fixture(scope="module")
def teacher(folder, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("teacher") / "cnn"
    result = run_train("--model", "cnn", "--preset", "resnet_test", "--data-dir", folder, "--epochs", 1,
                       "--batch-size", 8, "--run-dir", run_dir)
    assert result.returncode == 0, result.stderr
    return run_dir


def distilled_arguments(folder, teacher, run_dir, *extra):
    return ["--preset", "vit_test", "--data-dir", folder, "--epochs", 4, "--batch-size", 8, "--teacher", teacher,
            "--run-dir", run_dir, *extra]


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_distilled_run_records_its_teacher_and_saves_the_student(folder, teacher, tmp_path):
    teacher_file = digest(teacher / "model.keras")
    run_dir = tmp_path / "distilled"
    result = run_train(*distilled_arguments(folder, teacher, run_dir, "--epochs", 2, "--distillation", "soft"))
    assert result.returncode == 0, result.stderr
    assert f"teacher: cnn resnet_test from {teacher}" in result.stdout and "soft distillation" in result.stdout
    config = json.loads((run_dir / "config.json").read_text())
    assert (config["teacher"], config["distillation"]) == (str(teacher), "soft")
    assert (config["distillation_alpha"], config["distillation_temperature"]) == (0.1, 3.0)  # DeiT's soft defaults
    teacher_metrics = json.loads((teacher / "metrics.json").read_text())
    assert config["teacher_run"]["test_accuracy"] == teacher_metrics["test_accuracy"]
    assert digest(teacher / "model.keras") == teacher_file

    from harness.training.run_dir import RunDirectory, load_model

    student = load_model(RunDirectory(run_dir))
    assert {"distillation_token", "head_distillation", "head_fusion"} <= {layer.name for layer in student.layers}
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["params"] == student.count_params()  # the student alone, not the teacher


@pytest.mark.e2e
def test_a_distilled_run_killed_mid_epoch_resumes_to_the_same_result(folder, teacher, tmp_path):
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert run_train(*distilled_arguments(folder, teacher, reference)).returncode == 0
    kill_after_first_checkpoint(killed, *distilled_arguments(folder, teacher, killed))
    resumed = run_train("--resume", killed)
    assert resumed.returncode == 0, resumed.stderr
    assert losses(killed) == losses(reference)
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (reference, killed)]
    assert metrics[0]["test_loss"] == metrics[1]["test_loss"]


def edited_teacher(teacher, tmp_path, **changes):
    copy = tmp_path / "teacher"
    shutil.copytree(teacher, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, **changes}))
    return copy


@pytest.mark.parametrize(
    "make_arguments, message",
    [
        (lambda f, t, p: ["--model", "cnn", "--preset", "resnet_test", "--data-dir", f, "--teacher", t],
         "--teacher distils into the ViT's distillation token; the cnn has none (use --model vit)"),
        (lambda f, t, p: ["--data-dir", f, "--distillation", "soft"], "need a --teacher RUN_DIR"),
        (lambda f, t, p: ["--data-dir", f, "--teacher", edited_teacher(t, p, image_size=64)],
         "takes 64 px images and the student 32 px"),
        (lambda f, t, p: ["--data-dir", write_image_folder(p / "other", classes=("ant", "bee", "cow")),
                          "--teacher", t], "was trained on other classes (cat, dog, frog, ...)"),
        (lambda f, t, p: ["--data-dir", f, "--teacher", f], "is not a run directory"),
    ],
    ids=["cnn-student", "no-teacher", "image-size", "classes", "not-a-run"],
)
def test_a_teacher_that_cannot_teach_is_refused_in_one_line(folder, teacher, tmp_path, make_arguments, message):
    result = run_train("--preset", "vit_test", "--epochs", 1, "--run-dir", tmp_path / "run",
                       *make_arguments(folder, teacher, tmp_path))
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
