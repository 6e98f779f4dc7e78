"""`assay eval ...`: benchmark suites (run, score, compare) and IR evaluation (retrieval)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    """Add `assay eval` and its subcommands to the `assay` parser."""
    p = sub.add_parser("eval", help="run benchmark suites, score predictions, evaluate retrieval")
    p.set_defaults(help_parser=p)
    esub = p.add_subparsers(dest="eval_command", metavar="EVAL_COMMAND")

    from eval import retrieval_cli, suites_cli

    suites_cli.register(esub)  # run, score, compare
    retrieval_cli.register(esub)  # retrieval
