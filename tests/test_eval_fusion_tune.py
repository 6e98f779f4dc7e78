"""`assay eval retrieval --tune`: fusion chosen on dev lands in the index manifest and
becomes what search does by default. A tiny collection and a fake embedder (hash vectors:
the dense leg is noise, BM25 finds every answer), so no model is loaded."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from assay.cli import main
from rag.embeddings import Embedder
from rag.fusion import FusionConfig

WORDS = "wing lift drag shock boundary layer flutter panel heat transfer slipstream nozzle".split()
N = 40


class FakeEmbedder(Embedder):
    """Deterministic unit vectors from a hash of the text (no model); the cache is the real one."""

    def __init__(self, model="all-MiniLM-L6-v2", **kw):
        kw.pop("device", None)
        super().__init__(model, **kw)

    def _encode_model(self, texts, progress):
        self.model_calls += len(texts)
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).normal(size=16)
            out.append(v / np.linalg.norm(v))
        return np.asarray(out, dtype=np.float32)

    def encode_query(self, query):
        return self._encode_model([query], False)[0]


def _key(i: int) -> str:  # a made-up word only document i contains
    return "".join("bcdfghklmnprstvz"[(i * 7 + j * 3) % 16] + "aeiou"[(i + j) % 5] for j in range(4)) + "x"


@pytest.fixture()
def collection(tmp_path, monkeypatch):
    monkeypatch.setenv("ASSAY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("rag.index.Embedder", FakeEmbedder)  # what an index loads for its embedder
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
    from rag.index import Index, read_manifest, verify_index

    idx = tmp_path / "idx"
    # before: the default fusion; the noisy dense leg pulls wrong documents up
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--json"]) == 0
    before_eval = json.loads(capsys.readouterr().out)["ndcg@10"]
    index = Index.open(idx)
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
    assert chosen != json.loads(json.dumps(FusionConfig().__dict__))

    # search uses the chosen setting by default, and it changes what comes back
    index = Index.open(idx)
    assert index.config.fusion == FusionConfig(**chosen)
    after = [[h.chunk.doc_id for h in index.search(f"{_key(i)} layer", k=5)] for i in range(N)]
    assert after != before
    assert sum(a[0] == f"d{i}" for i, a in enumerate(after)) > sum(b[0] == f"d{i}" for i, b in enumerate(before))
    # an explicit fusion still wins
    assert [[h.chunk.doc_id for h in index.search(f"{_key(i)} layer", k=5, fusion=FusionConfig())]
            for i in range(N)] == before
    # and `assay search` follows the manifest too
    assert main(["search", f"{_key(3)} layer", "--index", str(idx), "--k", "3", "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)["hits"]
    assert [h["doc_id"] for h in hits] == after[3][:3]

    # a later evaluation (which builds with the default IndexConfig) keeps the tuned setting
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(idx), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ndcg@10"] > before_eval
    assert read_manifest(idx)["config"]["fusion"] == chosen


def test_tune_refuses_other_modes_in_one_line(collection, tmp_path, capsys):
    assert main(["eval", "retrieval", "--data", str(collection), "--index", str(tmp_path / "i"), "--tune",
                 "--compare"]) == 2
    err = capsys.readouterr().err.strip()
    assert "--tune" in err and len(err.splitlines()) == 1
