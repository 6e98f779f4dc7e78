"""Distributed embedding on a real Ray cluster (two simulated nodes, `ray_cluster` in
conftest) with the real MiniLM: vectors allclose to `Embedder.encode`'s, search results
equal to the local build's, cached chunks never sent, a rerun and an update incremental,
the CLI's --ray."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import Index, IndexConfig
from rag.chunking import ChunkConfig
from rag.embeddings import Embedder
from rag.ray_embed import build_on_ray, embed_on_ray

pytestmark = pytest.mark.slow  # loads MiniLM in two actors and the driver (~30 s)

QUERIES = ["slipstream effect on wing lift", "boundary layer", "heat transfer", "supersonic flow over a cone"]


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory, shared_data) -> Path:
    d = tmp_path_factory.mktemp("corpus")
    rows = [json.loads(line) for line in open(shared_data / "cranfield" / "corpus.jsonl")][:24]
    for r in rows[:20]:
        (d / f"cran{r['_id']}.txt").write_text(r["text"])
    (d / "more.jsonl").write_text("".join(json.dumps({"_id": f"j{r['_id']}", "text": r["text"]}) + "\n" for r in rows[20:]))
    return d


def _config(cache) -> IndexConfig:
    return IndexConfig(chunking=ChunkConfig(chunk_size=300, chunk_overlap=60), embedding_cache=str(cache))


@pytest.fixture(scope="module")
def builds(ray_cluster, tmp_path_factory, corpus_dir):
    local = Index.build([corpus_dir], tmp_path_factory.mktemp("local") / "idx", _config(tmp_path_factory.mktemp("c1")),
                        progress=False)
    remote = build_on_ray([corpus_dir], tmp_path_factory.mktemp("ray") / "idx", _config(tmp_path_factory.mktemp("c2")),
                          progress=False)
    return local, remote


def test_vectors_allclose_to_encode(builds):
    local, remote = builds
    assert [c.text for c in remote.chunks] == [c.text for c in local.chunks]
    ref = Embedder("all-MiniLM-L6-v2", use_cache=False).encode([c.text for c in remote.chunks])
    np.testing.assert_allclose(np.asarray(remote.vectors), ref, atol=2e-5)
    stats = remote.last_update
    assert stats["ray"]["chunks_sent"] == len(remote) and stats["ray"]["actors"] == 2
    assert stats["model_calls"] == 0  # every vector the index ingested came from the cluster


def test_search_equals_local_build(builds):
    local, remote = builds
    for q in QUERIES:
        for mode in ("dense", "hybrid"):
            a = local.search(q, k=8, mode=mode)
            b = remote.search(q, k=8, mode=mode)
            assert [h.chunk.id for h in a] == [h.chunk.id for h in b], (q, mode)
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], atol=1e-5)


def test_cached_chunks_are_not_sent_and_updates_are_incremental(ray_cluster, tmp_path, corpus_dir):
    cache = tmp_path / "cache"
    cfg = _config(cache)
    first = Embedder("all-MiniLM-L6-v2", cache_dir=cache)
    files = sorted(corpus_dir.glob("*.txt"))
    first.encode([c.text for f in files[:5] for c in __import__("rag.chunking", fromlist=["chunk_text"]).chunk_text(
        f.read_text(), cfg.chunking, doc_id=f.name)])
    total = len(Index.build([corpus_dir], tmp_path / "probe", IndexConfig(chunking=cfg.chunking, use_embedding_cache=False),
                            progress=False))
    _, stats = embed_on_ray([corpus_dir], cfg)
    assert 0 < stats["chunks_sent"] < total  # the five files' chunks were in the cache
    idx = build_on_ray([corpus_dir], tmp_path / "idx", cfg, progress=False)
    assert idx.last_update["ray"]["chunks_sent"] == 0 and idx.last_update["model_calls"] == 0
    (corpus_dir / "new.txt").write_text("A brand new document about hypersonic re-entry heating of blunt bodies.")
    try:
        idx = build_on_ray([corpus_dir], tmp_path / "idx", cfg, progress=False)
        assert idx.last_update["added"] == 1 and idx.last_update["ray"]["chunks_sent"] == 1
        assert idx.search("hypersonic re-entry heating", k=1, mode="dense")[0].chunk.doc_id == "new.txt"
    finally:
        (corpus_dir / "new.txt").unlink()


def test_cli_index_ray(ray_cluster, tmp_path, corpus_dir):
    env = {**os.environ, "ASSAY_CACHE": str(tmp_path / "cache")}
    cmd = [sys.executable, "-m", "assay", "index", str(corpus_dir), "--index", str(tmp_path / "idx"), "--json",
           "--chunk-size", "300", "--ray", ray_cluster.address]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    stats = json.loads(res.stdout)
    assert stats["ray"]["chunks_sent"] == stats["total_chunks"] > 0 and stats["model_calls"] == 0
