"""`assay` subcommands of the eval package (filled in by the eval work)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the `assay` parser."""
