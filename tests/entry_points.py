"""Running the command lines (train.py, evaluate.py, ...) as a user does, and seeing what they print.

By default in this process: the same `main(argv)`, exit code and stdout/stderr lines as a fresh process,
without paying the seconds each one spends importing TensorFlow. A test that needs a process of its own
(an environment of its own, a backend, virtual devices, a signal, a native crash) asks for one with
`fresh_process=True`, or gets one by passing an `env` that differs from this process's.
"""

import contextlib
import importlib
import io
import os
import pathlib
import signal
import subprocess
import sys
import traceback

REPO = pathlib.Path(__file__).resolve().parents[1]


def run(script, *arguments, env=None, cwd=REPO, fresh_process=False):
    """`python script arguments` from `cwd`; a subprocess.CompletedProcess either way."""
    arguments = [str(argument) for argument in arguments]
    if fresh_process or not _as_here(env or {}) or _needs_devices_of_its_own(arguments):
        return subprocess.run([sys.executable, str(REPO / script), *arguments], capture_output=True, text=True,
                              cwd=cwd, env={**os.environ, **(env or {})})
    return _run_here(script, arguments, cwd)


def _as_here(env):
    """Whether `env` only restates this process's environment and backend (a test parametrized by backend)."""
    import keras

    return all(keras.backend.backend() == value if name == "KERAS_BACKEND" else os.environ.get(name) == value
               for name, value in env.items())


def _needs_devices_of_its_own(arguments):
    """Virtual CPU devices must exist before the backend starts, and a job joins its processes at start."""
    given = dict(zip(arguments, arguments[1:]))
    return given.get("--devices", "1") != "1" or "--multi-host" in arguments


def _run_here(script, arguments, cwd):
    import keras

    stdout, stderr, returncode = io.StringIO(), io.StringIO(), 0
    saved = os.getcwd(), sys.argv, signal.getsignal(signal.SIGTERM)
    try:
        os.chdir(cwd)
        sys.argv = [str(REPO / script), *arguments]  # argparse names the program from it
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            try:
                importlib.import_module(pathlib.Path(script).stem).main(arguments)  # as test_hostile_options
            except SystemExit as exit:
                returncode = _exit_code(exit.code, stderr)
            except Exception:  # as Python does at the top of a process: the traceback, exit code 1
                traceback.print_exc(file=stderr)
                returncode = 1
    finally:
        os.chdir(saved[0])
        sys.argv = saved[1]
        signal.signal(signal.SIGTERM, saved[2])  # cli_main installs its own
        keras.mixed_precision.set_global_policy("float32")
        keras.backend.clear_session()
    return subprocess.CompletedProcess([script, *arguments], returncode, stdout.getvalue(), stderr.getvalue())


def _exit_code(code, stderr):
    if code is None or isinstance(code, int):
        return code or 0
    print(code, file=stderr)  # sys.exit("message") prints it and exits 1
    return 1
