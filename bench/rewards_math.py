"""Benchmark: assay's `math` reward side by side with Math-Verify, in one run.

1. Accuracy on the labeled equivalence set (data/fixtures/math_equivalence.jsonl): both
   tools judge every (gold, completion) pair; accuracy against the labels.
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
from rag.files import shared_data_root  # noqa: E402
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


def reformat(gold: str, style: str) -> str:
    if style == "boxed":
        return f"Working through the steps carefully, we get $\\boxed{{{gold}}}$."
    if style == "####":
        # A LaTeX answer keeps its math delimiters after ####, as a model would write it.
        plain = gold.replace(",", "").replace(".", "").lstrip("-").isdigit()
        return f"Working through the steps carefully.\n#### {gold if plain else f'${gold}$'}"
    return f"Working through the steps carefully. The answer is ${gold}$."


def clear_caches(pool) -> None:
    import rewards.math as rm
    from math_verify.parser import parse_expr_cached, parse_latex_cached

    rm._CACHE.clear()
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

    # 1. labeled set
    labeled = [json.loads(l) for l in open(ROOT / "data" / "fixtures" / "math_equivalence.jsonl")]
    golds = [r["gold"] for r in labeled]
    comps = [r["completion"] for r in labeled]
    labels = [r["equivalent"] for r in labeled]
    clear_caches(pool)
    mv, mv_s = timed(run_mathverify, golds, comps)
    clear_caches(pool)
    (mine, reasons), my_s = timed(run_assay, golds, comps, args.workers)
    acc_mv = sum(a == b for a, b in zip(mv, labels)) / len(labels)
    acc_me = sum(a == b for a, b in zip(mine, labels)) / len(labels)
    print(f"\nlabeled set ({len(labels)} pairs): accuracy assay {acc_me:.4f}  math-verify {acc_mv:.4f}")
    for r, a, b, why in zip(labeled, mine, mv, reasons):
        if a != r["equivalent"] or b != r["equivalent"]:
            who = ("assay wrong" if a != r["equivalent"] else "") + (" math-verify wrong" if b != r["equivalent"] else "")
            print(f"  #{r['id']:<4}{who.strip():<28}{r['category']:<32} gold {r['gold']!r} vs {r['completion'][:50]!r}")

    result = {"labeled": {"n": len(labels), "accuracy_assay": acc_me, "accuracy_math_verify": acc_mv,
                          "seconds_assay": my_s, "seconds_math_verify": mv_s},
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
