"""Fixtures every test file may use; markers checked against what each test does; the slowest files first.

Helpers that test files share are in tests/helpers.py (a conftest is not for importing).
"""

import json
import os
import pathlib
import shlex
import subprocess
import sys

import keras
import pytest
from helpers import forbidding, write_image_folder

from harness import backend

backend.start()


@pytest.fixture(autouse=True)
def float32_policy_and_seed():
    """Every test starts in float32 with a fixed seed, whatever the previous test set."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(1234)
    yield
    keras.mixed_precision.set_global_policy("float32")


@pytest.fixture
def image_folder(tmp_path):
    return write_image_folder(tmp_path / "images")


@pytest.fixture
def jax_without_tensorflow(tmp_path):
    """Environment variables for a subprocess on JAX that must not import TensorFlow, like the GPU machines."""
    pytest.importorskip("jax")
    return {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": forbidding(tmp_path / "no_tensorflow", "tensorflow")}


# ---- Markers by what a test does (pyproject.toml), checked as each test runs ----

# The fast subset leaves out each of these: pytest -m "not e2e and not trains and not backend".
DOES = {"trains": "fits a model in this process (keras.Model.fit)",
        "e2e": "starts a fresh Python process",
        "backend": "starts a process on another Keras backend"}


@pytest.fixture(autouse=True)
def marked_for_what_it_does(request):
    """Fails a test that fits a model or starts a Python process without the marker that says so, so that the
    markers stay true and the fast subset fast. (A fit in a module-scoped fixture happens before this starts
    watching: the tests that use such a fixture carry its `trains` by hand.)"""
    done = set()
    fit, start = keras.Model.fit, subprocess.Popen.__init__

    def fitting(self, *args, **kwargs):
        done.add("trains")
        return fit(self, *args, **kwargs)

    def starting(self, args, *more, **options):
        done.update(what_a_process_does(args, options, caller=sys._getframe(1)))
        start(self, args, *more, **options)

    patches = pytest.MonkeyPatch()
    patches.setattr(keras.Model, "fit", fitting)
    patches.setattr(subprocess.Popen, "__init__", starting)
    try:
        yield
    finally:
        patches.undo()
    unsaid = [name for name in DOES if name in done and not request.node.get_closest_marker(name)]
    if unsaid:
        pytest.fail(f"this test {' and '.join(DOES[name] for name in unsaid)}: mark it "
                    f"{', '.join(f'@pytest.mark.{name}' for name in unsaid)} (pyproject.toml's markers)", pytrace=False)


def what_a_process_does(args, options, caller):
    """The markers that subprocess.Popen(args, **options), called from `caller`, asks for: `e2e` for a Python
    process, and `backend` too where it starts Keras on another backend. Other programs (git, ruff) are quick."""
    command = shlex.split(args) if isinstance(args, str) else [args] if isinstance(args, (bytes, os.PathLike)) \
        else list(args)
    program = os.fsdecode(options.get("executable") or (command[0] if command else ""))
    if not (program == sys.executable or os.path.basename(program).startswith("python")):
        return set()
    if pathlib.Path(caller.f_code.co_filename).resolve() == pathlib.Path(backend.__file__).resolve():
        return set()  # the filter of TensorFlow's start-up lines: a few lines of Python that import nothing
    environment = options["env"] if options.get("env") is not None else os.environ
    chosen = environment.get("KERAS_BACKEND")
    return {"e2e", "backend"} if chosen in backend.BACKENDS and chosen != keras.backend.backend() else {"e2e"}


# ---- Parallel workers, the slowest files first ----

# Seconds per test file (its tests' setup, call and teardown) as last measured: `pytest --record-durations`
# writes them. With --dist loadscope (pyproject.toml) each file runs on one worker, in the order collected, so
# the slowest start first and none runs alone at the end.
DURATIONS = pathlib.Path(__file__).with_name("durations.json")
durations_key = pytest.StashKey[dict]()  # what read_durations gave, in each process


def pytest_xdist_auto_num_workers(config):
    """-n auto: one worker per core, at most 4 (each holds TensorFlow). A worker waiting for a command-line run
    leaves its core to that run; a third worker on 2 cores made seven of the files 8-14% slower, not faster."""
    return min(os.cpu_count() or 1, 4)


def pytest_addoption(parser):
    parser.addoption("--record-durations", action="store_true",
                     help=f"write each test file's measured seconds into tests/{DURATIONS.name} at the end of a run "
                          "that finished (files it did not run keep theirs); whole files only: not with -k, -m, "
                          "--lf, --deselect, --sw or FILE::TEST")


def pytest_configure(config):
    config.stash[durations_key] = read_durations()  # a damaged file stops the run here, in one line
    if config.getoption("record_durations", default=False) and not hasattr(config, "workerinput"):  # not on workers
        partial = whole_files_only(config)
        if partial:
            raise pytest.UsageError(f"--record-durations measures whole test files; {partial}")
        config.pluginmanager.register(DurationRecorder(config), "record-durations")


def read_durations():
    """{test file as pytest names it (tests/test_x.py): seconds}; empty until a run records them."""
    try:
        seconds = json.loads(DURATIONS.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as error:
        raise pytest.UsageError(f"{DURATIONS} cannot be read ({error}); write it again with pytest "
                                "--record-durations, or delete it") from None
    if not (isinstance(seconds, dict) and all(isinstance(value, (int, float)) for value in seconds.values())):
        raise pytest.UsageError(f"{DURATIONS} is not a JSON object of test files and seconds; write it again with "
                                "pytest --record-durations, or delete it")
    return seconds


def whole_files_only(config):
    """Why this run would not measure whole files, or None."""
    for option, flag in (("keyword", "-k"), ("markexpr", "-m"), ("lf", "--lf"), ("deselect", "--deselect"),
                         ("stepwise", "--sw")):
        if config.getoption(option, default=None):
            return f"{flag} runs part of them"
    if any("::" in argument for argument in config.args):
        return "FILE::TEST runs part of a file"
    return None


def file_of(nodeid):
    """The test file of a node id, as tests/durations.json names it."""
    return nodeid.partition("::")[0]


def pytest_collection_modifyitems(config, items):
    """The slowest files first, by DURATIONS; files not measured yet after them, in the order collected. A file's
    own tests keep their order (the sort is stable)."""
    seconds = config.stash[durations_key]
    items.sort(key=lambda item: -seconds.get(file_of(item.nodeid), -1))


class DurationRecorder:
    """Sums each file's seconds from the test reports (with pytest-xdist, on the controller, which receives every
    worker's reports) and writes DURATIONS when the run has finished, failures or not."""

    def __init__(self, config):
        self.config, self.seconds, self.said = config, {}, None

    def pytest_runtest_logreport(self, report):
        self.seconds[file_of(report.nodeid)] = self.seconds.get(file_of(report.nodeid), 0.0) + report.duration

    def pytest_sessionfinish(self, session, exitstatus):
        if exitstatus not in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED) or session.shouldstop \
                or session.shouldfail:
            self.said = (f"{DURATIONS.name} not rewritten: the run did not finish ({pytest.ExitCode(exitstatus).name}"
                         f"{', stopped early' if session.shouldstop or session.shouldfail else ''})")
            return
        root = self.config.rootpath
        recorded = {path: seconds for path, seconds in self.config.stash[durations_key].items()
                    if (root / path).is_file()}  # a file deleted or renamed since goes
        recorded.update({path: round(seconds, 1) for path, seconds in self.seconds.items()})
        staging = DURATIONS.with_name(f".{DURATIONS.name}.{os.getpid()}")
        staging.write_text(json.dumps(dict(sorted(recorded.items())), indent=1) + "\n")
        os.replace(staging, DURATIONS)  # whole or not at all
        self.said = f"recorded the durations of {len(self.seconds)} test files in {DURATIONS}"

    def pytest_terminal_summary(self, terminalreporter):
        if self.said:
            terminalreporter.write_line(self.said)
