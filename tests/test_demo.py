"""`assay demo --quick` end to end, as a newcomer runs it (offline, CPU)."""

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # trains or runs a real model end to end (the fast loop: -m 'not slow')


def test_demo_quick_end_to_end(tmp_path, repo_root):
    out = tmp_path / "demo"
    proc = subprocess.run([sys.executable, "-m", "assay", "demo", "--quick", "--out", str(out)],
                          cwd=repo_root, capture_output=True, text=True, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    steps = {p.stem: json.loads(p.read_text()) for p in (out / "steps").glob("*.json")}
    assert set(steps) == {"index", "retrieval", "rewards", "train", "evaluate", "report"}

    answers = steps["index"]["answers"]
    assert all(h["doc_id"] and h["end"] > h["start"] for a in answers for h in a["hits"])

    table = steps["retrieval"]["configurations"]
    assert {"bm25", "dense", "hybrid", "rank-bm25"} <= set(table)  # rerank/HyDE: the full demo
    assert table["hybrid"]["ndcg@10"] > 0.5

    rows = steps["rewards"]["rows"]
    assert steps["rewards"]["hacks_contained"] == 2
    assert all(r["score"] == 0 for r in rows if r["case"].startswith("hack"))
    assert all(r["rewards"]["math"] == 0 for r in rows if r["case"] in ("wrong", "hedged"))
    assert all(r["score"] == 1 for r in rows if r["case"] == "canonical")

    train = steps["train"]["summary"]
    assert train["reward_last10"] > 2 * train["reward_first10"]
    assert steps["evaluate"]["trained"]["accuracy"] > steps["evaluate"]["base"]["accuracy"]
    report = (out / "report.md").read_text()
    assert "## 5. Evaluation" in report and (out / "report.html").exists()

    # every step is restartable: a second run skips finished steps
    again = subprocess.run([sys.executable, "-m", "assay", "demo", "--quick", "--out", str(out), "--steps", "rewards"],
                           cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "done earlier" in again.stdout
