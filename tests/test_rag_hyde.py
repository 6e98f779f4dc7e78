"""HyDE on the tiny LM fixture: generation settings, memo, vector combination."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from rag.hyde import HyDE, HyDEConfig, HyDEError, make_hyde


class HashEmbedder:
    """A deterministic bag-of-words embedder (the `encode(list[str])` of the contract)."""

    def __init__(self, dim: int = 32):
        self.dim = dim
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1.0
            out[i] /= max(np.linalg.norm(out[i]), 1e-9)
        return out


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    from core.models import load_causal_lm

    return load_causal_lm(str(tiny_lm), device="cpu")


def test_query_vector_is_normalized_deterministic_and_memoized(tiny):
    model, tok = tiny
    hyde = HyDE(HyDEConfig(max_new_tokens=8, batch_size=2), model=model, tokenizer=tok)
    emb = HashEmbedder()
    qs = ["why do wings stall", "heat conduction in slabs", "panel flutter"]
    vecs = hyde.query_vectors(qs, emb)
    assert vecs.shape == (3, 32) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert hyde.generated == 3
    v = hyde.query_vector("panel flutter", emb)  # memoized: no new generation
    assert hyde.generated == 3 and np.allclose(v, vecs[2], atol=1e-6)
    passages = hyde.generate(qs)
    assert all(len(p) == 1 and isinstance(p[0], str) for p in passages)
    again = HyDE(HyDEConfig(max_new_tokens=8, batch_size=3), model=model, tokenizer=tok).generate(qs[:1])
    assert again[0] == passages[0]  # greedy decoding is deterministic


def test_vector_is_the_weighted_mean_of_query_and_passages(tiny):
    model, tok = tiny
    emb = HashEmbedder()
    hyde = HyDE(HyDEConfig(max_new_tokens=6, query_weight=0.25), model=model, tokenizer=tok)
    q = "shock waves ahead of blunt bodies"
    passage = hyde.generate([q])[0][0] or q
    pv, qv = emb.encode([passage])[0], emb.encode([q])[0]
    expected = 0.25 * qv + 0.75 * pv
    assert np.allclose(hyde.query_vector(q, emb), expected / np.linalg.norm(expected), atol=1e-5)
    only = HyDE(HyDEConfig(max_new_tokens=6, include_query=False), model=model, tokenizer=tok)
    assert np.allclose(only.query_vector(q, emb), pv, atol=1e-5)


def test_sampling_several_passages_and_prompt_formats(tiny):
    model, tok = tiny
    hyde = HyDE(HyDEConfig(max_new_tokens=5, num_passages=3, do_sample=True, seed=1), model=model, tokenizer=tok)
    out = hyde.generate(["a", "b"])
    assert [len(p) for p in out] == [3, 3]
    assert hyde.query_vectors(["a", "b"], HashEmbedder()).shape == (2, 32)
    chat = HyDE(HyDEConfig(system="You are terse."), model=model, tokenizer=tok).format("wing stall?")
    assert "You are terse." in chat and chat.rstrip().endswith("assistant") and "wing stall?" in chat
    plain = HyDE(HyDEConfig(chat_template=False), model=model, tokenizer=tok).format("wing stall?")
    assert plain.endswith("Question: wing stall?\nPassage:")


def test_config_is_documented_and_checked():
    import inspect

    src = inspect.getsource(HyDEConfig)
    for name in HyDEConfig.__dataclass_fields__:
        after = src.split(f"    {name}:", 1)[1].split("\n", 2)[1]
        assert after.strip().startswith('"""'), f"HyDEConfig.{name} has no doc line"
    with pytest.raises(HyDEError):
        HyDEConfig(prompt="no placeholder")
    with pytest.raises(HyDEError):
        HyDEConfig(query_weight=1.5)
    with pytest.raises(HyDEError, match="unknown HyDE option"):
        make_hyde(max_tokens=3)
    assert make_hyde("x", max_new_tokens=3).config.model == "x"


def test_with_config_shares_the_model_and_the_memo(tiny):
    model, tok = tiny
    hyde = HyDE(HyDEConfig(max_new_tokens=4), model=model, tokenizer=tok)
    emb = HashEmbedder()
    hyde.query_vector("lift", emb)
    other = hyde.with_config(query_weight=0.9)
    other.query_vector("lift", emb)
    assert other.generated == 0 and other.config.query_weight == 0.9
    assert hyde.with_config(max_new_tokens=5)._memo is not hyde._memo  # other passages
