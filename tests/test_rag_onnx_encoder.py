"""The ONNX Runtime embedder (rag/onnx_encoder.py): the real MiniLM, exported once and cached."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rag.embeddings import Embedder, EmbeddingCache, variant_id
from rag.onnx_encoder import OnnxExportError, choose_variant, export_dir, unsupported_reason

QUERIES = ["what similarity laws must be obeyed for aeroelastic models", "x", "",
           "How do I   open a file?\tTabs\nand newlines", "ünïcode ✓ Café naïve 中文字符 " * 40]


@pytest.fixture(scope="module")
def texts(shared_data) -> list[str]:
    """Real text: chunks of the first Cranfield documents, of many lengths, and queries."""
    from rag.chunking import Chunker
    from rag.documents import load_sources
    from rag.index import IndexConfig

    docs = load_sources([shared_data / "cranfield" / "corpus.jsonl"]).documents[:12]
    chunks = [c.text for d in docs for c in Chunker(IndexConfig().chunking).chunk(d)]
    return chunks + QUERIES


@pytest.fixture(scope="module")
def reference(texts) -> np.ndarray:
    return Embedder(encoder="torch", use_cache=False).encode(texts)


def test_onnx_vectors_match_sentence_transformers(texts, reference):
    fp32 = Embedder(encoder="onnx", use_cache=False)
    int8 = Embedder(encoder="onnx-int8", use_cache=False)
    got32, got8 = fp32.encode(texts), int8.encode(texts)
    assert got32.dtype == got8.dtype == np.float32 and got32.shape == got8.shape == reference.shape
    np.testing.assert_allclose(np.linalg.norm(got8, axis=1), 1.0, rtol=1e-5)
    assert np.abs(got32 - reference).max() < 1e-4  # fp32: the same vectors up to rounding
    cos = (got8 * reference).sum(1)
    assert cos.min() >= 0.99, [(round(float(c), 4), t[:40]) for c, t in zip(cos, texts) if c < 0.99]
    # a text's vector does not depend on the texts beside it, nor on batch size or order
    np.testing.assert_array_equal(int8.encode(texts[::-1])[::-1], got8)
    np.testing.assert_array_equal(np.stack([int8.encode_query(q) for q in QUERIES]), got8[-len(QUERIES):])
    np.testing.assert_allclose(Embedder(encoder="onnx", use_cache=False, batch_size=1).encode(texts), got32,
                               atol=1e-5)


def test_cache_keeps_variants_apart(tmp_path, texts, reference):
    assert variant_id("sentence-transformers/all-MiniLM-L6-v2", "onnx-int8") == "all-MiniLM-L6-v2@onnx-int8"
    assert variant_id("all-MiniLM-L6-v2", "torch") == "all-MiniLM-L6-v2"  # where caches always were
    int8 = Embedder(cache_dir=tmp_path, encoder="onnx-int8")
    assert int8.cache.dir.name == "all-MiniLM-L6-v2@onnx-int8" and int8.variant_id == "all-MiniLM-L6-v2@onnx-int8"
    vecs = int8.encode(texts[:6])
    for other in ("torch", "onnx"):
        assert EmbeddingCache(tmp_path, "all-MiniLM-L6-v2", other).get_many(texts[:6]) == [None] * 6
    torch_emb = Embedder(cache_dir=tmp_path, encoder="torch")
    assert torch_emb.cache.dir != int8.cache.dir
    np.testing.assert_allclose(torch_emb.encode(texts[:6]), reference[:6], atol=1e-5)
    assert torch_emb.model_calls == 6  # nothing came from the int8 shards
    again = Embedder("sentence-transformers/all-MiniLM-L6-v2", cache_dir=tmp_path, encoder="onnx-int8")
    np.testing.assert_array_equal(again.encode(texts[:6]), vecs)
    assert again.model_calls == 0


def test_export_is_cached_and_reused(monkeypatch, minilm):
    first = export_dir(minilm)
    meta = json.loads((first / "meta.json").read_text())
    assert {p.name for p in first.iterdir()} >= {"model.onnx", "model.int8.onnx", "meta.json"}
    assert meta["max_abs_diff_to_torch"] < 1e-4 and meta["int8_fp32_nodes"]
    stamp = (first / "model.int8.onnx").stat().st_mtime_ns
    assert len(list((first.parent / "fingerprints").iterdir())) >= 1  # the weights are not hashed again

    def no_export(*a, **k):
        raise AssertionError("exported again")

    monkeypatch.setattr("rag.onnx_encoder._export", no_export)
    assert export_dir(minilm) == first
    assert Embedder(encoder="onnx-int8", use_cache=False).encode(["reused"]).shape == (1, 384)
    assert (first / "model.int8.onnx").stat().st_mtime_ns == stamp
    assert not [p for p in first.parent.iterdir() if p.name.startswith(f".{first.name}") and p.is_dir()]


def test_models_it_cannot_export_fall_back_to_torch_with_a_reason(tmp_path, minilm):
    import shutil

    copy = tmp_path / "max-pooled"
    shutil.copytree(minilm, copy)
    pooling = json.loads((copy / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_max_tokens=True)
    (copy / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert "pooling" in unsupported_reason(copy)
    emb = Embedder(str(copy), cache_dir=tmp_path / "cache")
    assert emb.encoder == "torch" and "pooling" in emb.encoder_reason
    assert "@" not in emb.cache.dir.name  # torch: no variant suffix
    ref = emb.model.encode(["wing stall"], normalize_embeddings=True)
    np.testing.assert_allclose(emb.encode(["wing stall"]), ref, atol=1e-6)
    with pytest.raises(OnnxExportError, match="onnx-int8 is not available for this model: pooling"):
        Embedder(str(copy), encoder="onnx-int8")
    with pytest.raises(OnnxExportError, match="not a local model folder"):
        choose_variant(None, "onnx", None)
    with pytest.raises(ValueError, match="unknown embedder backend"):
        Embedder(encoder="int4")
    # a GPU keeps torch; so does an explicit request
    assert Embedder(device="cuda", use_cache=False).encoder == "torch"
    assert Embedder(encoder="torch", use_cache=False).encoder_reason == "requested"
    assert Embedder(use_cache=False, device="cpu").encoder == "onnx-int8"


def test_index_records_its_variant_and_queries_use_it(tmp_path):
    from rag.index import Index, IndexConfig, IndexDirectoryError, _manifest_checksum

    docs = [{"_id": str(i), "text": t} for i, t in enumerate(
        ["Wings stall when the angle of attack is too high.", "Heat transfer in hypersonic flow.",
         "Boundary layers separate under an adverse pressure gradient."])]
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(d) + "\n" for d in docs))
    cache = str(tmp_path / "cache")
    built = Index.build([corpus], tmp_path / "idx", IndexConfig(embedding_cache=cache), progress=False)
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["embedder"]["encoder"] == manifest["config"]["encoder"] == "onnx-int8"
    opened = Index.open(tmp_path / "idx")
    assert opened.embedder.encoder == "onnx-int8"
    np.testing.assert_array_equal(opened._query_vectors(["why do wings stall"], None)[0],
                                  Embedder(encoder="onnx-int8", use_cache=False).encode(["why do wings stall"])[0])
    assert opened.search("why do wings stall", k=1, mode="dense")[0].chunk.doc_id == "0"
    # another variant can neither update nor query it
    with pytest.raises(IndexDirectoryError, match="embedder backend 'onnx-int8', not 'torch'"):
        Index.build([corpus], tmp_path / "idx", IndexConfig(embedding_cache=cache, encoder="torch"), progress=False)
    with pytest.raises(IndexDirectoryError, match="does not match"):
        Index.open(tmp_path / "idx", embedder=Embedder(encoder="torch", use_cache=False))
    # `auto` keeps what the index has; an index from before variants was built by torch
    again = Index.build([corpus], tmp_path / "idx", IndexConfig(embedding_cache=cache), progress=False)
    assert again.config.encoder == "onnx-int8" and again.last_update["model_calls"] == 0
    legacy = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    del legacy["config"]["encoder"], legacy["embedder"]["encoder"]
    legacy["checksum"] = _manifest_checksum(legacy)
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(legacy))
    assert Index.open(tmp_path / "idx").embedder.encoder == "torch"
    assert len(built) == 3


def test_onnxruntime_is_imported_only_to_embed():
    code = ("import sys\nfrom rag.embeddings import Embedder\nfrom rag.index import Index\n"
            "e = Embedder(use_cache=False)\nassert e.encoder == 'onnx-int8', e.encoder\n"
            "print(sorted(m for m in ('onnxruntime', 'onnx', 'torch') if m in sys.modules))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["[]"]
