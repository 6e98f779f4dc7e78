"""`assay` subcommands of the rag package (filled in by the rag work)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the `assay` parser."""
