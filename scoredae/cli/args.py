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


def _float_from(minimum: float, strict: bool, expected: str):
    """An argparse type: a finite number above ``minimum`` (or equal, unless ``strict``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and (value > minimum or (value == minimum and not strict))):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    return parse


positive_float = _float_from(0.0, True, "a finite number > 0")
non_negative_float = _float_from(0.0, False, "a finite number >= 0")
