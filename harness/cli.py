"""Pieces shared by the command-line entry points: the argument parser and argument types.

Every type rejects what would only fail later: empty text, NaN, infinities, numbers out of range.
"""

import argparse
import math


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser that reports a bad option in one line, like every other error here. Options are
    spelled out in full: an abbreviation (--epoch for --epochs) would change meaning when an option is added."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, allow_abbrev=False, **kwargs)

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(text, kind):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text} is not a finite number")
    return value


def positive(kind, maximum=None):
    """An argparse type: a number of `kind` (int or float) greater than zero, and at most `maximum`."""

    def parse(text):
        value = _number(text, kind)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"{text} is more than {maximum:,}")
        return value

    return parse


# Upper bounds far past any sensible run, so that a typo answers at once instead of running for ages.
MAX_EPOCHS = 100_000
MAX_BATCH = 1 << 20
MAX_IMAGE_SIZE = 4096
MAX_STEPS = 1_000_000
MAX_DEVICES = 4096


def device_count(text):
    """--devices: "all" or a whole number from 1, kept as text (config.json records what was asked)."""
    value = text.strip().lower()
    if value == "all" or (value.isdigit() and 1 <= int(value) <= MAX_DEVICES):
        return value
    raise argparse.ArgumentTypeError(f"{text!r} is not 'all' or a number of devices from 1 to {MAX_DEVICES:,}")


def non_negative(text):
    """A float, 0 or more."""
    value = _number(text, float)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def non_negative_int(text):
    """A whole number, 0 or more (a seed)."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def fraction(text):
    """A float in [0, 1)."""
    value = non_negative(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text} must be below 1")
    return value


def text(value):
    """Non-empty text (a name or a path)."""
    if not value.strip():
        raise argparse.ArgumentTypeError("it is empty")
    return value


MAX_BUDGET_SECONDS = 30 * 86400
DURATION_UNITS = {"s": 1, "m": 60, "h": 3600}


def duration(text):
    """A length of time like 90s, 30m, 1h or 1h30m, in seconds (--time-budget)."""
    value, total, number = text.strip().lower(), 0.0, ""
    for character in value:
        if character.isdigit() or character == ".":
            number += character
        elif character in DURATION_UNITS and number:
            total += _number(number, float) * DURATION_UNITS[character]
            number = ""
        else:
            number = "?"
            break
    if number or not value:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration; write it like 90s, 30m, 1h or 1h30m")
    if not 0 < total <= MAX_BUDGET_SECONDS:
        raise argparse.ArgumentTypeError(f"{text} must be above 0 and at most {MAX_BUDGET_SECONDS // 86400} days")
    return total
