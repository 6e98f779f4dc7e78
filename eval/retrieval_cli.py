"""Placeholder: filled in by the work that owns it."""

from __future__ import annotations

import argparse


def register(esub: argparse._SubParsersAction) -> None:
    pass
