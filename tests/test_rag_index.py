"""The index directory end to end with the real MiniLM embedder: build, search, the
contract R2 and others code against, incremental updates, the embedding cache, errors,
FAISS variants, a process killed mid-write, and the CLI."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import UserError
from rag import Document, Hit, Index, IndexConfig
from rag.chunking import ChunkConfig
from rag.dense import DenseConfig
from rag.embeddings import Embedder, EmbeddingCache
from rag.index import IndexDirectoryError


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("embcache")


@pytest.fixture(scope="module")
def embedder(cache) -> Embedder:
    return Embedder("all-MiniLM-L6-v2", cache_dir=cache)


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, shared_data) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    rows = [json.loads(line) for line in open(shared_data / "cranfield" / "corpus.jsonl")][:8]
    for r in rows:
        (d / f"cran{r['_id']}.txt").write_text(r["text"])
    return d


def _config(cache, **kw) -> IndexConfig:
    return IndexConfig(chunking=ChunkConfig(chunk_size=500, chunk_overlap=100), embedding_cache=str(cache), **kw)


@pytest.fixture(scope="module")
def built(tmp_path_factory, corpus_dir, cache, embedder) -> Index:
    return Index.build([corpus_dir], tmp_path_factory.mktemp("idx") / "index", _config(cache),
                       progress=False, embedder=embedder)


def test_build_layout_and_contract(built, corpus_dir):
    d = built.directory
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and manifest["embedder"] == {"id": "all-MiniLM-L6-v2", "dim": 384,
                                                                   "encoder": built.embedder.encoder}
    assert manifest["config"]["encoder"] == built.embedder.encoder != "auto"
    assert manifest["chunking"] == {"chunk_size": 500, "chunk_overlap": 100, "chunk_unit": "chars"}
    assert manifest["counts"]["documents"] == 8 and manifest["counts"]["chunks"] == len(built) > 8
    v = d / manifest["version"]
    assert {p.name for p in v.iterdir()} == {"docs.jsonl", "chunks.jsonl", "vectors.npy", "dense.faiss", "bm25"}
    assert not list(d.rglob("*.pkl")) and not list(d.rglob("*.pickle"))
    texts = {p.name: p.read_text() for p in corpus_dir.iterdir()}
    for i in range(len(built)):
        c = built.chunk(i)
        assert texts[c.doc_id][c.start:c.end] == c.text
    vecs = built.embedder.encode(["wing", "slipstream lift"])
    assert vecs.dtype == np.float32 and vecs.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=1), 1.0, rtol=1e-5)
    (pos, score), *_ = built.dense_search_vectors(built.vectors[3:4], 1)[0]
    assert pos == 3 and score == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("mode", ["hybrid", "bm25", "dense"])
def test_search_modes(built, mode):
    hits = built.search("slipstream effect on wing lift", k=5, mode=mode)
    assert 1 <= len(hits) <= 5 and all(isinstance(h, Hit) for h in hits)
    assert [h.rank for h in hits] == list(range(1, len(hits) + 1))
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].chunk.doc_id == "cran1.txt"  # Cranfield doc 1 is about wings in a slipstream
    keys = {"hybrid": {"bm25", "dense"}, "bm25": {"bm25"}, "dense": {"dense"}}[mode]
    assert set(hits[0].scores) <= keys and hits[0].scores
    many = built.search_many(["slipstream effect on wing lift", "boundary layer"], k=5, mode=mode)
    assert [(h.chunk.id, round(h.score, 5)) for h in many[0]] == [(h.chunk.id, round(h.score, 5)) for h in hits]
    with pytest.raises(IndexDirectoryError, match="unknown search mode"):
        built.search("x", mode="sparse")


def test_reopen_gives_same_results(built, embedder):
    again = Index.open(built.directory, embedder=embedder)
    assert len(again) == len(built)
    a = [(h.chunk.id, h.score) for h in again.search("heat transfer", k=5)]
    b = [(h.chunk.id, h.score) for h in built.search("heat transfer", k=5)]
    assert [x for x, _ in a] == [x for x, _ in b]


def test_incremental_update(tmp_path, corpus_dir, cache, embedder):
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(corpus_dir.iterdir())[:6]:
        (src / p.name).write_text(p.read_text())
    idx = Index.build([src], tmp_path / "idx", _config(cache), progress=False, embedder=embedder)
    before = {c.id: np.asarray(idx.vectors[i]).copy() for i, c in enumerate(idx.chunks)}
    v1 = idx.manifest["version"]

    same = idx.update([src], progress=False)
    assert same["written"] is False and same["unchanged"] == 6 and same["model_calls"] == 0
    assert idx.manifest["version"] == v1

    names = sorted(p.name for p in src.iterdir())
    (src / names[0]).unlink()  # removed
    (src / names[1]).write_text((src / names[1]).read_text() + " a brand new closing sentence about flutter.")
    (src / "new.md").write_text("# Flutter\n\nPanel flutter at supersonic speeds, studied for this test only.")
    calls = embedder.model_calls
    stats = idx.update([src], progress=False)
    assert {k: stats[k] for k in ("added", "changed", "removed", "unchanged")} == \
        {"added": 1, "changed": 1, "removed": 1, "unchanged": 4}
    # only chunks never seen before reach the model (the changed doc's early chunks are cached)
    new_chunk_ids = [c for c in idx.chunks if c.doc_id in ("new.md", names[1])]
    assert 0 < embedder.model_calls - calls <= len(new_chunk_ids)
    assert not (tmp_path / "idx" / v1).exists()
    for i, c in enumerate(idx.chunks):
        if c.doc_id not in ("new.md", names[1]):
            np.testing.assert_array_equal(idx.vectors[i], before[c.id])  # untouched, not re-embedded
    assert all(c.doc_id != names[0] for c in idx.chunks)
    reopened = Index.open(tmp_path / "idx")
    assert reopened.search("panel flutter supersonic", k=1, mode="bm25")[0].chunk.doc_id == "new.md"
    assert sorted(reopened.doc_ids) == sorted(p.name for p in src.iterdir())


def test_embedding_cache_makes_a_second_index_free(tmp_path, corpus_dir, cache, built):
    fresh = Embedder("all-MiniLM-L6-v2", cache_dir=cache)  # never loads the model
    idx = Index.build([corpus_dir], tmp_path / "idx2", _config(cache), progress=False, embedder=fresh)
    assert idx.last_update["chunks_embedded"] == len(idx) and idx.last_update["model_calls"] == 0
    assert fresh._model is None
    np.testing.assert_allclose(np.asarray(idx.vectors), np.asarray(built.vectors), atol=1e-6)
    store = EmbeddingCache(cache, "all-MiniLM-L6-v2", fresh.encoder)
    assert len(store) >= len(idx) and all(f.suffix == ".npy" for f in store.dir.iterdir())


def test_errors_are_clear(tmp_path, built, corpus_dir, cache, embedder):
    with pytest.raises(IndexDirectoryError, match="no assay index"):
        Index.open(tmp_path)
    with pytest.raises(IndexDirectoryError, match="built with embedder 'all-MiniLM-L6-v2'"):
        Index.open(built.directory, embedder="BAAI/bge-small-en-v1.5")
    # the hub id of the same model is the same model
    Index.open(built.directory, embedder="sentence-transformers/all-MiniLM-L6-v2")
    with pytest.raises(IndexDirectoryError, match="chunking"):
        Index.build([corpus_dir], built.directory, IndexConfig(embedding_cache=str(cache)), progress=False)
    copy = tmp_path / "old"
    copy.mkdir()
    m = json.loads((built.directory / "manifest.json").read_text())
    m["format_version"] = 99
    (copy / "manifest.json").write_text(json.dumps(m))
    with pytest.raises(IndexDirectoryError, match="format version 99"):
        Index.open(copy)
    (tmp_path / "notindex").mkdir()
    (tmp_path / "notindex" / "file.txt").write_text("x")
    with pytest.raises(IndexDirectoryError, match="not an assay index"):
        Index.build([corpus_dir], tmp_path / "notindex", progress=False, embedder=embedder)
    assert issubclass(IndexDirectoryError, UserError)


@pytest.mark.parametrize("kind", ["hnsw", "ivfpq"])
def test_faiss_variants_agree_with_exact(tmp_path, corpus_dir, cache, embedder, built, kind):
    cfg = _config(cache, dense=DenseConfig(kind=kind, rerank_factor=100))
    idx = Index.build([corpus_dir], tmp_path / kind, cfg, progress=False, embedder=embedder)
    q = embedder.encode(["pressure distribution on a wing", "heat transfer in a boundary layer"], cache=False)
    exact = built.dense_search_vectors(q, 5)
    approx = idx.dense_search_vectors(q, 5)
    assert [[p for p, _ in r] for r in approx] == [[p for p, _ in r] for r in exact]
    reopened = Index.open(tmp_path / kind)
    assert reopened.config.dense.kind == kind
    assert [[p for p, _ in r] for r in reopened.dense_search_vectors(q, 5)] == [[p for p, _ in r] for r in exact]
    # switching FAISS type on an existing index rebuilds the dense part only, no model calls
    calls = embedder.model_calls
    back = Index.build([corpus_dir], tmp_path / kind, _config(cache), progress=False, embedder=embedder)
    assert back.config.dense.kind == "flat" and embedder.model_calls == calls


def _writer(directory, docs, conn):  # runs in a forked child: rag is already imported
    index = Index.open(directory)
    while True:
        for v in "ab":
            stats = index.update(docs[v], progress=False)
            conn.send(stats["seconds"])


def test_killed_writer_leaves_a_readable_index(tmp_path):
    import multiprocessing

    from rag.chunking import Chunker

    cache = tmp_path / "cache"
    cfg = ChunkConfig(200, 40)
    docs = {v: [Document(id=f"d{i}", text=f"version {v} document {i} " + "lorem ipsum dolor " * 30)
                for i in range(80)] for v in "ab"}
    # the writer must not spend its time in the model: seed the cache with unit vectors
    # for these texts (this test is about the file system, not about embeddings)
    rng = np.random.default_rng(0)
    texts = sorted({c.text for v in "ab" for d in docs[v] for c in Chunker(cfg).chunk(d)})
    vecs = rng.normal(size=(len(texts), 384)).astype(np.float32)
    EmbeddingCache(cache, "all-MiniLM-L6-v2").put_many(texts, vecs / np.linalg.norm(vecs, axis=1, keepdims=True))
    directory = tmp_path / "idx"
    Index.build(docs["a"], directory, IndexConfig(chunking=cfg, embedding_cache=str(cache)), progress=False)
    ctx = multiprocessing.get_context("fork")  # a real process, SIGKILLed; fork skips re-importing
    rnd = random.Random(1)
    versions = set()
    for attempt in range(5):
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_writer, args=(directory, docs, child), daemon=True)
        proc.start()
        parent.recv()  # first update: a no-op or a real write
        seconds = parent.recv()  # a real write finished; kill somewhere inside the next one
        time.sleep(rnd.uniform(0.0, 1.2 * seconds))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        idx = Index.open(directory)  # must always open, whatever the moment of the kill
        versions.add(idx.manifest["version"])
        assert len(idx.doc_ids) == 80 and len(idx) == len(idx.vectors) == len(idx.dense) == idx.bm25.n_docs
        marks = {c.text.split()[1] for c in idx.chunks if c.text.startswith("version")}
        assert len(marks) == 1  # one complete version, never a mix
        hits = idx.search("document 7", k=3, mode="bm25")
        assert hits and all(h.chunk.text for h in hits)
    assert len(versions) >= 2, "the writer never committed a version before being killed"
    Index.open(directory).update(docs["a"], progress=False)
    leftovers = [p.name for p in directory.iterdir() if p.is_dir()]
    assert len(leftovers) == 1 and leftovers[0].startswith("v")


def test_cli_index_and_search(tmp_path, corpus_dir, cache, built, capsys, monkeypatch):
    from assay.cli import main

    monkeypatch.setenv("ASSAY_CACHE", str(cache.parent / "assay-cache"))
    # point the default embedding cache at the warmed one: nothing is embedded again
    (cache.parent / "assay-cache").mkdir(exist_ok=True)
    link = cache.parent / "assay-cache" / "embeddings"
    if not link.exists():
        link.symlink_to(cache)
    out_dir = tmp_path / "cli-idx"
    assert main(["index", str(corpus_dir), "--index", str(out_dir), "--chunk-size", "500",
                 "--chunk-overlap", "100", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["added"] == 8 and stats["model_calls"] == 0 and stats["total_chunks"] == len(built)
    assert main(["index", str(corpus_dir), "--index", str(out_dir), "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["unchanged"] == 8 and again["written"] is False
    assert main(["search", "slipstream wing", "--index", str(out_dir), "--mode", "bm25", "--k", "3", "--json"]) == 0
    out = capsys.readouterr().out
    result = json.loads(out)  # exactly one JSON object
    assert out.count("\n") == 1 and 1 <= len(result["hits"]) <= 3
    assert result["hits"][0]["doc_id"] == "cran1.txt" and {"start", "end", "score", "text"} <= set(result["hits"][0])
    assert main(["search", "slipstream wing", "--index", str(out_dir), "--mode", "bm25", "--k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].split()[:2] == ["1", "cran1.txt"] and "[0," in lines[0]
    assert main(["search", "x", "--index", str(tmp_path / "none")]) == 2
    assert "no assay index" in capsys.readouterr().err
    assert main(["index", str(corpus_dir), "--index", str(out_dir), "--chunk-size", "300"]) == 2
    assert "--rebuild" in capsys.readouterr().err


def test_ivfpq_retrains_once_the_corpus_has_doubled(tmp_path, cache, embedder, shared_data):
    rows = [json.loads(line) for line in open(shared_data / "cranfield" / "corpus.jsonl")][:30]
    docs = [Document(id=r["_id"], text=r["text"]) for r in rows]
    cfg = _config(cache, dense=DenseConfig(kind="ivfpq", rerank_factor=100))
    idx = Index.build(docs[:6], tmp_path / "ivf", cfg, progress=False, embedder=embedder)
    first = idx.dense.trained_on
    assert first == len(idx)
    grown = idx.update(docs[:24], progress=False)  # appended, and more than twice the size
    assert grown["dense_retrained"] and idx.dense.trained_on == len(idx) > 2 * first
    assert json.loads((idx.directory / "manifest.json").read_text())["dense_trained_on"] == len(idx)
    small = Index.open(idx.directory).update(docs[:25], progress=False)  # appended, not doubled
    assert not small["dense_retrained"]
    reopened = Index.open(idx.directory)
    assert reopened.dense.trained_on == len(idx) < len(reopened)
    q = embedder.encode(["pressure distribution on a wing"], cache=False)
    flat = Index.build(docs[:25], tmp_path / "flat", _config(cache), progress=False, embedder=embedder)
    assert [p for p, _ in reopened.dense_search_vectors(q, 3)[0]] == [p for p, _ in flat.dense_search_vectors(q, 3)[0]]
