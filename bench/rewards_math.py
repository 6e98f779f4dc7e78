"""Benchmark: assay's `math` reward side by side with Math-Verify, in one run.

1. Conformance: every hand-labeled corpus under data/conformance/math/ (Math-Verify's own
   test pairs, GSM8K completions in everyday model styles, other graders' documented edge
   cases, unmarked final statements and retracted answers, a red team built to earn credit
   without committing to the gold) and data/fixtures/math_equivalence.jsonl, judged by
   assay default, assay lenient, Math-Verify with its defaults and open-r1's
   accuracy_reward settings: agreement with the labels on unambiguous rows, false
   positives and false negatives.
2. GSM8K test and MATH-500 gold answers reformatted as completions three ways (boxed,
   GSM8K `####`, prose "The answer is ...") and judged against their own gold: throughput
   of each tool (answers/s) and agreement between them; every disagreement is printed with
   both verdicts and what each tool extracted.
3. The same completions against a *different* problem's gold (mostly wrong answers: the
   path where a checker cannot stop at a string match).

Math-Verify is called the way its README and open-r1 call it: ``verify(parse(gold),
parse(completion))`` in this process (its signal-based timeouts on, main thread). assay
scores in batches of 256 with its worker pool already warm (its start-up is reported apart).
Caches of both tools are cleared before every timed pass, so formats do not help each other.

    python bench/rewards_math.py [--limit N] [--json OUT.json] [--workers N]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.files import shared_data_root  # noqa: E402

DATA = shared_data_root()
BATCH = 256


def load_sets(limit: int | None):
    gsm = [json.loads(l) for l in open(DATA / "gsm8k" / "test.jsonl")]
    m500 = [json.loads(l) for l in open(DATA / "math500" / "test.jsonl")]
    gsm_golds = [r["answer"].rsplit("####", 1)[1].strip() for r in gsm]
    m500_golds = [r["answer"] for r in m500]
    if limit:
        gsm_golds, m500_golds = gsm_golds[:limit], m500_golds[:limit]
    return {"gsm8k": gsm_golds, "math500": m500_golds}


CORPORA = {
    "math-verify tests": ROOT / "data" / "conformance" / "math" / "mathverify_tests.jsonl",
    "gsm8k styles": ROOT / "data" / "conformance" / "math" / "gsm8k_styles.jsonl",
    "edge cases": ROOT / "data" / "conformance" / "math" / "edge_cases.jsonl",
    "unmarked/retracted": ROOT / "data" / "conformance" / "math" / "unmarked_and_retracted.jsonl",
    "red team": ROOT / "data" / "conformance" / "math" / "red_team.jsonl",
    "assay fixtures": ROOT / "data" / "fixtures" / "math_equivalence.jsonl",
}


def load_corpus(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in open(path, encoding="utf-8")]
    for r in rows:  # the older fixture names its label "equivalent"
        r.setdefault("label", r.get("equivalent"))
        r.setdefault("ambiguous", False)
    return rows


def _mv_gold(gold: str):
    from math_verify import parse

    return parse(gold if ("$" in gold or "\\boxed" in gold) else f"${gold}$")


def run_mathverify_defaults(golds, completions):
    from math_verify import parse, verify

    out = []
    for g, c in zip(golds, completions):
        try:
            out.append(bool(verify(_mv_gold(g), parse(c))))
        except Exception:  # noqa: BLE001 - a crash is a non-credit, as in open-r1
            out.append(False)
    return out


def run_open_r1(golds, completions):
    """open-r1's accuracy_reward settings: gold first-match; the answer only from LaTeX
    (boxed first, no anchorless extraction), units and basic LaTeX normalized."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    cfg = [LatexExtractionConfig(normalization_config=NormalizationConfig(
        nits=False, malformed_operators=False, basic_latex=True, boxed="all", units=True),
        boxed_match_priority=0, try_extract_without_anchor=False)]
    out = []
    for g, c in zip(golds, completions):
        try:
            gp = parse(g if ("$" in g or "\\boxed" in g) else f"${g}$", extraction_mode="first_match")
            out.append(bool(gp) and bool(verify(gp, parse(c, extraction_config=cfg, extraction_mode="first_match"))))
        except Exception:  # noqa: BLE001
            out.append(False)
    return out


def run_timeouts(workers: int, rows: int = 6, timeout: float = 1.0) -> dict:
    """Hanging items against the per-item timeout: wall time against rows x timeout /
    workers plus the start-ups (one per worker started, measured here)."""
    from rewards.workers import WorkerPool

    pool = WorkerPool(workers)
    t0 = time.perf_counter()
    pool.warm()
    start_up = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs = pool.run("time:sleep", [3600] * rows, timeout=timeout)
    wall = time.perf_counter() - t0
    pool.close()
    bound = rows * timeout / workers + pool.restarts / workers * start_up
    print(f"\ntimeouts: {rows} hanging rows, {workers} workers, --timeout {timeout:g}: wall {wall:.1f}s; "
          f"rows x timeout / workers + start-ups ({pool.restarts} x {start_up:.1f}s / {workers}) = {bound:.1f}s; "
          f"all timed out: {all(o.error.startswith('timeout') for o in outs)}")
    return {"rows": rows, "workers": workers, "timeout": timeout, "wall_s": wall, "start_up_s": start_up,
            "restarts": pool.restarts, "bound_s": bound}


def run_conformance(workers, pool) -> dict:
    """Agreement with the hand labels on unambiguous rows, false positives (a wrong answer
    credited) and false negatives (a right answer scored 0), per corpus and checker."""
    from rewards.math import score_math

    checkers = {
        "assay default": lambda g, c: [r.score == 1.0 for r in score_math(c, [{"answer": x} for x in g], workers=workers)],
        "assay lenient": lambda g, c: [r.score == 1.0 for r in score_math(c, [{"answer": x} for x in g], lenient=True, workers=workers)],
        "math-verify": run_mathverify_defaults,
        "open-r1 accuracy_reward": run_open_r1,
    }
    table = {}
    header = f"{'corpus':<20}{'rows':>5}{'amb':>5}  " + "".join(f"{k:>26}" for k in checkers)
    print("\nconformance (agreement on unambiguous rows / FP / FN):\n" + header)
    for name, path in CORPORA.items():
        rows = load_corpus(path)
        golds = [r["gold"] for r in rows]
        comps = [r["completion"] for r in rows]
        line = f"{name:<20}{len(rows):>5}{sum(r['ambiguous'] for r in rows):>5}  "
        table[name] = {}
        for checker, fn in checkers.items():
            clear_caches(pool)
            verdicts = fn(golds, comps)
            agree = fp = fn_ = 0
            misses = []
            for r, v in zip(rows, verdicts):
                if r["ambiguous"]:
                    continue
                if v == r["label"]:
                    agree += 1
                else:
                    fp += v
                    fn_ += not v
                    misses.append(r.get("id"))
            n = agree + fp + fn_
            table[name][checker] = {"n": n, "agreement": agree / n, "fp": fp, "fn": fn_, "misses": misses}
            line += f"{agree / n:>16.3f} {fp:>3} FP {fn_:>3} FN"[-26:].rjust(26)
        print(line, flush=True)
    for name in CORPORA:
        for checker in ("assay default", "assay lenient"):
            m = table[name][checker]["misses"]
            if m:
                print(f"  {checker} on {name}: disagrees on {', '.join(map(str, m))}")
    return table


def reformat(gold: str, style: str) -> str:
    if style == "boxed":
        return f"Working through the steps carefully, we get $\\boxed{{{gold}}}$."
    if style == "####":
        # A LaTeX answer keeps its math delimiters after ####, as a model would write it.
        plain = gold.replace(",", "").replace(".", "").lstrip("-").isdigit()
        return f"Working through the steps carefully.\n#### {gold if plain else f'${gold}$'}"
    return f"Working through the steps carefully. The answer is ${gold}$."


def clear_caches(pool) -> None:
    from math_verify.parser import parse_expr_cached, parse_latex_cached

    import rewards.math as rm

    rm.clear_caches()
    parse_latex_cached.cache_clear()
    parse_expr_cached.cache_clear()
    pool.broadcast("rewards.math_symbolic:clear_cache")


def run_mathverify(golds, completions):
    from math_verify import parse, verify

    out = []
    for g, c in zip(golds, completions):
        out.append(bool(verify(parse(f"${g}$"), parse(c))))
    return out


def run_assay(golds, completions, workers):
    from rewards.math import score_math

    out, reasons = [], []
    for s in range(0, len(golds), BATCH):
        res = score_math(completions[s : s + BATCH], [{"answer": g} for g in golds[s : s + BATCH]], workers=workers)
        out += [r.score == 1.0 for r in res]
        reasons += [r.reason for r in res]
    return out, reasons


def timed(fn, *a):
    t = time.perf_counter()
    r = fn(*a)
    return r, time.perf_counter() - t


def explain(gold: str, completion: str, assay_ok: bool, mv_ok: bool, reason: str) -> str:
    """Why the two disagree (the categories seen on these sets)."""
    from math_verify import parse

    g, p = parse(f"${gold}$"), parse(completion)
    shown = f"math-verify parsed gold {g[:1]!r} answer {p[:1]!r}; assay: {reason}"
    if not mv_ok and assay_ok:
        if not p:
            return "math-verify extracts nothing from the completion; " + shown
        if not g:
            return "math-verify cannot parse the gold; " + shown
        if "," in gold and any(isinstance(x, str) is False and getattr(x, "is_Float", False) for x in p[:1]):
            return "math-verify reads the comma in a bare list after #### as a decimal separator; " + shown
        return "math-verify rejects an identical answer (parse differs between gold and completion framing); " + shown
    if "rounding" in reason or "different numbers" in reason:
        return "math-verify rounds to 6 decimals and calls different numbers equal; " + shown
    return "assay rejects what math-verify accepts; " + shown


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N golds of each set")
    ap.add_argument("--workers", type=int, default=None, help="assay worker processes (default: cores)")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args(argv)
    logging.disable(logging.WARNING)

    t0 = time.perf_counter()
    import math_verify  # noqa: F401
    mv_import = time.perf_counter() - t0
    from rewards.workers import shared_pool

    pool = shared_pool(args.workers)
    t0 = time.perf_counter()
    pool.warm()
    assay_start = time.perf_counter() - t0
    print(f"start-up: math-verify import {mv_import:.2f}s; assay worker pool ({pool.size} workers) {assay_start:.2f}s")

    # 1. conformance corpora: hand labels, four checkers side by side
    conformance = run_conformance(args.workers, pool)
    timeouts = run_timeouts(pool.size)
    result = {"conformance": conformance, "timeouts": timeouts,
              "startup": {"math_verify_import_s": mv_import, "assay_pool_s": assay_start, "workers": pool.size},
              "sets": {}}

    # 2 and 3. reformatted golds, matched and mismatched
    rows = [f"{'set':<10}{'style':<8}{'pairing':<10}{'n':>6}{'assay/s':>10}{'m-v/s':>9}{'ratio':>7}{'agree':>9}"]
    print("\n" + rows[0], flush=True)
    disagreements = []
    for name, set_golds in load_sets(args.limit).items():
        for style in ("boxed", "####", "prose"):
            comps = [reformat(g, style) for g in set_golds]
            for pairing, gs in (("same", set_golds), ("shifted", set_golds[1:] + set_golds[:1])):
                clear_caches(pool)
                mv, mv_s = timed(run_mathverify, gs, comps)
                clear_caches(pool)
                (mine, reasons), my_s = timed(run_assay, gs, comps, args.workers)
                agree = sum(a == b for a, b in zip(mine, mv)) / len(mv)
                n = len(mv)
                key = f"{name}/{style}/{pairing}"
                result["sets"][key] = {"n": n, "assay_per_s": n / my_s, "math_verify_per_s": n / mv_s,
                                       "ratio": mv_s / my_s, "agreement": agree,
                                       "assay_true": sum(mine), "math_verify_true": sum(mv)}
                rows.append(f"{name:<10}{style:<8}{pairing:<10}{n:>6}{n / my_s:>10.0f}{n / mv_s:>9.0f}"
                            f"{mv_s / my_s:>6.1f}x{agree:>9.4f}")
                print(rows[-1], flush=True)
                for g, c, a, b, why in zip(gs, comps, mine, mv, reasons):
                    if a != b:
                        disagreements.append({"set": key, "gold": g, "completion": c, "assay": a, "math_verify": b,
                                              "explanation": explain(g, c, a, b, why)})
    total = sum(v["n"] for v in result["sets"].values())
    same = [v for k, v in result["sets"].items() if k.endswith("/same")]
    n_same = sum(v["n"] for v in same)
    agree_same = sum(v["agreement"] * v["n"] for v in same) / n_same
    agree_all = sum(v["agreement"] * v["n"] for v in result["sets"].values()) / total
    for set_name in ("gsm8k", "math500"):
        vs = [v for k, v in result["sets"].items() if k.startswith(set_name)]
        n = sum(v["n"] for v in vs)
        my_t = sum(v["n"] / v["assay_per_s"] for v in vs)
        mv_t = sum(v["n"] / v["math_verify_per_s"] for v in vs)
        result[f"{set_name}_throughput"] = {"assay_per_s": n / my_t, "math_verify_per_s": n / mv_t, "ratio": mv_t / my_t}
        print(f"{set_name}: assay {n / my_t:.0f}/s vs math-verify {n / mv_t:.0f}/s -> {mv_t / my_t:.1f}x (all styles and pairings)")
    print(f"agreement with math-verify: {agree_same:.4f} on reformatted golds (target >= 0.995), {agree_all:.4f} incl. shifted")
    result["agreement_same"] = agree_same
    result["agreement_all"] = agree_all
    result["disagreements"] = disagreements
    print(f"\n{len(disagreements)} disagreements:")
    for d in disagreements:
        print(f"  [{d['set']}] gold {d['gold']!r}: assay {d['assay']}, math-verify {d['math_verify']}\n      {d['explanation']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
