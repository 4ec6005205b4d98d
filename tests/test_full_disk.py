"""A full disk, by fault injection: one line, what was saved before stays whole, no partial files, and
--resume finishes the run once there is space again."""

import errno
import json
import pathlib

import pytest

from harness.errors import UserError, cli_main
from harness.training import run_dir as run_dirs
from harness.training.config import TrainConfig
from harness.training.trainer import resume, train


@pytest.mark.trains
def test_training_stops_before_a_save_the_disk_cannot_hold_and_resumes_once_there_is_room(image_folder, tmp_path,
                                                                                          monkeypatch):
    real = run_dirs.shutil.disk_usage
    saves = []

    def filling_up(path):  # room for the run's first save (epoch 1's checkpoint), none after it
        usage = real(path)
        if pathlib.Path(path) != tmp_path / "run":
            return usage
        saves.append(path)
        return usage._replace(free=usage.free if len(saves) == 1 else 1000)

    monkeypatch.setattr(run_dirs.shutil, "disk_usage", filling_up)
    config = TrainConfig(model="vit", preset="vit_test", data_dir=str(image_folder), epochs=3, batch_size=4,
                         keep="last", run_dir=str(tmp_path / "run"))
    with pytest.raises(UserError, match=r"not enough free space in .*run to save the checkpoint \(about [\d,]+ MB "
                                        r"needed, 0 MB free\); free some space, then continue with: python train.py "
                                        r"--resume .*run$"):
        train(config, verbose=0)
    run = run_dirs.RunDirectory(tmp_path / "run")
    assert run.checkpoint_path.exists() and not run.metrics_path.exists()
    assert not [path.name for path in run.path.iterdir() if ".partial." in path.name or path.suffix == ".tmp"]
    monkeypatch.setattr(run_dirs.shutil, "disk_usage", real)  # space freed
    metrics = resume(tmp_path / "run", verbose=0)
    assert metrics["epochs_trained"] == 3 and len(run.read_history()) == 3


def test_a_json_file_the_disk_cannot_hold_leaves_the_old_one_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "metrics.json"
    run_dirs.write_json(path, {"old": 1})

    def full(self, text, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(self))

    monkeypatch.setattr(run_dirs.pathlib.Path, "write_text", full)
    with pytest.raises(OSError):
        run_dirs.write_json(path, {"new": 2})
    monkeypatch.undo()
    assert json.loads(path.read_text()) == {"old": 1} and sorted(p.name for p in tmp_path.iterdir()) == [path.name]


@pytest.mark.parametrize("error", [OSError(errno.ENOSPC, "No space left on device", "runs/x/model.keras"),
                                   OSError("Unable to synchronously create file ([Errno 28] No space left on device)")],
                         ids=["errno", "h5py-text"])
def test_a_full_disk_anywhere_is_one_line_with_exit_code_2(capsys, error):
    @cli_main(resumable=True)
    def main():
        raise error

    with pytest.raises(SystemExit) as exit_:
        main()
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: the disk is full")
    assert "free some space" in lines[0] and "--resume" in lines[0]


class ResourceExhaustedError(Exception):
    """As TensorFlow raises when a SavedModel export meets a full disk: not an OSError; the text says it."""


def test_the_full_disk_line_offers_only_what_the_command_has_and_covers_tensorflows_error(capsys):
    @cli_main
    def main():
        raise ResourceExhaustedError("saved_model/variables/variables.data-00000-of-00001.tempstate; No space left "
                                     "on device")

    with pytest.raises(SystemExit) as exit_:
        main()
    lines = capsys.readouterr().err.strip().splitlines()
    assert exit_.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: the disk is full")
    assert "--resume" not in lines[0]


@pytest.mark.parametrize("script", ["evaluate.py", "visualize.py", "benchmark.py", "compare.py", "scaling.py"])
def test_only_train_py_promises_resume_on_a_full_disk(script):
    source = (pathlib.Path(__file__).resolve().parents[1] / script).read_text()
    assert "@cli_main\n" in source and "resumable=True" not in source and '"--resume"' not in source


def test_other_os_errors_are_not_called_a_full_disk():
    @cli_main
    def main():
        raise OSError(errno.EIO, "Input/output error")

    with pytest.raises(OSError, match="Input/output error"):
        main()


def test_a_report_interrupted_between_its_renames_leaves_the_earlier_folder_whole(tmp_path, monkeypatch):
    from harness import atomic

    target = tmp_path / "report"
    (target / "images").mkdir(parents=True)
    (target / "report.md").write_text("earlier")
    (target / "images" / "a.png").write_text("kept")
    real_replace = atomic.os.replace

    def interrupted(source, destination):
        if pathlib.Path(destination) == target and ".partial-" in pathlib.Path(source).name:
            raise KeyboardInterrupt
        real_replace(source, destination)

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt), atomic.folder_written_whole(target, carry=["images"]) as staging:
        (staging / "report.md").write_text("new")
    monkeypatch.undo()
    assert (target / "report.md").read_text() == "earlier" and (target / "images" / "a.png").read_text() == "kept"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["report"]  # no staging or earlier folder left
