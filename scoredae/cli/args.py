"""Argument types of the command line: numbers refused at parsing time, with the usual usage error."""

from __future__ import annotations

import argparse
import math


def _integer_from(minimum: int, expected: str):
    """An argparse type: an integer >= ``minimum``, refused as ``expected`` otherwise."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_int = _integer_from(1, "a positive integer")
non_negative_int = _integer_from(0, "an integer >= 0")


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return value
