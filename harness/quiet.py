"""Keeps TensorFlow's start-up log lines (oneDNN, CUDA probing, CPU features) off the console.

TensorFlow writes them from C++ before any log level applies, and students read them as errors.
"""

import contextlib
import importlib.util
import os


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
