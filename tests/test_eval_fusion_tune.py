"""`assay eval retrieval --tune`: fusion chosen on dev lands in the index manifest and
becomes what search does by default. A tiny collection and a fake embedder (hash vectors:
the dense leg is noise, BM25 finds every answer), so no model is loaded."""

from __future__ import annotations

import json

import pytest

from assay.cli import main
from rag.fusion import FusionConfig

WORDS = "wing lift drag shock boundary layer flutter panel heat transfer slipstream nozzle".split()
N = 40


def _key(i: int) -> str:  # a made-up word only document i contains
    return "".join("bcdfghklmnprstvz"[(i * 7 + j * 3) % 16] + "aeiou"[(i + j) % 5] for j in range(4)) + "x"


@pytest.fixture()
def collection(tmp_path, monkeypatch, hash_embedder):
    monkeypatch.setenv("ASSAY_CACHE", str(tmp_path / "cache"))
    root = tmp_path / "beir"
    (root / "qrels").mkdir(parents=True)
    with open(root / "corpus.jsonl", "w") as fh:
        for i in range(N):
            body = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(12))
            fh.write(json.dumps({"_id": f"d{i}", "title": "", "text": f"{body} {_key(i)} {body}"}) + "\n")
    with open(root / "queries.jsonl", "w") as fh:
        for i in range(N):
            fh.write(json.dumps({"_id": f"q{i}", "text": f"{_key(i)} {WORDS[i % len(WORDS)]} layer"}) + "\n")
    (root / "qrels" / "test.tsv").write_text("".join(f"q{i}\td{i}\t1\n" for i in range(N)))
    return root


def test_tune_records_the_choice_and_search_uses_it(collection, tmp_path, capsys):
    from eval import beir
    from rag.index import Index, IndexConfig, read_manifest, verify_index

    idx = tmp_path / "idx"
    # an index whose recorded fusion leans on the (noise) dense leg: what search does before tuning
    poor = FusionConfig(method="rrf", rrf_k=60, weights={"bm25": 0.2, "dense": 1.0}, weighting="fixed")
    Index.build(beir.load(collection).documents(), idx, IndexConfig(fusion=poor), progress=False)
    index = Index.open(idx)
    assert index.config.fusion == poor
    before = [[h.chunk.doc_id for h in index.search(f"{_key(i)} layer", k=5)] for i in range(N)]
    version = read_manifest(idx)["version"]

    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--tune", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ndcg@10"]["dev"]["hybrid (tuned)"] >= out["ndcg@10"]["dev"]["bm25"] - 1e-9
    assert out["ndcg@10"]["test"]["hybrid (tuned)"] > out["ndcg@10"]["test"]["hybrid (before)"]

    manifest = read_manifest(idx)  # checksum still valid; the same version: nothing re-indexed
    assert manifest["version"] == version and verify_index(idx)["checksummed"]
    chosen = manifest["config"]["fusion"]
    assert manifest["fusion_tuned"]["setting"] == out["setting"]
    assert FusionConfig(**chosen) != poor

    # search uses the chosen setting by default, and it changes what comes back
    index = Index.open(idx)
    assert index.config.fusion == FusionConfig(**chosen)
    after = [[h.chunk.doc_id for h in index.search(f"{_key(i)} layer", k=5)] for i in range(N)]
    assert after != before
    assert sum(a[0] == f"d{i}" for i, a in enumerate(after)) > sum(b[0] == f"d{i}" for i, b in enumerate(before))
    # an explicit fusion still wins
    assert [[h.chunk.doc_id for h in index.search(f"{_key(i)} layer", k=5, fusion=poor)] for i in range(N)] == before
    # and `assay search` follows the manifest too
    assert main(["search", f"{_key(3)} layer", "--index", str(idx), "--k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["doc_id"] for h in hits] == after[3][:3]

    # a later evaluation, or a build with the default IndexConfig, keeps the tuned setting
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--json"]) == 0
    capsys.readouterr()
    again = Index.build(beir.load(collection).documents(), idx, IndexConfig(), progress=False)
    assert again.config.fusion == FusionConfig(**chosen)
    assert read_manifest(idx)["config"]["fusion"] == chosen


def test_tune_refuses_other_modes_in_one_line(collection, tmp_path, capsys):
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(tmp_path / "i"), "--tune",
                 "--compare"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--tune" in err and len(err.splitlines()) == 1
