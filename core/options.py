"""Command-line numbers checked when they are parsed, with the accepted range in the error.

``--k 0``, ``--batch-size -3`` or ``--workers 0`` used to be accepted and mean something
else later (no results, a silent default, a crash after minutes of set-up). These argparse
types refuse them at once: ``argument --k: must be an integer >= 1, got '0'``.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable


def int_at_least(low: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def float_at_least(low: float, *, strict: bool = False) -> Callable[[str], float]:
    op = ">" if strict else ">="

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number {op} {low:g}, got {text!r}") from None
        if not math.isfinite(value) or value < low or (strict and value == low):
            raise argparse.ArgumentTypeError(f"must be a finite number {op} {low:g}, got {text!r}")
        return value

    parse.__name__ = f"number {op} {low:g}"
    return parse


POSITIVE_INT = int_at_least(1)
NON_NEGATIVE_INT = int_at_least(0)
POSITIVE_FLOAT = float_at_least(0.0, strict=True)
NON_NEGATIVE_FLOAT = float_at_least(0.0)
