"""One process per run folder: a second train.py into a folder in use refuses, naming the first; the lock
of a process that is gone is taken over, said in one line."""

import os
import signal
import subprocess
import sys
import time

import pytest
from entry_points import REPO
from helpers import one_line_error, run_train

from harness.errors import UserError
from harness.training.run_dir import RunDirectory


def test_a_folder_in_use_is_refused_naming_the_holder_and_free_again_after(tmp_path):
    holder = RunDirectory(tmp_path / "run")
    holder.path.mkdir()
    holder.lock()  # another open file: to the OS, as if another process held it
    with pytest.raises(UserError, match=f"run directory .*run is in use by process {os.getpid()} on .*; wait for it"):
        RunDirectory.create(tmp_path / "run", overwrite=True)  # not even --overwrite takes it
    holder.unlock()
    assert not holder.lock_path.exists()
    RunDirectory.create(tmp_path / "run").unlock()


def test_using_a_run_that_another_process_is_training_says_it_is_in_use_not_how_to_resume(tmp_path):
    from harness.training.run_dir import open_finished_run

    trainer = RunDirectory(tmp_path / "run")
    trainer.path.mkdir()
    trainer.config_path.write_text("{}")
    trainer.checkpoint_path.write_bytes(b"an epoch")  # what a resuming train.py has, before model.keras
    trainer.lock()  # another open file: to the OS, as if another process held it
    with pytest.raises(UserError, match=f"is in use by process {os.getpid()} on .*, which is training it; wait"):
        open_finished_run(trainer.path)
    trainer.unlock()
    with pytest.raises(UserError, match="did not finish .* continue it with python train.py --resume"):
        open_finished_run(trainer.path)


def test_the_lock_of_a_process_that_ended_is_taken_over_in_one_line(tmp_path, capsys):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").write_text("process 4194000 on elsewhere\n")  # killed: its note stayed
    run = RunDirectory.create(tmp_path / "run")
    assert capsys.readouterr().err == (f"note: {tmp_path / 'run'} was locked by process 4194000 on elsewhere, "
                                       "which has ended; taking it over\n")
    assert (tmp_path / "run" / ".lock").read_text().startswith(f"process {os.getpid()} on ")
    run.unlock()


def test_a_folder_whose_lock_cannot_be_written_is_one_line(tmp_path):
    run = RunDirectory(tmp_path / "run")
    run.lock_path.mkdir(parents=True)  # unwritable as a file even for root, like a read-only folder
    with pytest.raises(UserError, match=r"cannot write in run directory .*run \(Is a directory\); make it writable"):
        run.lock()


@pytest.mark.e2e
def test_a_second_train_py_into_the_same_folder_refuses_and_the_first_finishes_alone(image_folder, tmp_path):
    run_dir = tmp_path / "run"
    arguments = ["--preset", "vit_test", "--data-dir", str(image_folder), "--batch-size", "4",
                 "--run-dir", str(run_dir)]
    first = subprocess.Popen([sys.executable, str(REPO / "train.py"), *arguments, "--epochs", "200"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True)
    assert wait_for(run_dir / ".lock"), "the first train.py never locked its run folder"
    second = run_train(*arguments, "--epochs", 2, "--overwrite")
    assert f"is in use by process {first.pid} on " in one_line_error(second)
    assert wait_for(run_dir / "history.csv"), "the first train.py stopped training after the refusal"
    os.killpg(first.pid, signal.SIGTERM)
    first.communicate(timeout=60)
    rows = [line.split(",")[0] for line in (run_dir / "history.csv").read_text().splitlines()[1:]]
    assert first.returncode == 143 and rows == [str(epoch) for epoch in range(1, len(rows) + 1)]  # one run's, in order


def wait_for(path, seconds=300):
    """Generous: under a loaded parallel suite a train.py takes minutes to import and compile."""
    deadline = time.time() + seconds
    while time.time() < deadline and not path.exists():
        time.sleep(0.05)
    return path.exists()
