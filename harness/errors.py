"""One error type for mistakes a user can fix, and the wrapper that prints them in one line."""

import errno
import functools
import signal
import sys


class UserError(Exception):
    """Bad input from the user: printed as one line, without a traceback."""


class Interrupted(Exception):
    """Training stopped by Ctrl-C or SIGTERM: the message says what is saved and how to continue."""

    def __init__(self, message, terminated=False):
        super().__init__(message)
        self.exit_code = 143 if terminated else 130  # 128 + the signal's number, as shells report it


class Terminated(KeyboardInterrupt):
    """SIGTERM (e.g. `kill`, a job scheduler's time limit), raised where Python is, like Ctrl-C."""


def not_installed(package):
    """Why `package` may be missing, and what to do: most often the project's virtual environment is not active."""
    if sys.prefix == sys.base_prefix:  # no virtual environment is active
        return (f"{package} is not installed for {sys.executable}: activate the project's virtual environment "
                "(source .venv/bin/activate) or install the requirements (pip install -r requirements.txt)")
    return f"{package} is not installed in the virtual environment {sys.prefix}: pip install -r requirements.txt"


def disk_full(error):
    """Whether an error means no space (or quota) is left: an OSError's errno, or the text of h5py's errors and
    TensorFlow's ResourceExhaustedError (not an OSError), which say so only there."""
    return getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT) or "No space left on device" in str(error)


def _raise_terminated(signum, frame):
    raise Terminated()


def cli_main(main=None, *, resumable=False):
    """Wraps a command-line `main()`: a UserError becomes one line on stderr and exit code 2, and so does a full
    disk; Ctrl-C and SIGTERM end with a line of their own (after any progress bar) and exit codes 130 and 143.
    `@cli_main(resumable=True)`: the command has --resume, which the full-disk line then offers."""
    if main is None:
        return functools.partial(cli_main, resumable=resumable)

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        signal.signal(signal.SIGTERM, _raise_terminated)
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except Interrupted as interruption:
            print(f"\n{interruption}", file=sys.stderr)
            sys.exit(interruption.exit_code)
        except Exception as error:  # noqa: BLE001  (only a full disk is handled; anything else is raised again)
            if not disk_full(error):
                raise
            filename = getattr(error, "filename", None)
            where = f" writing {filename}" if filename else ""
            again = "; a training run continues with --resume" if resumable else ""
            print(f"error: the disk is full{where}; free some space and run the command again{again} (what was "
                  "saved before is intact)", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt as interrupt:
            terminated = isinstance(interrupt, Terminated)
            print(f"\n{'terminated' if terminated else 'interrupted'}", file=sys.stderr)
            sys.exit(143 if terminated else 130)

    return wrapper
