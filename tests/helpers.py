"""What more than one test file uses: data the tests write themselves, train.py runs and what they keep.

A helper that one file uses stays in that file. Running any entry point as a user does is
`tests/entry_points.py`; the paper's equations in numpy, `tests/numpy_reference.py`.
"""

import csv
import os
import pickle
import signal
import subprocess
import sys
import time

import numpy as np
from entry_points import REPO, run

# The columns of history.csv that must come out the same after a kill and a resume.
LOSS_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")


def numpy_of(x):
    """A backend tensor as a numpy array (PyTorch's need detaching first)."""
    import keras

    return np.asarray(keras.ops.convert_to_numpy(x))


def write_image_folder(root, classes=("cat", "dog", "frog"), per_class=(6, 3), size=32, seed=0):
    """DIR/train/<class>/*.png and DIR/test/<class>/*.png, each class a different colour."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, count in zip(("train", "test"), per_class):
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in range(count):
                pixels = rng.integers(0, 40, (size, size, 3)) + 100 * np.eye(3, dtype=int)[label % 3]
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{index}.png")
    return root


def write_png_header(path, width, height):
    """A PNG that declares width x height pixels (and holds none): enough for Pillow to judge its size."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IEND", b""))
    return path


def write_cifar_batch(path, images, labels, label_key="labels"):
    """A batch in the original layout: (n, 3072) uint8, all red values, then green, then blue."""
    data = images.transpose(0, 3, 1, 2).reshape(len(images), -1)
    with open(path, "wb") as file:
        pickle.dump({b"data": data, label_key.encode(): list(labels), b"batch_label": b"test"}, file, protocol=2)


def forbidding(folder, package):
    """PYTHONPATH for a subprocess that dies with exit code 97, saying so, if anything imports `package`."""
    stand_in = folder / package
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(f"import os, sys, traceback\nsys.stderr.write('{package} was imported\\n')\n"
                                          "traceback.print_stack()\nsys.stderr.flush()\nos._exit(97)\n")
    return str(folder)


def run_train(*arguments, cwd=REPO, backend=None, fresh_process=False):
    """train.py with `arguments`, as tests/entry_points.py runs it (in this process unless it must not be)."""
    return run("train.py", *arguments, cwd=cwd, env={"KERAS_BACKEND": backend} if backend else None,
               fresh_process=fresh_process)


def one_line_error(result):
    """The one line a user-caused error prints, after checking that it is one line with exit code 2."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    return lines[0]


def losses(run_dir):
    """A run's history.csv rows, the LOSS_COLUMNS only."""
    with open(run_dir / "history.csv") as file:
        return [{k: row[k] for k in LOSS_COLUMNS} for row in csv.DictReader(file)]


def kill_after_first_checkpoint(run_dir, *train_arguments):
    """Starts train.py, SIGKILLs it half a second into its second epoch; returns the epochs it had finished."""
    command = [sys.executable, str(REPO / "train.py"), *map(str, train_arguments)]
    epochs = int(command[command.index("--epochs") + 1]) if "--epochs" in command else float("inf")
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    while time.time() < deadline and not (run_dir / "checkpoint.weights.h5").exists():
        time.sleep(0.05)
    time.sleep(0.5)  # into the second epoch
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert (run_dir / "checkpoint.weights.h5").exists() and not (run_dir / "metrics.json").exists()
    finished = len(losses(run_dir))
    assert 1 <= finished < epochs
    return finished
