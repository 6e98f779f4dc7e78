"""The numpy query encoder: the same vector as sentence-transformers, without torch."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from rag.query_encoder import LightQueryEncoder, _erf

QUERIES = [
    "what similarity laws must be obeyed for aeroelastic models",
    "x",
    "",
    "How do I   open a file?\tTabs\nand newlines",
    "ünïcode ✓ Café naïve 中文字符 " * 40,  # truncated at max_seq_length (256 tokens)
    "a " * 600,
]


def test_erf_matches_math_erf():
    x = np.linspace(-8, 8, 20001)
    assert np.abs(_erf(x) - np.array([math.erf(v) for v in x])).max() < 1e-14


def test_query_vector_is_sentence_transformers_encode(minilm):
    from sentence_transformers import SentenceTransformer

    light = LightQueryEncoder.load(minilm)
    assert light is not None
    model = SentenceTransformer(minilm, device="cpu")
    ref = model.encode(QUERIES, batch_size=1, normalize_embeddings=True, convert_to_numpy=True)
    for query, want in zip(QUERIES, ref):
        got = light.encode(query)
        assert got.dtype == np.float32 and got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=0, atol=1e-6, err_msg=repr(query[:30]))
        # the same tokens, truncation included
        assert light.tokenizer.encode(query).ids == model.tokenizer(query, truncation=True,
                                                                      max_length=model.max_seq_length)["input_ids"]


def test_other_models_are_left_to_sentence_transformers(tmp_path, minilm):
    assert LightQueryEncoder.load(tmp_path) is None  # not a model folder
    import shutil

    copy = tmp_path / "cls-pooled"
    shutil.copytree(minilm, copy)
    pooling = json.loads((copy / "1_Pooling" / "config.json").read_text())
    pooling.update(pooling_mode_mean_tokens=False, pooling_mode_cls_token=True)
    (copy / "1_Pooling" / "config.json").write_text(json.dumps(pooling))
    assert LightQueryEncoder.load(copy) is None


def test_one_query_search_imports_neither_torch_nor_sentence_transformers(tmp_path):
    """A cold hybrid search (the CLI's path) runs the query through numpy."""
    from rag.index import Index, IndexConfig

    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"_id": str(i), "text": t}) + "\n" for i, t in enumerate(
        ["Wings stall when the angle of attack is too high.", "Heat transfer in hypersonic flow.",
         "Boundary layers separate under an adverse pressure gradient."])))
    Index.build([corpus], tmp_path / "index", IndexConfig(embedding_cache=str(tmp_path / "cache")), progress=False)
    code = (
        "import json, sys\n"
        "from assay.cli import main\n"
        f"rc = main(['search', 'why do wings stall', '--index', {str(tmp_path / 'index')!r}, '--json', '--k', '3'])\n"
        "print(json.dumps(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**{k: v for k, v in os.environ.items() if k != "ASSAY_LIGHT_QUERY_ENCODER"},
                                                                  "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result, loaded = (json.loads(line) for line in proc.stdout.strip().splitlines()[-2:])
    assert loaded == []
    assert result["hits"][0]["doc_id"] == "0"
    # and the ranking is the one the full model gives
    full = Index.open(tmp_path / "index")
    _ = full.embedder.model  # loaded: encode_query takes sentence-transformers' path
    assert [h["doc_id"] for h in result["hits"]] == [h.chunk.doc_id for h in full.search("why do wings stall", k=3)]


@pytest.mark.parametrize("value", ["0", "off"])
def test_the_light_encoder_can_be_turned_off(monkeypatch, tmp_path, value):
    from rag.embeddings import Embedder

    monkeypatch.setenv("ASSAY_LIGHT_QUERY_ENCODER", value)
    assert Embedder(cache_dir=tmp_path)._light_encoder() is None
