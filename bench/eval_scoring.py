"""Scoring speed: 1,319 GSM8K predictions through `assay eval score`, first run and cached.

Targets (issue 5): the first scoring run < 5 s; a cached rerun < 10% of the first run.
Reference, side by side in the same process: Math-Verify's bare `parse` + `verify` over the
same completions and golds (what assay's math reward falls back to for hard cases).

The predictions are the real GSM8K test set with four kinds of completion, cycling: the
gold solution itself ("#### N"), a boxed answer, an unmarked "$N." sentence, and a wrong
answer. Times are wall-clock for the scoring stage (file reading and imports are done
before the clock starts, so all three columns time the same work), plus end-to-end
`eval.score(...)` for the first and cached runs.

    python bench/eval_scoring.py [--json] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def make_predictions(gsm8k: Path, out: Path) -> int:
    rows = [json.loads(line) for line in gsm8k.read_text(encoding="utf-8").splitlines() if line.strip()]
    with open(out, "w", encoding="utf-8") as fh:
        for i, r in enumerate(rows):
            num = r["answer"].rpartition("####")[2].strip()
            completion = [r["answer"], f"Adding it up step by step, the total is \\boxed{{{num}}}.",
                          f"So the final amount is ${num}.", "Maybe 12? I am not sure. #### 12"][i % 4]
            fh.write(json.dumps({**r, "completion": completion}) + "\n")
    return len(rows)


def time_math_verify(golds, completions) -> tuple[float, float]:
    from math_verify import parse, verify

    t = time.perf_counter()
    ok = 0
    for g, c in zip(golds, completions):
        ok += bool(verify(parse(f"${g}$"), parse(c)))
    return time.perf_counter() - t, ok / len(golds)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="gsm8k test.jsonl (default: the shared data root)")
    ap.add_argument("--repeat", type=int, default=3, help="cached reruns to time (median reported)")
    ap.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = ap.parse_args(argv)

    from eval.runner import join_predictions, open_cache, score, score_items
    from eval.suites import load_suite
    from tasks.data import data_root, read_jsonl
    from tasks.lm_eval_gsm8k import gold_number

    gsm8k = Path(args.data) if args.data else data_root() / "gsm8k" / "test.jsonl"
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-scoring-"))
    preds_path = tmp / "predictions.jsonl"
    n = make_predictions(gsm8k, preds_path)

    suite = load_suite("gsm8k")
    rows, completions = join_predictions(suite, read_jsonl(preds_path), str(preds_path))
    import rewards.base

    rewards.base.get("math")  # imports done before any clock starts
    import math_verify  # noqa: F401

    golds = [gold_number(r["answer"]) for r in rows]
    flat = [c[0] for c in completions]
    t_ref, ref_acc = time_math_verify(golds, flat)

    cache = open_cache(tmp / "cache.sqlite")
    t = time.perf_counter()
    first_scored = score_items(suite, rows, completions, cache)
    t_first = time.perf_counter() - t
    cached_times = []
    for _ in range(max(1, args.repeat)):
        t = time.perf_counter()
        again = score_items(suite, rows, completions, cache)
        cached_times.append(time.perf_counter() - t)
    t_cached = statistics.median(cached_times)
    assert [[s.score for s in i] for i in again] == [[s.score for s in i] for i in first_scored]
    acc = sum(s[0].score or 0 for s in first_scored) / n

    # End to end through the front door (reads the file, joins, scores, summarizes).
    e2e_cache = tmp / "e2e.sqlite"
    t = time.perf_counter()
    summary = score("gsm8k", preds_path, cache=e2e_cache)
    t_e2e_first = time.perf_counter() - t
    t = time.perf_counter()
    score("gsm8k", preds_path, cache=e2e_cache)
    t_e2e_cached = time.perf_counter() - t

    result = {
        "n": n,
        "assay_first_s": round(t_first, 4),
        "assay_cached_s": round(t_cached, 4),
        "cached_over_first": round(t_cached / t_first, 4),
        "math_verify_bare_s": round(t_ref, 4),
        "assay_over_math_verify": round(t_first / t_ref, 4),
        "e2e_first_s": round(t_e2e_first, 4),
        "e2e_cached_s": round(t_e2e_cached, 4),
        "e2e_cached_over_first": round(t_e2e_cached / t_e2e_first, 4),
        "accuracy_assay": round(acc, 4),
        "accuracy_math_verify": round(ref_acc, 4),
        "strict_match": round(summary["strict_match"], 4),
        "flexible_extract": round(summary["flexible_extract"], 4),
        "target_first_lt_5s": t_first < 5.0,
        "target_cached_lt_10pct": t_cached / t_first < 0.10,
    }
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"GSM8K scoring, {n} predictions (gold / boxed / unmarked / wrong, cycling)")
    print(f"{'':34}{'seconds':>10}{'accuracy':>10}")
    print(f"{'Math-Verify parse+verify (ref)':34}{t_ref:>10.3f}{ref_acc:>10.4f}")
    print(f"{'assay gsm8k scoring, first run':34}{t_first:>10.3f}{acc:>10.4f}")
    print(f"{'assay gsm8k scoring, cached':34}{t_cached:>10.3f}{acc:>10.4f}")
    print(f"{'assay eval.score() e2e, first':34}{t_e2e_first:>10.3f}")
    print(f"{'assay eval.score() e2e, cached':34}{t_e2e_cached:>10.3f}")
    print(f"ratios: assay/Math-Verify {t_first / t_ref:.3f}; cached/first {t_cached / t_first:.3f} (target < 0.10); "
          f"e2e cached/first {t_e2e_cached / t_e2e_first:.3f}")
    print(f"targets: first < 5 s: {'PASS' if t_first < 5 else 'FAIL'}; cached < 10%: "
          f"{'PASS' if t_cached / t_first < 0.10 else 'FAIL'}")
    print(f"(assay also reports strict_match {summary['strict_match']:.4f}, flexible_extract "
          f"{summary['flexible_extract']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
