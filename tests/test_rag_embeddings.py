"""The embedding cache: numpy shards keyed by model and content hash, no pickle."""

from __future__ import annotations

import numpy as np

from rag.embeddings import EmbeddingCache


def test_cache_roundtrip_same_model_names_and_compaction(tmp_path):
    cache = EmbeddingCache(tmp_path, "sentence-transformers/all-MiniLM-L6-v2")
    for i in range(EmbeddingCache.MAX_SHARDS + 3):
        cache.put_many([f"text {i}"], np.full((1, 4), i, dtype=np.float32))
    # the logical name and the hub id share one cache; loading merges the many shards
    again = EmbeddingCache(tmp_path, "all-MiniLM-L6-v2")
    got = again.get_many(["text 5", "text 66", "never embedded"])
    np.testing.assert_array_equal(got[0], np.full(4, 5, np.float32))
    np.testing.assert_array_equal(got[1], np.full(4, 66, np.float32))
    assert got[2] is None and len(again) == EmbeddingCache.MAX_SHARDS + 3
    assert len(list(again.dir.glob("*.keys.npy"))) == 1
    assert all(f.suffix == ".npy" for f in again.dir.iterdir())
    assert len(EmbeddingCache(tmp_path, "all-MiniLM-L6-v2")) == EmbeddingCache.MAX_SHARDS + 3
    # another model never sees these vectors
    assert EmbeddingCache(tmp_path, "BAAI/bge-small-en-v1.5").get_many(["text 5"]) == [None]


def test_half_written_shard_is_ignored(tmp_path):
    cache = EmbeddingCache(tmp_path, "m")
    cache.put_many(["a"], np.ones((1, 3), np.float32))
    # a killed writer can leave a vectors file without its keys file
    np.save(cache.dir / "orphan.vecs.npy", np.zeros((1, 3), np.float32))
    (cache.dir / "broken.keys.npy").write_bytes(b"not numpy")
    fresh = EmbeddingCache(tmp_path, "m")
    assert fresh.get_many(["a"])[0].tolist() == [1.0, 1.0, 1.0] and len(fresh) == 1


def test_query_fast_path_is_the_same_vector_as_sentence_transformers_encode(tmp_path):
    from rag.embeddings import Embedder

    emb = Embedder(cache_dir=tmp_path, encoder="torch")  # the torch variant's numpy query path
    for q in ["what similarity laws must be obeyed for aeroelastic models", "x", "ünïcode ✓ " * 200]:
        fast = emb.encode_query(q)
        ref = emb.model.encode([q], normalize_embeddings=True, convert_to_numpy=True)[0]
        assert fast.dtype == np.float32 and fast.shape == ref.shape
        assert np.abs(fast - ref).max() < 1e-5
