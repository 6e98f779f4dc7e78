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
    assert set(steps) == {"index", "retrieval", "rewards", "world", "train", "evaluate", "report"}

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

    world = steps["world"]
    assert world["counts"]["test/single"] > 0 and world["example"]["contexts"]
    # the quick run trains the tiny random model on the grounded prompts: the path, not the skill
    train = steps["train"]
    assert train["config"] == "data/configs/sft-grounded-world.yaml" and train["summary"]["logged_steps"] == 6
    assert train["summary"]["loss_last10"] < train["summary"]["loss_first10"]
    ev = steps["evaluate"]
    assert set(ev["runs"]) == {"base", "trained", "trained-closed-book"}
    questions = [json.loads(line) for line in (out / "eval" / "questions.jsonl").read_text().splitlines()]
    assert all(ev["runs"][label]["n"] == len(questions) > 0 for label in ev["runs"])
    assert {q["type"] for q in questions} <= {"single", "comparison", "unanswerable"}
    samples = [json.loads(line) for line in (out / "eval" / "trained" / "samples.jsonl").read_text().splitlines()]
    assert all("citation_precision" in r and "abstention" in r for r in samples)  # the RAG QA metrics, per answer
    report = (out / "report.md").read_text()
    assert "## 6. Evaluation" in report and (out / "report.html").exists()

    # every step is restartable: a second run skips finished steps
    again = subprocess.run([sys.executable, "-m", "assay", "demo", "--quick", "--out", str(out), "--steps", "rewards"],
                           cwd=repo_root, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "done earlier" in again.stdout
