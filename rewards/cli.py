"""`assay score`: score a JSONL file of completions with a weighted composition of rewards.

    assay score --rewards math,format:0.2 --input outs.jsonl [--output scored.jsonl] [--json]
                [--workers N] [--timeout S] [--on-error none|zero] [--option overlong.max_len=512]

Each input row has ``completion`` (a string or a chat list) and the gold fields its rewards
need (``answer`` for math). Output rows repeat the input and add ``rewards`` (score per
reward), ``reasons`` and ``score`` (the weighted total). The summary gives the mean per
reward, counts by reason and throughput; ``--json`` prints it as one JSON object.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from core.options import POSITIVE_FLOAT, POSITIVE_INT

CHUNK = 512  # rows scored per call (progress granularity)


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the `assay` parser."""
    p = sub.add_parser(
        "score",
        help="score completions in a JSONL file with verifiers (math, code, format, ...)",
        description="Score each row's `completion` with a weighted composition of rewards. "
        "Rows carry the gold fields the rewards need (`answer` for math, `test`/`entry_point` for code, ...).",
    )
    p.add_argument("--rewards", required=True, help="comma-separated rewards with optional weights: math,format:0.2")
    p.add_argument("--input", required=True, help="JSONL file, one row per completion")
    p.add_argument("--output", help="write scored rows here (JSONL, written atomically)")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--workers", type=POSITIVE_INT, default=None, help="worker processes for heavy rewards (default: cores)")
    p.add_argument("--timeout", type=POSITIVE_FLOAT, default=None, help="seconds per item for heavy rewards (default: per reward)")
    p.add_argument("--on-error", choices=("none", "zero"), default="none", help="score of a reward that raises (default none)")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="score on reward hosts of a Ray cluster, one per node (ADDRESS, else $RAY_ADDRESS, "
                        "a running cluster or a new local one); --workers is then per host")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="a module that registers rewards (a dotted name, looked up in the current directory first, or a .py file); repeatable")
    p.add_argument(
        "--option", action="append", default=[], metavar="REWARD.KEY=VALUE",
        help="an option for one reward, e.g. overlong.max_len=512, math.lenient=true (repeatable)",
    )
    p.set_defaults(handler=run_score)
    from rewards.sandbox.cli import register as register_sandbox  # `assay sandbox` (W2)

    register_sandbox(sub)


def _parse_options(items: list[str]) -> dict[str, dict[str, Any]]:
    from rewards.base import RewardError

    out: dict[str, dict[str, Any]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        name, dot, opt = key.partition(".")
        if not (eq and dot and name and opt):
            raise RewardError(f"bad --option {item!r}: use REWARD.KEY=VALUE, e.g. overlong.max_len=512")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        out.setdefault(name, {})[opt] = parsed
    return out


def read_rows(path: str) -> tuple[list[dict], list[int]]:
    """Rows of a JSONL file and their line numbers; a bad line is an error naming file:line."""
    from core.files import iter_jsonl
    from rewards.base import RewardError

    if Path(path).is_dir():
        raise RewardError(f"{path}: is a directory, not a JSON Lines file")
    rows, lines = [], []
    for lineno, row in iter_jsonl(path, RewardError):
        if "completion" not in row:
            raise RewardError(f"{path}:{lineno}: missing field 'completion'")
        rows.append(row)
        lines.append(lineno)
    if not rows:
        raise RewardError(f"{path}: no rows to score (the file is empty)")
    return rows, lines


def _write_jsonl_atomic(path: str, rows: list[dict]) -> None:
    from core.files import atomic_open
    from rewards.base import RewardError

    if Path(path).is_dir():
        raise RewardError(f"--output {path}: is a directory; name a file")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_open(path) as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def run_score(args: argparse.Namespace) -> int:
    from rewards.base import import_modules
    from rewards.compose import ScoreReport, check_fields, parse_spec, score

    import_modules(args.imports)
    pairs = parse_spec(args.rewards)
    options = _parse_options(args.option)
    unknown = set(options) - {n for n, _ in pairs}
    if unknown:
        from rewards.base import RewardError

        raise RewardError(f"--option for reward(s) not in --rewards: {', '.join(sorted(unknown))}")
    rows, lines = read_rows(args.input)
    where = lambda i: f"{args.input}:{lines[i]}"  # noqa: E731
    check_fields([n for n, _ in pairs], rows, where=where)  # all rows, before any scoring

    show_progress = not args.json and sys.stderr.isatty() and len(rows) > CHUNK
    reports: list[ScoreReport] = []
    for start in range(0, len(rows), CHUNK):
        chunk = rows[start : start + CHUNK]
        reports.append(
            score(pairs, [r["completion"] for r in chunk], chunk, workers=args.workers, timeout=args.timeout,
                  on_error=args.on_error, options=options, where=lambda i, s=start: where(s + i),
                  backend="local" if getattr(args, "ray", None) is None else "ray", ray_address=getattr(args, "ray", None) or None)
        )
        if show_progress:
            print(f"\rscored {min(start + CHUNK, len(rows))}/{len(rows)}", end="", file=sys.stderr, flush=True)
    if show_progress:
        print(file=sys.stderr)
    report = _merge(reports, dict(pairs))

    if args.output:
        out_rows = []
        for row, summary in zip(rows, report.per_row()):
            out_rows.append({**row, "rewards": summary["rewards"], "reasons": summary["reasons"], "score": summary["score"]})
        _write_jsonl_atomic(args.output, out_rows)

    if args.json:
        print(json.dumps(report.to_json(), ensure_ascii=False))
    else:
        print(format_summary(report, args.output))
    return 0


def _merge(reports, weights):
    from rewards.compose import ScoreReport

    if not reports:
        return ScoreReport(weights, {n: [] for n in weights}, [], 0.0, {n: 0.0 for n in weights})
    results = {n: [r for rep in reports for r in rep.results[n]] for n in weights}
    totals = [t for rep in reports for t in rep.totals]
    seconds = sum(rep.seconds for rep in reports)
    per = {n: sum(rep.reward_seconds.get(n, 0.0) for rep in reports) for n in weights}
    return ScoreReport(weights, results, totals, seconds, per)


def format_summary(report, output: str | None = None) -> str:
    means = report.mean()
    rate = f"{report.n / report.seconds:.0f} rows/s" if report.seconds > 0 else "-"
    lines = [f"scored {report.n} rows in {report.seconds:.2f} s ({rate})", ""]
    lines.append(f"{'reward':<16}{'weight':>8}{'mean':>9}{'applies':>10}{'seconds':>9}")
    for name, weight in report.weights.items():
        applies = sum(r.score is not None for r in report.results[name])
        m = means[name]
        lines.append(
            f"{name:<16}{weight:>8g}{('-' if m is None else f'{m:.3f}'):>9}{f'{applies}/{report.n}':>10}"
            f"{report.reward_seconds.get(name, 0.0):>9.2f}"
        )
    total = report.mean_total()
    lines.append(f"{'total (weighted)':<16}{'':>8}{('-' if total is None else f'{total:.3f}'):>9}")
    lines.append("")
    lines.append("reasons:")
    for name, counts in report.reason_counts().items():
        lines.append(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    if output:
        lines.append("")
        lines.append(f"wrote {output}")
    return "\n".join(lines)
