"""Starting Keras and its backend: quietly, and with one clear line when the backend cannot load.

TensorFlow writes start-up lines (oneDNN, CUDA probing, CPU features) from C++ before any log
level applies, and students read them as errors. Keras takes seconds to import, so the command
lines parse and check their options first and call `start()` only when there is work to do.
"""

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import re
import subprocess
import sys

from harness.errors import UserError, not_installed

# KERAS_BACKEND value -> the package it needs, and how to install it.
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install -r requirements.txt"),
    "jax": ("jax", "pip install -r requirements-jax.txt"),
    "torch": ("torch", "pip install torch==2.13.0 (a CPU build)"),
}


# What TensorFlow's C++ side prints on every start: absl log lines at info/warning level, CPU feature
# notes, and the CUDA probe's errors on machines without a GPU. Anything else passes through.
NATIVE_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} |E\d{4} .*(cuInit|cuDNN|cuFFT|cuBLAS|CUDA|TensorRT)"
    r"|To enable the following instructions:|This TensorFlow binary is optimized)"
)
_DONE = "@@harness-native-output-done@@"

# The filter runs in its own process, so that what a crashing import prints last (an LLVM or CUDA
# error before an abort) still reaches the terminal, followed by a line saying what was going on.
_FILTER = """
import re, sys
noise, done, doing = re.compile(sys.argv[1]), sys.argv[2], sys.argv[3]
finished = False
for line in sys.stdin:
    if line.rstrip("\\n") == done:
        finished = True
    elif line.strip() and not noise.match(line):
        sys.stdout.write(line)
        sys.stdout.flush()
if not finished:
    sys.stdout.write(f"error: the process died while {doing} (its own last words are above, if it left any)\\n")
"""


@contextlib.contextmanager
def native_noise_filtered(doing):
    """Drops TensorFlow's start-up chatter from what C/C++ code writes to stderr meanwhile; keeps the rest.

    `doing` completes the line printed if the process dies inside, e.g. "importing TensorFlow".
    """
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    read_end, write_end = os.pipe()
    filter_process = subprocess.Popen([sys.executable, "-c", _FILTER, NATIVE_NOISE.pattern, _DONE, doing],
                                      stdin=read_end, stdout=saved_stderr, stderr=saved_stderr)
    os.close(read_end)
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        os.write(2, f"\n{_DONE}\n".encode())  # reached on success and on Python exceptions alike
        os.dup2(saved_stderr, 2)  # closes the last write end of the pipe: the filter reads to its end
        os.close(saved_stderr)
        filter_process.wait()


def silence_tensorflow_startup():
    """Imports TensorFlow, if installed, without its start-up log lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if importlib.util.find_spec("tensorflow") is None:
        return
    with native_noise_filtered("importing TensorFlow"):
        try:
            import tensorflow
        except ImportError:  # a broken or stand-in install: Keras then says what is wrong
            return
        tensorflow.config.list_physical_devices("GPU")  # the CUDA probe logs an error on CPU machines
    # Its Python logger warns about function retracing when a report predicts with several models and
    # batch shapes: harmless here, and read as errors.
    tensorflow.get_logger().setLevel("ERROR")


class TensorFlowBlocker(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes `import tensorflow` fail as if it were not installed.

    Keras imports TensorFlow wherever it is installed (to seed it, to save a model), even on the JAX
    and PyTorch backends; next to a CUDA PyTorch that import aborts the process, as the LLVMs of
    TensorFlow and Triton clash. So on those backends, TensorFlow is never loaded. (A spec with no
    origin, not None: PyTorch looks TensorFlow up with find_spec, which must not fail.)
    """

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            return importlib.machinery.ModuleSpec(name, self)
        return None

    def create_module(self, spec):
        raise ModuleNotFoundError(f"TensorFlow is not loaded on the {chosen_backend()} backend", name=spec.name)

    def exec_module(self, module):
        pass  # never reached: create_module raises


def _keras_config():
    return os.path.join(os.environ.get("KERAS_HOME") or os.path.expanduser("~/.keras"), "keras.json")


def chosen_backend():
    """The backend Keras will start on: KERAS_BACKEND, else the one in keras.json, else TensorFlow."""
    if "KERAS_BACKEND" in os.environ:
        return os.environ["KERAS_BACKEND"]
    try:
        with open(_keras_config()) as file:
            return json.load(file).get("backend", "tensorflow")
    except (OSError, ValueError, AttributeError):
        return "tensorflow"


def start():
    """Imports Keras on the backend KERAS_BACKEND names (TensorFlow by default), quietly.

    Raises UserError, one line, when KERAS_BACKEND names no backend or one that is not installed.
    """
    check_backend_name()
    requested = os.environ.get("KERAS_BACKEND")
    if requested is not None and importlib.util.find_spec(BACKENDS[requested][0]) is None:
        raise _missing(requested)
    if chosen_backend() == "tensorflow":
        silence_tensorflow_startup()
    elif not any(isinstance(finder, TensorFlowBlocker) for finder in sys.meta_path):
        sys.meta_path.insert(0, TensorFlowBlocker())
    try:
        import keras
    except ImportError as error:  # installed but unusable, e.g. a stand-in or a broken build
        backend = requested or "tensorflow"
        if getattr(error, "name", None) == "keras":
            raise UserError(not_installed("keras")) from None
        if getattr(error, "name", None) == BACKENDS[backend][0]:
            raise _missing(backend) from None
        raise UserError(f"Keras could not start its {backend} backend ({error}); reinstall it with "
                        f"{BACKENDS[backend][1]}, or choose another with KERAS_BACKEND") from None
    return keras


def check_backend_name():
    """Raises UserError, one line, unless Keras would start on one of BACKENDS.

    Keras itself only fails at import, with a ValueError; harness/__init__.py calls this first, so that every
    script refuses an unknown backend before it parses its options (--help included) or imports Keras.
    """
    name = chosen_backend()
    if isinstance(name, str) and name in BACKENDS:
        return
    if "KERAS_BACKEND" in os.environ:
        raise UserError(f"KERAS_BACKEND={name} is not a Keras backend; use one of {', '.join(BACKENDS)}, "
                        "or unset it for TensorFlow")
    raise UserError(f"{_keras_config()} names the backend {name!r}, which is not a Keras backend; write one of "
                    f"{', '.join(BACKENDS)} there, or choose one with KERAS_BACKEND")


def _missing(backend):
    package, install = BACKENDS[backend]
    if backend == "tensorflow":  # the default: most likely the project's environment is not active
        return UserError(not_installed(package))
    return UserError(f"KERAS_BACKEND={backend} needs {package}, which is not installed: {install}, "
                     "or unset KERAS_BACKEND to use TensorFlow")
