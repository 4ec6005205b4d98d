"""Starting Keras and its backend: quietly, and with one clear line when the backend cannot load.

TensorFlow writes start-up lines (oneDNN, CUDA probing, CPU features) from C++ before any log
level applies, and students read them as errors. Keras takes seconds to import, so the command
lines parse and check their options first and call `start()` only when there is work to do.
"""

import contextlib
import importlib.util
import os

from harness.errors import UserError

# KERAS_BACKEND value -> the package it needs, and how to install it.
BACKENDS = {
    "tensorflow": ("tensorflow", "pip install -r requirements.txt"),
    "jax": ("jax", "pip install jax==0.10.2 jaxlib==0.10.2"),
    "torch": ("torch", "pip install torch==2.13.0 (a CPU build)"),
}


@contextlib.contextmanager
def native_stderr_silenced():
    """Sends what C/C++ code writes to stderr to /dev/null meanwhile; Python exceptions still raise."""
    saved_stderr, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
        os.close(devnull)


def silence_tensorflow_startup():
    """Imports TensorFlow, if installed, without its start-up log lines."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if importlib.util.find_spec("tensorflow") is None:
        return
    with native_stderr_silenced():
        try:
            import tensorflow
        except ImportError:  # a broken or stand-in install: the harness then runs without TensorFlow
            return
        tensorflow.config.list_physical_devices("GPU")  # the CUDA probe logs an error on CPU machines
    # Its Python logger warns about function retracing when a report predicts with several models and
    # batch shapes: harmless here, and read as errors.
    tensorflow.get_logger().setLevel("ERROR")


def start():
    """Imports Keras on the backend KERAS_BACKEND names (TensorFlow by default), quietly.

    Raises UserError, one line, when KERAS_BACKEND names no backend or one that is not installed.
    """
    requested = os.environ.get("KERAS_BACKEND")
    if requested is not None and requested not in BACKENDS:
        raise UserError(f"KERAS_BACKEND={requested} is not a Keras backend; use one of {', '.join(BACKENDS)}, "
                        "or unset it for TensorFlow")
    if requested is not None and importlib.util.find_spec(BACKENDS[requested][0]) is None:
        raise _missing(requested)
    silence_tensorflow_startup()
    try:
        import keras
    except ImportError as error:  # installed but unusable, e.g. a stand-in or a broken build
        backend = requested or "tensorflow"
        if getattr(error, "name", None) == BACKENDS[backend][0]:
            raise _missing(backend) from None
        raise UserError(f"Keras could not start its {backend} backend ({error}); reinstall it with "
                        f"{BACKENDS[backend][1]}, or choose another with KERAS_BACKEND") from None
    return keras


def _missing(backend):
    package, install = BACKENDS[backend]
    return UserError(f"KERAS_BACKEND={backend} needs {package}, which is not installed: {install}, "
                     "or unset KERAS_BACKEND to use TensorFlow")
