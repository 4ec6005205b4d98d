"""One error type for mistakes a user can fix, and the wrapper that prints them in one line."""

import functools
import sys


class UserError(Exception):
    """Bad input from the user: printed as one line, without a traceback."""


def cli_main(main):
    """Wraps a command-line `main()`: a UserError becomes one line on stderr and exit code 2."""

    @functools.wraps(main)
    def wrapper(*args, **kwargs):
        try:
            return main(*args, **kwargs)
        except UserError as error:
            print(f"error: {error}", file=sys.stderr)
            sys.exit(2)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
            sys.exit(130)

    return wrapper

