"""RAG QA end to end: a real assay index (BM25 + MiniLM + FAISS) -> prompts with the
retrieved chunks -> tiny model -> exact match / F1 / recall@k."""

from __future__ import annotations

import json
import shutil

from assay.cli import main


def test_rag_qa_retrieves_into_the_prompt_and_scores(tiny_lm, repo_root, tmp_path, capsys):
    from rag import Index

    suite_dir = tmp_path / "rag_qa"
    shutil.copytree(repo_root / "data" / "suites" / "rag_qa", suite_dir)
    spec = suite_dir / "rag_qa.yaml"  # k=1 of 3 documents: recall@k can fail, so it says something
    spec.write_text(spec.read_text().replace("\nk: 3", "\nk: 1"))
    Index.build([suite_dir / "docs"], suite_dir / "index", progress=False)

    code = main(["eval", "run", str(suite_dir / "rag_qa.yaml"), "--model", str(tiny_lm), "--max-new-tokens", "4",
                 "--no-cache", "--out", str(tmp_path / "run"), "--json"])
    out = capsys.readouterr().out
    assert code == 0
    s = json.loads(out)
    assert s["n"] == 5
    assert {"accuracy", "exact_match", "f1", "recall@k"} <= set(s)
    assert s["recall@k"] == 1.0  # the gold document ranked first for every question
    samples = [json.loads(line) for line in (tmp_path / "run" / "samples.jsonl").read_text().splitlines()]
    first = samples[0]
    assert "[1] " in first["prompt"] and "Mercury is the planet closest to the Sun" in first["prompt"]
    assert first["prompt"].rstrip().endswith("<|im_start|>assistant")
