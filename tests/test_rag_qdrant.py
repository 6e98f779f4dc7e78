"""Issue 15: the Qdrant backend behind the same Index API (qdrant-client's local mode runs
the real client calls, no server). Fast tests use a hash-based embedder that writes
through the real embedding cache (as tests/reliability do); the real MiniLM only in
the slow ones."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("qdrant_client")

from rag.chunking import ChunkConfig  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.fusion import FusionConfig  # noqa: E402
from rag.index import Index, IndexConfig  # noqa: E402
from rag.qdrant_store import QdrantConfig, QdrantStoreError, close_clients  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CHUNKING = ChunkConfig(chunk_size=200, chunk_overlap=40)


class FakeEmbedder(Embedder):
    """Deterministic unit vectors from a hash of the text; the cache is the real one."""

    def __init__(self, cache_dir, dim: int = 32, model: str = "all-MiniLM-L6-v2") -> None:
        super().__init__(model, cache_dir=cache_dir)
        self._dim = dim

    def _vec(self, text):
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
        v = np.random.default_rng(seed).normal(size=self._dim).astype(np.float32)
        return v / np.linalg.norm(v)

    def _encode_model(self, texts, progress):
        self.model_calls += len(texts)
        return np.stack([self._vec(t) for t in texts]).astype(np.float32)

    def encode_query(self, query):
        return self._vec(query)

    @property
    def dim(self):
        return self._dim


@pytest.fixture(autouse=True)
def _close():
    yield
    close_clients()


def write_corpus(directory: Path, tag: str, n: int = 12) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for p in directory.iterdir():
        p.unlink()
    words = ("wing lift drag shock boundary layer flutter panel heat transfer slipstream nozzle vortex "
             "supersonic laminar turbulent pressure gradient").split()
    rng = np.random.default_rng(sum(map(ord, tag)))
    for i in range(n):
        body = " ".join(rng.choice(words, size=40 + 3 * i))
        (directory / f"doc{i:03d}.txt").write_text(f"{tag} document {i}. {body}. The end of {tag} {i}.\n")
    return directory


def configs(tmp_path, **q):
    cache = str(tmp_path / "emb")
    faiss = IndexConfig(chunking=CHUNKING, embedding_cache=cache)
    qdrant = IndexConfig(chunking=CHUNKING, embedding_cache=cache, backend="qdrant",
                         qdrant=QdrantConfig(**{"path": str(tmp_path / "qdrant"), "collection": "test", **q}))
    return faiss, qdrant


def overlap(a: Index, b: Index, queries, mode, k=10, **kw) -> float:
    ra = a.search_many(queries, k, mode, **kw)
    rb = b.search_many(queries, k, mode, **kw)
    vals = [len({h.chunk.id for h in x} & {h.chunk.id for h in y}) / max(1, min(k, len(x)))
            for x, y in zip(ra, rb)]
    return float(np.mean(vals))


def state(index: Index, queries):
    return {m: [[h.chunk.id for h in hits] for hits in index.search_many(queries, 5, m)]
            for m in ("bm25", "dense", "hybrid")}


QUERIES = ["wing lift", "boundary layer heat transfer", "alpha document 3", "shock flutter panel",
           "slipstream drag", "beta end"]


# ---- parity -------------------------------------------------------------------------------
def test_same_results_as_faiss_and_bm25_scores_equal_assay_bm25(tmp_path):
    src = write_corpus(tmp_path / "src", "alpha")
    emb = FakeEmbedder(tmp_path / "emb")
    cf, cq = configs(tmp_path)
    f = Index.build([src], tmp_path / "f", cf, progress=False, embedder=emb)
    q = Index.build([src], tmp_path / "q", cq, progress=False, embedder=emb)
    assert type(q).__name__ == "QdrantIndex" and len(q) == len(f)
    for query in QUERIES:
        a = f.search(query, 10, "bm25")
        b = q.search(query, 10, "bm25")
        # the same scores (float32 in Qdrant); the same chunks except among ties at the cut
        assert [round(h.score, 4) for h in a] == [round(h.score, 4) for h in b]
        cut = round(a[-1].score, 4)
        assert ({h.chunk.id: round(h.score, 4) for h in a if round(h.score, 4) > cut}
                == {h.chunk.id: round(h.score, 4) for h in b if round(h.score, 4) > cut})
        assert [h.chunk.id for h in f.search(query, 10, "dense")] == [h.chunk.id for h in q.search(query, 10, "dense")]
    for mode in ("dense", "hybrid", "bm25"):
        assert overlap(f, q, QUERIES, mode) >= 0.95, mode
    # weights other than 1 and convex fusion are fused in assay: the same ranking exactly
    for fusion in (FusionConfig(weights={"bm25": 2.0, "dense": 1.0}), FusionConfig(method="convex"),
                   FusionConfig(method="convex", normalization="zscore")):
        for query in QUERIES:
            assert ([h.chunk.id for h in f.search(query, 10, "hybrid", fusion=fusion)]
                    == [h.chunk.id for h in q.search(query, 10, "hybrid", fusion=fusion)])
    reopened = Index.open(tmp_path / "q", embedder=emb)
    assert reopened.manifest["backend"] == "qdrant" and reopened.manifest["qdrant"]["collection"] == "test"
    assert not (tmp_path / "q" / reopened.manifest["version"] / "vectors.npy").exists()


def _synthetic(tmp_path, n_docs=1500):
    """A corpus of several thousand chunks: Zipf-distributed words of a 3,000-word vocabulary."""
    rng = np.random.default_rng(7)
    vocab = [f"w{i}x{''.join(chr(97 + (i * 7 + j) % 26) for j in range(3))}" for i in range(3000)]
    p = 1.0 / np.arange(1, len(vocab) + 1)
    p /= p.sum()
    from rag.documents import Document

    docs = [Document(id=f"d{i}", text=" ".join(rng.choice(vocab, size=int(rng.integers(60, 160)), p=p)))
            for i in range(n_docs)]
    queries = [" ".join(rng.choice(vocab[:1500], size=4)) for _ in range(40)]
    return docs, queries


def test_parity_on_several_thousand_chunks(tmp_path):
    docs, queries = _synthetic(tmp_path)
    emb = FakeEmbedder(tmp_path / "emb")
    cf, cq = configs(tmp_path, path=":memory:")
    f = Index.build(docs, tmp_path / "f", cf, progress=False, embedder=emb)
    q = Index.build(docs, tmp_path / "q", cq, progress=False, embedder=emb)
    assert len(q) == len(f) > 3000
    got = {mode: overlap(f, q, queries, mode) for mode in ("bm25", "dense", "hybrid")}
    print("top-10 overlap, synthetic", len(f), "chunks:", got)
    assert min(got.values()) >= 0.95, got


def _cranfield_pair(tmp_path, shared_data, **q):
    from eval import beir

    col = beir.load(shared_data / "cranfield")
    emb = FakeEmbedder(tmp_path / "emb")
    cache = str(tmp_path / "emb")
    f = Index.build(col.documents(), tmp_path / "f", IndexConfig(embedding_cache=cache), progress=False, embedder=emb)
    qc = IndexConfig(embedding_cache=cache, backend="qdrant",
                     qdrant=QdrantConfig(**{"path": ":memory:", "collection": "cranfield", **q}))
    qi = Index.build(col.documents(), tmp_path / "q", qc, progress=False, embedder=emb)
    return col, f, qi


@pytest.mark.slow
def test_cranfield_parity_fake_embedder_and_qdrant_idf_difference(tmp_path, shared_data):
    """Overlap and nDCG@10 on Cranfield's 225 queries (hash embedder: dense is noise, but
    the engine's answers must still be FAISS's). Also measures Modifier.IDF's difference."""
    from eval import ir_eval

    col, f, q = _cranfield_pair(tmp_path, shared_data)
    queries = col.judged_queries()
    texts = list(queries.values())
    out = {}
    for mode in ("bm25", "dense", "hybrid"):
        nf = ir_eval.evaluate_system(f, col, queries, mode=mode).metrics["ndcg@10"]
        nq = ir_eval.evaluate_system(q, col, queries, mode=mode).metrics["ndcg@10"]
        out[mode] = (overlap(f, q, texts, mode), nf, nq)
        assert out[mode][0] >= 0.95 and abs(nf - nq) <= 0.005, (mode, out[mode])
    close_clients()
    _, _, qi = _cranfield_pair(tmp_path / "idf", shared_data, sparse_idf="qdrant")
    out["bm25 Modifier.IDF"] = (overlap(f, qi, texts, "bm25"), out["bm25"][1],
                                ir_eval.evaluate_system(qi, col, queries, mode="bm25").metrics["ndcg@10"])
    print(json.dumps(out, indent=1))
    assert out["bm25 Modifier.IDF"][0] >= 0.8


# ---- incremental updates ------------------------------------------------------------------
def test_incremental_update_changes_deletes_and_is_idempotent(tmp_path):
    src = write_corpus(tmp_path / "src", "alpha")
    emb = FakeEmbedder(tmp_path / "emb")
    cf, cq = configs(tmp_path)
    q = Index.build([src], tmp_path / "q", cq, progress=False, embedder=emb)
    client, coll = q.client, q.qcfg.collection
    assert client.count(coll, exact=True).count == len(q)
    # change one document, remove two, add one
    (src / "doc000.txt").write_text("alpha document zero, rewritten: wing wing lift.\n")
    (src / "doc001.txt").unlink()
    (src / "doc002.txt").unlink()
    (src / "new.txt").write_text("a new document about heat transfer in the slipstream.\n")
    stats = q.update([src], progress=False)
    assert (stats["added"], stats["changed"], stats["removed"], stats["unchanged"]) == (1, 1, 2, 9)
    assert stats["chunks_embedded"] == 2  # only the new and the changed document's chunks
    assert client.count(coll, exact=True).count == len(q)
    fresh = Index.build([src], tmp_path / "f", cf, progress=False, embedder=emb)
    assert state(q, QUERIES)["bm25"] == state(fresh, QUERIES)["bm25"]
    assert state(q, QUERIES)["dense"] == state(fresh, QUERIES)["dense"]
    again = Index.open(tmp_path / "q", embedder=emb)
    assert state(again, QUERIES) == state(q, QUERIES)
    assert again.update([src], progress=False)["written"] is False  # nothing changed: nothing written
    # everything removed, then back: the collection follows
    empty = tmp_path / "empty"
    empty.mkdir()
    assert again.update([empty], progress=False)["removed"] == 11 and client.count(coll, exact=True).count == 0
    again.update([src], progress=False)
    assert client.count(coll, exact=True).count == len(again) == len(fresh)


# ---- crash safety ---------------------------------------------------------------------------
def _assay(tmp_path, *args, fault=None, cache=True, timeout=180):
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO))
    if cache:
        env["ASSAY_CACHE"] = str(tmp_path / "cache")
    env.pop("ASSAY_FAULT", None)
    if fault:
        env["ASSAY_FAULT"] = fault
    return subprocess.run([sys.executable, "-m", "assay", *map(str, args)], cwd=REPO, text=True,
                          capture_output=True, env=env, timeout=timeout)


@pytest.mark.parametrize("point,expect", [("qdrant:after_upsert", "old"), ("qdrant:after_sparse", "old"),
                                          ("index:before_commit", "old"), ("index:after_commit", "new"),
                                          ("qdrant:before_delete", "new")])
def test_killed_update_leaves_the_previous_or_the_new_state(tmp_path, point, expect):
    from rag.chunking import Chunker
    from rag.documents import load_sources

    a = write_corpus(tmp_path / "a", "alpha")
    b = write_corpus(tmp_path / "b", "beta", 14)
    (b / "doc003.txt").unlink()  # b removes a document, changes the others and adds two
    emb = FakeEmbedder(tmp_path / "cache" / "embeddings")
    chunker = Chunker(CHUNKING)
    for s in (a, b):  # the subprocess finds every chunk in the cache: no model is loaded
        emb.encode([c.text for d in load_sources([s]).documents for c in chunker.chunk(d)])
    cfg = IndexConfig(chunking=CHUNKING, embedding_cache=str(tmp_path / "cache" / "embeddings"), backend="qdrant",
                      qdrant=QdrantConfig(path=str(tmp_path / "qdrant"), collection="crash",
                                          # the reader after a kill fuses in assay (it sees leftovers);
                                          # engine RRF orders equal BM25 scores its own way
                                          engine_rrf=False))
    idx = tmp_path / "idx"
    old = state(Index.build([a], idx, cfg, progress=False, embedder=emb), QUERIES)
    new = state(Index.build([b], tmp_path / "ref", dataclass_replace(cfg, collection="ref"), progress=False,
                            embedder=emb), QUERIES)
    close_clients()  # local mode: one process at a time
    r = _assay(tmp_path, "index", b, "--index", idx, "--quiet", fault=point)
    assert r.returncode == 137, r.stderr
    q = Index.open(idx, embedder=emb)
    assert state(q, QUERIES) == (old if expect == "old" else new)
    stored = q.client.count("crash", exact=True).count
    assert stored >= len(q)  # what the killed writer left is still there, and never served
    close_clients()
    r = _assay(tmp_path, "index", b, "--index", idx, "--quiet", "--json")
    assert r.returncode == 0, r.stderr
    q = Index.open(idx, embedder=emb)
    assert state(q, QUERIES) == new
    assert q.client.count("crash", exact=True).count == len(q)  # leftovers gone
    assert q.client.count("crash", count_filter=_gone_filter(), exact=True).count == 0


def dataclass_replace(cfg, **q):
    import dataclasses

    return dataclasses.replace(cfg, qdrant=dataclasses.replace(cfg.qdrant, **q))


def _gone_filter():
    from qdrant_client import models as m

    return m.Filter(must_not=[m.IsEmptyCondition(is_empty=m.PayloadField(key="gone"))])  # points marked gone


# ---- errors ----------------------------------------------------------------------------------
def test_errors_are_one_line(tmp_path):
    src = write_corpus(tmp_path / "src", "alpha", 4)
    emb = FakeEmbedder(tmp_path / "emb")
    _, cq = configs(tmp_path)
    # unreachable server
    bad = dataclass_replace(cq, url="http://127.0.0.1:9", path=None, timeout=2)
    with pytest.raises(QdrantStoreError, match=r"cannot reach Qdrant at http://127.0.0.1:9"):
        Index.build([src], tmp_path / "u", bad, progress=False, embedder=emb)
    q = Index.build([src], tmp_path / "q", cq, progress=False, embedder=emb)
    # a collection built with another dimension / embedder, or by another index
    other = FakeEmbedder(tmp_path / "emb16", dim=16)
    with pytest.raises(QdrantStoreError, match="belongs to the assay index"):
        Index.build([src], tmp_path / "q2", cq, progress=False, embedder=other)
    q.client.delete_collection("test")
    close_clients()
    with pytest.raises(QdrantStoreError, match=r"collection 'test' not found at local path .*rebuild"):
        Index.open(tmp_path / "q")
    # the collection now holds 16-d vectors of another model, the index says 32-d MiniLM
    from qdrant_client import models as m

    from rag.qdrant_store import client_for
    client_for(cq.qdrant).create_collection(
        "test", vectors_config={"dense": m.VectorParams(size=16, distance=m.Distance.DOT)},
        metadata={"assay": {"embedder": "bge-small-en-v1.5", "dim": 16}})
    with pytest.raises(QdrantStoreError, match=r"holds 16-d vectors of 'bge-small-en-v1.5', but the index .* "
                                               r"uses 'all-MiniLM-L6-v2' \(32-d\)"):
        Index.open(tmp_path / "q")
    close_clients()
    # on the command line: one line, exit 2
    for args in (["index", src, "--index", tmp_path / "c", "--backend", "qdrant", "--qdrant-url", "http://127.0.0.1:9"],
                 ["search", "wing", "--index", tmp_path / "q"],
                 ["index", src, "--index", tmp_path / "c2", "--backend", "qdrant"]):
        r = _assay(tmp_path, *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (args, r.stderr)


# ---- the command line ------------------------------------------------------------------------
def test_cli_index_and_search_with_the_qdrant_backend(tmp_path):
    src = write_corpus(tmp_path / "src", "alpha", 6)
    emb = FakeEmbedder(tmp_path / "cache" / "embeddings")
    from rag.chunking import Chunker
    from rag.documents import load_sources

    emb.encode([c.text for d in load_sources([src]).documents for c in Chunker().chunk(d)])
    r = _assay(tmp_path, "index", src, "--index", tmp_path / "i", "--backend", "qdrant", "--qdrant-path",
               tmp_path / "qd", "--collection", "cli", "--json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["backend"] == "qdrant" and stats["total_documents"] == 6 and stats["model_calls"] == 0
    r = _assay(tmp_path, "search", "wing lift", "--index", tmp_path / "i", "--mode", "bm25", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["hits"], r.stderr
    manifest = json.loads((tmp_path / "i" / "manifest.json").read_text())
    assert manifest["backend"] == "qdrant" and manifest["qdrant"]["collection"] == "cli"
    assert sorted(manifest["files"]) == ["chunks", "docs", "sparse"]


@pytest.mark.slow
def test_eval_retrieval_cranfield_qdrant_matches_the_directory_index(tmp_path, shared_data):
    """The real MiniLM on Cranfield: nDCG@10 within 0.005 of the directory index in every
    mode, top-10 overlap >= 0.95 for dense and hybrid (the figures are printed)."""
    out = {}
    for backend in ("faiss", "qdrant"):
        extra = ["--backend", "qdrant", "--qdrant-path", tmp_path / "qd"] if backend == "qdrant" else []
        r = _assay(tmp_path, "eval", "retrieval", "--data", "cranfield", "--compare", "--json", "--no-progress",
                   "--index", tmp_path / backend, *extra, cache=False, timeout=1800)  # the user's embedding cache
        assert r.returncode == 0, r.stderr[-2000:]
        out[backend] = json.loads(r.stdout)
    from eval import beir

    col = beir.load(shared_data / "cranfield")
    texts = list(col.judged_queries().values())
    f = Index.open(tmp_path / "faiss")
    q = Index.open(tmp_path / "qdrant", embedder=f.embedder)
    report = {}
    for mode in ("bm25", "dense", "hybrid"):
        report[mode] = {"overlap@10": overlap(f, q, texts, mode), "ndcg@10 faiss": out["faiss"][mode]["ndcg@10"],
                        "ndcg@10 qdrant": out["qdrant"][mode]["ndcg@10"]}
    print(json.dumps(report, indent=1))
    for mode, r in report.items():
        assert abs(r["ndcg@10 faiss"] - r["ndcg@10 qdrant"]) <= 0.005, (mode, r)
        assert r["overlap@10"] >= 0.95, (mode, r)
