import os

import keras
import numpy as np
import pytest

from harness import backend

backend.start()


def numpy_of(x):
    """A backend tensor as a numpy array (PyTorch's need detaching first)."""
    return np.asarray(keras.ops.convert_to_numpy(x))


@pytest.fixture(autouse=True)
def float32_policy_and_seed():
    """Every test starts in float32 with a fixed seed, whatever the previous test set."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")


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


@pytest.fixture
def image_folder(tmp_path):
    return write_image_folder(tmp_path / "images")


def hiding(folder, *packages):
    """PYTHONPATH for a subprocess in which importing `packages` fails as if they were not installed."""
    for name in packages:
        stand_in = folder / name
        stand_in.mkdir(parents=True)
        (stand_in / "__init__.py").write_text(f'raise ModuleNotFoundError("No module named {name}", name="{name}")\n')
    return str(folder)


def forbidding(folder, package):
    """PYTHONPATH for a subprocess that dies with exit code 97, saying so, if anything imports `package`."""
    stand_in = folder / package
    stand_in.mkdir(parents=True)
    (stand_in / "__init__.py").write_text(f"import os, sys, traceback\nsys.stderr.write('{package} was imported\\n')\n"
                                          "traceback.print_stack()\nsys.stderr.flush()\nos._exit(97)\n")
    return str(folder)


@pytest.fixture
def jax_without_tensorflow(tmp_path):
    """Environment variables for a subprocess on JAX that must not import TensorFlow, like the GPU machines."""
    pytest.importorskip("jax")
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": forbidding(tmp_path / "no_tensorflow", "tensorflow")}


# Markers by file, so that a contributor can run a fast subset: pytest -m "not e2e and not backend".
# END_TO_END: each runs the command lines (train.py, evaluate.py, ...) in fresh processes.
END_TO_END = {"test_cli", "test_user_errors", "test_reliability", "test_data_parallel", "test_pretrained",
              "test_scaling", "test_distillation_runs", "test_export", "test_native_crash", "test_data_problems",
              "test_backend_start", "test_notebook", "test_gpu_campaign", "test_visualize", "test_evaluate",
              "test_benchmark", "test_run_lock"}
OTHER_BACKENDS = {"test_other_backends"}  # re-runs the model tests on JAX and PyTorch
# The files that take longest (minutes): the parallel workers start them first, so none runs alone at the end.
LONGEST_FIRST = ("test_data_parallel", "test_other_backends", "test_benchmark", "test_reliability", "test_fast_path",
                 "test_scaling", "test_gpu_campaign", "test_visualize", "test_pretrained")


def pytest_xdist_auto_num_workers(config):
    """-n auto: one worker per core, at most 4 (each holds TensorFlow). A worker waiting for a command-line run
    leaves its core to that run; a third worker on 2 cores made seven of the files 8-14% slower, not faster."""
    return min(os.cpu_count() or 1, 4)


def module_name(item):
    return item.module.__name__.rpartition(".")[2]


def pytest_collection_modifyitems(items):
    rank = {name: position for position, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(module_name(item), len(rank)))  # stable: a file's own order stays
    for item in items:
        module = module_name(item)
        if module in END_TO_END:
            item.add_marker(pytest.mark.e2e)
        if module in OTHER_BACKENDS:
            item.add_marker(pytest.mark.backend)
