"""The `assay` command line: parses arguments and calls a package's front door.

Every area registers its own subcommands (`rag.cli`, `rewards.cli`, `train.cli`,
`eval.cli`, `recipes.cli`); those modules import nothing heavy at import time, so `assay --help`
answers fast. Handlers import torch, transformers, faiss, ... only when they run.

A user mistake (bad path, malformed record, unknown name) is raised by the libraries as
a `core.errors.UserError`; it is printed as one line on stderr with exit status 2, never
as a traceback. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import runpy
import sys

from assay import REPO_ROOT  # noqa: E402
from core.errors import UserError

BENCH_DIR = REPO_ROOT / "bench"


def _add_bench(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="run a benchmark from bench/ side by side with its reference tool",
        description="Benchmarks live in bench/ of a source checkout; each compares assay "
        "with the reference tool in one run and reports ratios. Extra arguments are passed on.",
    )
    p.add_argument("name", nargs="?", help="benchmark name (omit to list them)")
    p.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the benchmark")
    p.set_defaults(handler=_run_bench)


def _run_bench(args: argparse.Namespace) -> int:
    names = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))
    if not args.name:
        print("benchmarks:", ", ".join(names) if names else "(none: bench/ is in a source checkout)")
        return 0
    script = BENCH_DIR / f"{args.name}.py"
    if not script.exists():
        raise CliError(f"unknown benchmark {args.name!r}; known: {', '.join(names)}")
    sys.argv = [str(script), *args.args]
    runpy.run_path(str(script), run_name="__main__")
    return 0


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="run the whole platform end to end on embedded defaults (offline, CPU)",
    )
    p.add_argument("--out", default="runs/demo", help="run directory (default: runs/demo)")
    p.add_argument("--quick", action="store_true",
                   help="the short version: a tiny random model on the same path (it shows the path, it does not learn), "
                        "no reranking")
    p.add_argument("--hyde", action="store_true", help="the full run also writes HyDE passages with SmolLM2 (minutes more)")
    p.add_argument("--steps", default=None, help="comma-separated subset of steps to run")
    p.add_argument("--fresh", action="store_true", help="ignore finished steps and redo them")
    p.set_defaults(handler=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    from assay.demo import run_demo

    return run_demo(args)


class CliError(UserError):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: `assay index: error: argument --k: must be an integer
    >= 1, got '0'` and exit status 2 (the usage is one `--help` away)."""

    def error(self, message: str):  # noqa: D401 - argparse's hook
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from eval.cli import register as register_eval
    from rag.cli import register as register_rag
    from recipes.cli import register as register_recipes
    from recipes.cli import register_pipeline
    from rewards.cli import register as register_rewards
    from train.cli import register as register_train

    parser = _Parser(
        prog="assay",
        description="assay: index corpora, score outputs with verifiers, train "
        "retrieval-grounded models, run benchmark suites.",
    )
    from assay import __version__

    parser.add_argument("--version", action="version", version=f"assay {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    register_rag(sub)
    register_rewards(sub)
    register_train(sub)
    register_eval(sub)
    register_recipes(sub)
    register_pipeline(sub)
    _add_bench(sub)
    _add_demo(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # Hugging Face's own bars ("Loading weights", downloads) say nothing to an assay user;
    # assay draws its own progress bars for long work.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import signal

    # SIGTERM unwinds like Ctrl-C, so atomic writers delete their temporary files.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        # `assay` or `assay train` with no further subcommand: show the relevant help.
        (getattr(args, "help_parser", None) or parser).print_help()
        return 2
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `assay search ... | head`: stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UserError as exc:  # a user mistake: one line; anything else is a bug and keeps its traceback
        print(f"assay {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # `python -m assay.cli ...`, e.g. under `accelerate launch -m assay.cli`
    raise SystemExit(main())
