"""`assay eval run | score | compare | suites`: benchmark suites from the command line.

Thin: parses arguments and calls eval.runner / eval.report. Imports nothing heavy until
a handler runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import UserError
from core.options import NON_NEGATIVE_FLOAT, NON_NEGATIVE_INT, POSITIVE_INT

# A CPU generates a few dozen tokens per second with a small model: reasoning-length budgets
# (2048) are for GPUs. The CPU default caps the suite's own budget.
CPU_MAX_NEW_TOKENS = 512


def default_max_new_tokens(suite_budget: int | None, backend: str = "auto") -> int:
    """The generation budget when --max-new-tokens is not given: the suite's (else 2048) on
    a GPU, at most CPU_MAX_NEW_TOKENS on a CPU."""
    from eval.generation import GenerationConfig

    budget = suite_budget or GenerationConfig.max_new_tokens
    if backend == "vllm":
        return budget
    from core.models import pick_device

    return budget if pick_device() != "cpu" else min(budget, CPU_MAX_NEW_TOKENS)


def register(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser("run", help="generate with a model and score one or more suites",
                        description="Generate completions for each suite (cached in SQLite, so reruns and "
                        "interrupted runs resume) and score them; write a run directory per suite.")
    p.add_argument("suites", nargs="+", metavar="SUITE",
                   help="gsm8k, math500, aime24, amc23, humaneval, reasoning_gym:TASK, mbpp:FILE, stdio:FILE "
                   "or a YAML spec (see `assay eval suites`)")
    p.add_argument("--model", "-m", required=True, help="model name, local path or hub id")
    p.add_argument("--limit", type=POSITIVE_INT, default=None, help="evaluate only the first N items of each suite")
    p.add_argument("--samples", "-k", type=POSITIVE_INT, default=1, help="completions per item (for pass@k, maj@k); default 1")
    p.add_argument("--out", default=None, help="run directory (default: runs/eval/<model>-<time>)")
    p.add_argument("--max-new-tokens", type=POSITIVE_INT, default=None,
                   help=f"generation budget per completion (default on a GPU: the suite's, else 2048; "
                   f"on a CPU: at most {CPU_MAX_NEW_TOKENS}, which keeps a 135M model at seconds per item)")
    p.add_argument("--temperature", type=NON_NEGATIVE_FLOAT, default=None,
                   help="sampling temperature (default 0 = greedy; 0.8 when --samples > 1)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0)")
    p.add_argument("--top-k", type=NON_NEGATIVE_INT, default=0, help="top-k sampling (default 0 = off)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=8, help="prompts per generation batch (default 8)")
    p.add_argument("--stop", action="append", default=[], help="extra stop string (repeatable)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--backend", choices=("auto", "transformers", "vllm"), default="auto",
                   help="generation backend (default auto: vLLM when installed with a GPU)")
    p.add_argument("--system-prompt", default=None, help="system message for chat prompts")
    p.add_argument("--cache", default=None, help="generation/score cache file (default ~/.cache/assay/eval/cache.sqlite)")
    p.add_argument("--no-cache", action="store_true", help="do not read or write the cache")
    p.add_argument("--data-root", default=None,
                   help="folder with gsm8k/, math500/, ... (default $ASSAY_SHARED_DATA, else shared/data beside the checkout)")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="a module that registers rewards (a dotted name, looked up in the current directory first, or a .py file); repeatable")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="generate on actors of a Ray cluster (ADDRESS, else $RAY_ADDRESS, a running cluster or a "
                        "new local one): the prompts not in the cache, in the batches one process would make")
    p.set_defaults(handler=_run)

    s = esub.add_parser("score", help="score predictions made elsewhere (vLLM, lm-eval, ...) with a suite",
                        description="Each JSONL row holds the suite's own fields (or its id field: task_id, "
                        "unique_id, ...) plus `completion`, or `completions` (a list) for pass@k.")
    s.add_argument("suite", metavar="SUITE")
    s.add_argument("--predictions", "-p", required=True, help="predictions JSONL")
    s.add_argument("--out", default=None, help="also write a run directory here")
    s.add_argument("--cache", default=None, help="score cache file (default ~/.cache/assay/eval/cache.sqlite)")
    s.add_argument("--no-cache", action="store_true", help="do not read or write the score cache")
    s.add_argument("--data-root", default=None,
                   help="folder with the suites' data files (default $ASSAY_SHARED_DATA, else shared/data beside the checkout)")
    s.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                   help="a module that registers rewards (a dotted name, looked up in the current directory first, or a .py file); repeatable")
    s.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    s.set_defaults(handler=_score)

    c = esub.add_parser("compare", help="two runs side by side, with per-sample flips")
    c.add_argument("run_a", metavar="RUN_A")
    c.add_argument("run_b", metavar="RUN_B")
    c.add_argument("--max-flips", type=int, default=10, help="example flips to show per direction (default 10)")
    c.add_argument("--json", action="store_true", help="print the comparison as one JSON object")
    c.set_defaults(handler=_compare)

    ls = esub.add_parser("suites", help="list the available suites")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(handler=_suites)


def _cache_arg(args):
    return False if args.no_cache else args.cache


def _run(args: argparse.Namespace) -> int:
    from eval.generation import GenerationConfig, Generator
    from eval.report import write_index
    from eval.runner import open_cache, run, slug
    from eval.suites import load_suite
    from rewards.base import import_modules

    import_modules(args.imports)
    if args.limit is not None and args.limit < 1:
        raise ArgumentError("--limit must be >= 1")
    if args.samples < 1:
        raise ArgumentError("--samples must be >= 1")
    temperature = args.temperature if args.temperature is not None else (0.8 if args.samples > 1 else 0.0)
    cfg = GenerationConfig(temperature=temperature, top_p=args.top_p, top_k=args.top_k, stop=list(args.stop),
                           batch_size=args.batch_size, seed=args.seed, backend=args.backend,
                           system_prompt=args.system_prompt)
    if args.max_new_tokens is not None:
        cfg.max_new_tokens = args.max_new_tokens
    cfg.validate()
    suites = [load_suite(s, data_root=args.data_root) for s in args.suites]  # all names checked before any work
    from datetime import datetime

    out = Path(args.out or f"runs/eval/{slug(Path(args.model).name)}-{datetime.now():%Y%m%d-%H%M%S}")
    db = open_cache(_cache_arg(args))
    if args.ray is not None:
        from eval.ray_generation import RayGenConfig, RayGenerator

        gen = RayGenerator(args.model, cfg, cache=db, progress=not args.json, ray=RayGenConfig(address=args.ray or None))
    else:
        gen = Generator(args.model, cfg, cache=db, progress=not args.json)
    summaries, dirs = {}, {}
    for suite in suites:
        suite_cfg = GenerationConfig(**{**cfg.__dict__})
        if args.max_new_tokens is None:
            suite_cfg.max_new_tokens = default_max_new_tokens(suite.max_new_tokens, args.backend)
        d = out / slug(suite.name) if len(suites) > 1 else out
        summaries[suite.name] = run(suite, args.model, limit=args.limit, samples=args.samples, out=d,
                                    config=suite_cfg, cache=db, generator=gen, progress=not args.json)
        dirs[suite.name] = d.name if len(suites) > 1 else "."
        if not args.json:
            print(_summary_text(summaries[suite.name], d))
    if len(suites) > 1:
        write_index(out, summaries, dirs)
    if args.json:
        obj = next(iter(summaries.values())) if len(suites) == 1 else {
            "n": sum(s["n"] for s in summaries.values()), "suites": summaries}
        print(json.dumps(obj, default=str))
    return 0


def _score(args: argparse.Namespace) -> int:
    from eval.runner import score
    from rewards.base import import_modules

    import_modules(args.imports)
    summary = score(args.suite, args.predictions, out=args.out, cache=_cache_arg(args), data_root=args.data_root)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(_summary_text(summary, Path(args.out) if args.out else None))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from eval.report import compare, format_compare

    result = compare(args.run_a, args.run_b, max_flips=args.max_flips)
    print(json.dumps(result, default=str) if args.json else format_compare(result))
    return 0


def _suites(args: argparse.Namespace) -> int:
    from eval.suites import describe

    rows = describe()
    if args.json:
        print(json.dumps({name: desc for name, desc in rows}))
    else:
        width = max(len(n) for n, _ in rows)
        for name, desc in rows:
            print(f"{name:<{width}}  {desc}")
    return 0


def _summary_text(summary: dict, out: Path | None) -> str:
    from eval.report import metric_names

    head = f"{summary['suite']}: n={summary['n']}"
    if summary.get("samples", 1) > 1:
        head += f" x {summary['samples']} samples"
    t = summary.get("time", {})
    if t:
        head += "  (" + ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in t.items()) + ")"
    lines = [head]
    lines += [f"  {m:<18} {summary[m]:.4f}" if isinstance(summary[m], float) else f"  {m:<18} {summary[m]}"
              for m in metric_names(summary)]
    for field, buckets in summary.get("groups", {}).items():
        lines.append(f"  by {field}: " + ", ".join(f"{k} {b['accuracy']:.2f} (n={b['n']})" for k, b in buckets.items()))
    if out is not None:
        lines.append(f"  -> {out}/report.md")
    return "\n".join(lines)


class ArgumentError(UserError, ValueError):
    pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(1)
