"""Rerankers: score combination by hand, the LLM yes/no judge on the tiny LM fixture, and a
randomly initialised (real, not mocked) cross-encoder built from a config."""

from __future__ import annotations

import pytest

from rag.rerank import (
    LLMReranker,
    RerankConfig,
    RerankError,
    combine_scores,
    make_reranker,
)

try:
    from rag import Chunk, Hit
except ImportError:  # before the rag front door exports them
    from rag.documents import Chunk, Hit

PASSAGES = [
    "The lift of a wing increases with angle of attack until the flow separates and the wing stalls.",
    "Heat conduction in composite slabs is governed by the diffusion equation in each layer.",
    "Boundary layer transition on a flat plate depends on the Reynolds number and free stream turbulence.",
    "Supersonic flutter of panels can be predicted with piston theory.",
    "The recipe calls for two eggs and a cup of flour.",
    "Shock waves form ahead of a blunt body in supersonic flow.",
]


def make_hits(texts=PASSAGES):
    hits = []
    for i, t in enumerate(texts):
        c = Chunk(id=f"d{i}#0", doc_id=f"d{i}", start=0, end=len(t), text=t)
        hits.append(Hit(chunk=c, score=1.0 - 0.1 * i, rank=i + 1, scores={"bm25": 10.0 - i}))
    return hits


def test_combine_scores_by_hand():
    rr, first = [0.1, 0.9, 0.5], [3.0, 2.0, 1.0]
    assert combine_scores(rr, first, "replace") == rr
    # rrf: reranker ranks are (3, 1, 2); first-stage ranks (1, 2, 3)
    got = combine_scores(rr, first, "rrf", weight=0.5, rrf_k=60)
    assert got == pytest.approx([0.5 / 63 + 0.5 / 61, 0.5 / 61 + 0.5 / 62, 0.5 / 62 + 0.5 / 63])
    got = combine_scores(rr, first, "convex", weight=0.25)
    assert got == pytest.approx([0.25 * 0.0 + 0.75 * 1.0, 0.25 * 1.0 + 0.75 * 0.5, 0.25 * 0.5 + 0.75 * 0.0])
    assert combine_scores(rr, first, "rrf", weight=0.0) == sorted(combine_scores(rr, first, "rrf", weight=0.0),
                                                                  reverse=True)  # weight 0 keeps order


def test_config_and_factory_errors():
    with pytest.raises(RerankError, match="unknown reranker kind"):
        RerankConfig(kind="bm25")
    with pytest.raises(RerankError, match="weight"):
        RerankConfig(weight=2.0)
    assert (RerankConfig().combine, RerankConfig().weight) == ("convex", 0.2)  # measured: see bench
    assert (RerankConfig(kind="cross-encoder").combine, RerankConfig(kind="cross-encoder").weight) == ("replace", 0.5)
    with pytest.raises(RerankError, match="unknown reranker option"):
        make_reranker("llm", deepth=3)


@pytest.fixture(scope="module")
def tiny_reranker(tiny_lm):
    return make_reranker("llm", str(tiny_lm), depth=4, batch_size=3, max_passage_tokens=16)


def test_llm_reranker_reorders_the_head_and_keeps_the_tail(tiny_reranker):
    hits = make_hits()
    before = [(h.rank, h.score, dict(h.scores)) for h in hits]
    out = tiny_reranker.rerank("why does a wing stall", hits)
    assert [(h.rank, h.score, h.scores) for h in hits] == before  # inputs untouched
    assert [h.rank for h in out] == list(range(1, 7))
    head = out[:4]
    assert sorted(h.chunk.doc_id for h in head) == ["d0", "d1", "d2", "d3"]
    assert [h.chunk.doc_id for h in out[4:]] == ["d4", "d5"]
    assert all(0.0 <= h.scores["rerank"] <= 1.0 and "bm25" in h.scores for h in head)
    assert all("rerank" not in h.scores for h in out[4:])
    assert [h.score for h in head] == sorted((h.score for h in head), reverse=True)
    assert tiny_reranker.depth == 4
    assert len(tiny_reranker.rerank("q", hits, top_n=2)) == 2
    assert tiny_reranker.rerank("q", []) == []


def test_llm_relevance_is_softmax_of_yes_against_no_and_batching_does_not_change_it(tiny_reranker, tiny_lm):
    import torch

    rr = tiny_reranker
    scores = rr.score_pairs("why does a wing stall", PASSAGES)  # batches of 3, left padded
    one = make_reranker("llm", str(tiny_lm), batch_size=1, max_passage_tokens=16,
                        model_obj=rr.model, tokenizer=rr.tokenizer)
    assert one.score_pairs("why does a wing stall", PASSAGES) == pytest.approx(scores, abs=1e-4)
    # by hand for the first pair: no padding, full logits
    text = rr.format("why does a wing stall", PASSAGES[0])
    ids = rr.tokenizer(text, return_tensors="pt", add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = rr.model(input_ids=ids).logits[0, -1].float()
    yes = torch.logsumexp(logits[rr.yes_ids], 0)
    no = torch.logsumexp(logits[rr.no_ids], 0)
    assert scores[0] == pytest.approx(float(torch.exp(yes) / (torch.exp(yes) + torch.exp(no))), abs=1e-4)
    assert len(rr.yes_ids) == 4 and len(rr.no_ids) == 4
    assert "<|im_start|>assistant" in text and "why does a wing stall" in text


def test_llm_prompt_plain_and_truncation(tiny_lm, tiny_reranker):
    rr = LLMReranker(RerankConfig(model=str(tiny_lm), chat_template=False, max_passage_tokens=5),
                     model=tiny_reranker.model, tokenizer=tiny_reranker.tokenizer)
    text = rr.format("q?", PASSAGES[0])
    assert text.endswith("\nAnswer:") and "<|im_start|>" not in text
    assert "until the flow separates" not in text and " ..." in text


def test_fused_rerank_with_weight_zero_keeps_first_stage_order(tiny_lm, tiny_reranker):
    rr = make_reranker("llm", str(tiny_lm), depth=6, combine="rrf", weight=0.0,
                       model_obj=tiny_reranker.model, tokenizer=tiny_reranker.tokenizer)
    out = rr.rerank("wing stall", make_hits())
    assert [h.chunk.doc_id for h in out] == [f"d{i}" for i in range(6)]


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory, minilm):
    """A randomly initialised BERT cross-encoder (num_labels=1) saved from a config."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    path = tmp_path_factory.mktemp("models") / "tiny-cross-encoder"
    tok = AutoTokenizer.from_pretrained(minilm)  # MiniLM's real WordPiece vocabulary
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512, num_labels=1)
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_cross_encoder_reranker_orders_by_the_models_scores(tiny_cross_encoder):
    rr = make_reranker("cross-encoder", str(tiny_cross_encoder), depth=5, batch_size=2, device="cpu")
    out = rr.rerank("why does a wing stall", make_hits())
    direct = rr.model.predict([("why does a wing stall", p) for p in PASSAGES[:5]])
    expected = sorted(range(5), key=lambda i: -direct[i])
    assert [h.chunk.doc_id for h in out[:5]] == [f"d{i}" for i in expected]
    assert [h.scores["rerank"] for h in out[:5]] == pytest.approx(sorted(direct, reverse=True), abs=1e-5)
    assert out[5].chunk.doc_id == "d5" and out[5].rank == 6


def test_unknown_cross_encoder_is_a_user_error(tmp_path):
    from core.errors import UserError

    with pytest.raises(UserError, match=r"cannot load .*missing: no such file"):  # one line, exit 2 in the CLI
        make_reranker("cross-encoder", str(tmp_path / "missing"))


def test_apply_recombines_scores_computed_once(tiny_reranker):
    hits = make_hits()
    raw = tiny_reranker.score_pairs("wing stall", [h.chunk.text for h in hits[:4]])
    assert [h.chunk.id for h in tiny_reranker.apply(hits, raw)] == \
        [h.chunk.id for h in tiny_reranker.rerank("wing stall", hits)]
    fused = tiny_reranker.apply(hits, raw, config=RerankConfig(combine="convex", weight=0.0))
    assert [h.chunk.doc_id for h in fused] == [f"d{i}" for i in range(6)]  # first stage only
