"""`assay eval retrieval` end to end on a small BEIR collection (real MiniLM, real index)."""

from __future__ import annotations

import json

import pytest

from assay.cli import main

DOCS = {
    "1": ("wing stall", "the lift of a wing rises with angle of attack until the flow separates and the wing stalls"),
    "2": ("heat conduction", "heat conduction in composite slabs follows the diffusion equation in each layer"),
    "3": ("boundary layers", "transition of the boundary layer on a flat plate depends on reynolds number"),
    "4": ("panel flutter", "supersonic flutter of thin panels predicted with piston theory"),
    "5": ("shock waves", "a detached shock wave stands ahead of a blunt body in supersonic flow"),
    "6": ("buckling", "buckling of thin cylindrical shells under axial compression"),
}
QUERIES = {"q1": "why does a wing stall at high angle of attack", "q2": "heat conduction in slabs",
           "q3": "flutter of panels at supersonic speed", "q4": "shock ahead of blunt bodies"}
QRELS = [("q1", "1", 2), ("q2", "2", 1), ("q3", "4", 2), ("q3", "5", 1), ("q4", "5", 3)]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    root = tmp_path_factory.mktemp("beir")
    (root / "qrels").mkdir()
    (root / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": t, "text": x}) + "\n"
                                               for i, (t, x) in DOCS.items()))
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in QUERIES.items()))
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n" +
                                             "".join(f"{q}\t{d}\t{s}\n" for q, d, s in QRELS))
    return root


def test_json_has_the_metric_keys_and_the_index_is_reused(collection, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE", str(tmp_path / "cache"))
    idx = tmp_path / "idx"
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--mode", "bm25", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("ndcg@10", "recall@100", "mrr@10", "map@100", "qps", "latency_p50_ms", "latency_p95_ms", "n_queries"):
        assert key in out
    assert out["n_queries"] == 4 and out["mrr@10"] > 0.5 and out["recall@100"] == 1.0
    manifest = (idx / "manifest.json").read_text()
    # a second run reuses the index (no re-embedding: same version directory)
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--mode", "dense",
                 "--limit", "2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_queries"] == 2
    assert (idx / "manifest.json").read_text() == manifest
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--fusion", "convex",
                 "--normalization", "zscore", "--weights", "bm25=0.5,dense=0.5", "--depth", "50", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recall@100"] == 1.0
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--weights", "bm25"]) == 2
    assert "--weights" in capsys.readouterr().err


def test_compare_runs_all_configurations_side_by_side(collection, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE", str(tmp_path / "cache"))
    assert main(["eval", "retrieval", "--data", str(collection), "--compare", "--json", "--k", "5"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"bm25", "dense", "hybrid", "rank-bm25"}
    # the fast BM25 and the reference rank the same
    assert out["bm25"]["ndcg@10"] == pytest.approx(out["rank-bm25"]["ndcg@10"])
    assert (tmp_path / "cache" / "eval").is_dir()  # default index lives in the cache, not the repo
    assert main(["eval", "retrieval", "--data", str(collection), "--compare"]) == 0
    table = capsys.readouterr().out
    assert "configuration" in table and "rank-bm25" in table and "ndcg@10" in table


def test_rerank_and_hyde_flags_reach_the_search(collection, tmp_path, capsys, monkeypatch, tiny_lm):
    monkeypatch.setenv("ASSAY_CACHE", str(tmp_path / "cache"))
    argv = ["eval", "retrieval", "--data", str(collection), "--index", str(tmp_path / "idx"), "--json",
            "--rerank", "--rerank-model", str(tiny_lm), "--rerank-depth", "3",
            "--hyde", "--hyde-model", str(tiny_lm), "--limit", "2"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_queries"] == 2 and out["rerank_depth"] == 3 and out["hyde_generation_ms_per_query"] > 0


def test_user_errors(collection, tmp_path, capsys):
    assert main(["eval", "retrieval", "--data", str(tmp_path / "missing")]) == 2
    assert "not a directory" in capsys.readouterr().err
    bad = tmp_path / "bad"
    (bad / "qrels").mkdir(parents=True)
    (bad / "corpus.jsonl").write_text('{"_id": "1", "text": "x"}\n{"_id": 2\n')
    (bad / "queries.jsonl").write_text('{"_id": "q", "text": "x"}\n')
    (bad / "qrels" / "test.tsv").write_text("q\t1\t1\n")
    assert main(["eval", "retrieval", "--data", str(bad)]) == 2
    assert "corpus.jsonl:2" in capsys.readouterr().err


def test_documents_rank_by_their_best_chunk_and_latency_stats():
    from types import SimpleNamespace as NS

    from eval.ir_eval import format_table, hits_to_docs, latency_stats

    hits = [NS(rank=r, chunk=NS(doc_id=d)) for r, d in [(3, "b"), (1, "a"), (2, "a"), (4, "c"), (5, "b")]]
    assert hits_to_docs(hits, 10) == ["a", "b", "c"]
    assert hits_to_docs(hits, 2) == ["a", "b"]
    s = latency_stats([10.0, 20.0, 30.0, 40.0])
    assert s["latency_p50_ms"] == 25.0 and s["qps"] == pytest.approx(4 / 0.1)
    table = format_table({"bm25": {"ndcg@10": 0.5, "qps": 10.0, "n_queries": 3}})
    assert "bm25" in table and "0.5000" in table and "-" in table
