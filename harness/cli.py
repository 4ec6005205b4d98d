"""Pieces shared by the command-line entry points: the argument parser and argument types."""

import argparse


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser that reports a bad option in one line, like every other error here."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def positive(kind):
    """An argparse type: a number of `kind` (int or float) greater than zero."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a{'n integer' if kind is int else ' number'}")
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text} must be greater than 0")
        return value

    return parse


def non_negative(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} must be 0 or more")
    return value


def fraction(text):
    value = non_negative(text)
    if value >= 1:
        raise argparse.ArgumentTypeError(f"{text} must be below 1")
    return value
