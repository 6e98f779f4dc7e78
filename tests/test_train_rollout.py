"""Search in the loop: a <search> call retrieves, pastes <information>, and those tokens are out of the loss."""

from __future__ import annotations

import os

import pytest
import torch
from lm_forcing import forcing_processor

from train.rollouts import Passage, SearchConfig, SearchRollout, make_search_rollout

pytestmark = pytest.mark.slow  # trains or runs a real model end to end (the fast loop: -m 'not slow')

CORPUS = [
    "A wing stalls when the angle of attack exceeds the critical angle and the flow separates.",
    "Penguins are flightless birds of the southern hemisphere.",
    "Turbofan engines mix bypass air with the core exhaust.",
    "Laminar boundary layers transition to turbulence downstream.",
]
QUERY = "wing stall angle"


@pytest.fixture(scope="module")
def bm25_retrieve():
    """A real BM25 (bm25s) over a few strings: the retriever callable the rollout accepts."""
    import bm25s

    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(CORPUS, stopwords="en", show_progress=False), show_progress=False)

    def retrieve(query: str, k: int) -> list[Passage]:
        docs, _ = retriever.retrieve(bm25s.tokenize([query], stopwords="en", show_progress=False),
                                     k=min(k, len(CORPUS)), show_progress=False)
        return [Passage(CORPUS[i], f"doc{i}", 0, len(CORPUS[i])) for i in docs[0].tolist()]

    return retrieve


@pytest.fixture(scope="module")
def tiny(tiny_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    tok.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    return model, tok


def _rollout(model, tok, retrieve, config, prompts, max_new_tokens=20):
    from transformers import LogitsProcessorList

    call = tok(f"<search>{QUERY}</search>", add_special_tokens=False)["input_ids"]
    torch.manual_seed(0)
    rollout = SearchRollout(retrieve, config)
    return rollout.generate(model, tok, prompts, max_new_tokens=max_new_tokens,
                            generate_kwargs={"logits_processor": LogitsProcessorList([forcing_processor(call)])})


def test_search_call_retrieves_and_pastes_information(tiny, bm25_retrieve):
    model, tok = tiny
    gen = _rollout(model, tok, bm25_retrieve, SearchConfig(top_k=2, max_turns=1), ["Why do wings stall?", "Q?"])
    for i in range(2):
        assert gen.queries[i] == [QUERY]
        assert gen.passages[i][0].text == CORPUS[0]  # BM25's best match for the query
        text = tok.decode(gen.completion_ids[i], skip_special_tokens=False)
        assert text.startswith(f"<search>{QUERY}</search>\n<information>[1] {CORPUS[0]}\n[2] ")
        assert "</information>" in text
        # the pasted span is exactly the tokens with mask 0 ...
        pasted = [t for t, m in zip(gen.completion_ids[i], gen.policy_mask[i]) if m == 0]
        assert tok.decode(pasted).startswith("\n<information>[1] A wing stalls")
        assert tok.decode(pasted).endswith("</information>\n")
        # ... the policy wrote the search call and kept writing after the information block
        mask = gen.policy_mask[i]
        first_zero, last_zero = mask.index(0), len(mask) - 1 - mask[::-1].index(0)
        assert all(mask[:first_zero]) and all(m == 0 for m in mask[first_zero : last_zero + 1])
        assert sum(mask[last_zero + 1 :]) > 0
        assert len(gen.logprobs[i]) == len(gen.completion_ids[i])
        assert all(lp == 0.0 for lp, m in zip(gen.logprobs[i], mask) if m == 0)
        assert sum(mask) <= 20  # the policy-token budget excludes pasted tokens


def test_retrieved_tokens_get_no_gradient_in_ppo_loss(tiny, bm25_retrieve):
    from train.ppo import _forward, _token_logprobs, policy_loss

    model, tok = tiny
    gen = _rollout(model, tok, bm25_retrieve, SearchConfig(top_k=1, max_turns=1), ["Why do wings stall?"])
    t = gen.padded(tok.pad_token_id)
    ids = torch.cat([t["prompt_ids"], t["completion_ids"]], 1)
    att = torch.cat([t["prompt_mask"], t["completion_mask"]], 1)
    P = t["prompt_ids"].shape[1]
    model.zero_grad()
    logits, _ = _forward(model, ids, att, P, 1.0, False)
    logits.retain_grad()
    logprobs = _token_logprobs(logits, t["completion_ids"])
    adv = torch.ones_like(logprobs)
    loss, _, _ = policy_loss(logprobs, logprobs.detach(), adv, t["policy_mask"], 0.2)
    loss.backward()
    per_token_grad = logits.grad.abs().sum(-1)[0]
    pm = t["policy_mask"][0].bool()
    assert (per_token_grad[~pm] == 0).all()  # retrieved tokens: out of the loss
    assert (per_token_grad[pm] > 0).all()  # every token the policy wrote: in it
    model.zero_grad()


def test_search_limit_and_empty_results(tiny):
    model, tok = tiny
    gen = _rollout(model, tok, lambda q, k: [], SearchConfig(max_turns=0), ["Q?"])
    text = tok.decode(gen.completion_ids[0])
    assert gen.queries[0] == []
    assert "<information>Search limit reached: answer now.</information>" in text
    gen = _rollout(model, tok, lambda q, k: [], SearchConfig(max_turns=1), ["Q?"])
    assert "<information>No results.</information>" in tok.decode(gen.completion_ids[0])


@pytest.fixture(scope="module")
def wing_index(tmp_path_factory):
    from rag.documents import Document
    from rag.index import Index

    directory = tmp_path_factory.mktemp("idx") / "wings"
    Index.build([Document(f"doc{i}", t, "test") for i, t in enumerate(CORPUS)], directory, progress=False)
    return str(directory)


def test_trl_grpo_rollout_func_masks_retrieved_tokens(tiny_lm, wing_index, tmp_path):
    """TRL 1.16's GRPOTrainer with the search rollout: env_mask becomes its loss mask, rewards get the contexts."""
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from datasets import Dataset
    from transformers import AutoTokenizer, LogitsProcessorList
    from trl import GRPOConfig, GRPOTrainer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    call = tok(f"<search>{QUERY}</search>", add_special_tokens=False)["input_ids"]
    seen = []

    def grounded(completions, contexts, search_calls, **kwargs):
        seen.append((contexts, search_calls))
        from rewards.grounding import score_grounding

        return [score_grounding(c, ctx).score or 0.0 for c, ctx in zip(completions, contexts)]

    rollout = make_search_rollout(wing_index, SearchConfig(top_k=2, max_turns=1, mode="bm25"),
                                  generate_kwargs={"logits_processor": LogitsProcessorList([forcing_processor(call)])})
    args = GRPOConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=16, max_steps=1, learning_rate=1e-4, use_cpu=True, bf16=False,
                      report_to=[], save_strategy="no", logging_steps=1, seed=0)
    data = Dataset.from_list([{"prompt": "Why do wings stall?"}, {"prompt": "What is a turbofan?"}] * 2)
    trainer = GRPOTrainer(model=str(tiny_lm), reward_funcs=[grounded], args=args, train_dataset=data,
                          processing_class=tok, rollout_func=rollout)
    trainer.model.train()
    out = trainer._generate_and_score_completions([{"prompt": "Why do wings stall?"} for _ in range(4)])
    loss_mask = out["completion_mask"] * out["tool_mask"]
    for i in range(4):
        ids = out["completion_ids"][i][out["completion_mask"][i].bool()].tolist()
        masked = [t for t, m in zip(ids, loss_mask[i][: len(ids)].tolist()) if m == 0]
        assert tok.decode(masked).startswith("\n<information>[1] A wing stalls")
        assert loss_mask[i].sum() < out["completion_mask"][i].sum()
    contexts, calls = seen[-1]
    assert calls == [1, 1, 1, 1] and contexts[0][0] == CORPUS[0]
    trainer.train()  # one real optimizer step through TRL's loss with the mask
    assert trainer.state.global_step == 1


def test_ppo_rolls_out_with_search(wing_index, tmp_path):
    """train_ppo(search=...) goes through the search rollout and logs its calls."""
    from train.ppo import PPOConfig, train_ppo
    from train.runs import RunDir
    from train.toy import rows, toy_model

    prompts = [dict(r, prompt=r["question"]) for r in rows(size=4)]
    seen = []

    def reward(completions, rs):
        seen.extend(rs)
        return [0.0] * len(completions)

    config = PPOConfig(steps=1, batch_size=4, mini_batch_size=4, ppo_epochs=1, max_new_tokens=4, save_every=0)
    run = RunDir(tmp_path / "run")
    train_ppo(str(toy_model()), prompts, reward, config, run,
              search=SearchConfig(mode="bm25", instructions="default"), search_index=wing_index)
    record = run.metrics()[0]
    assert record["search_calls"] == 0.0  # the toy model never learned to search ...
    assert all(r["contexts"] == [] for r in seen)  # ... so the reward saw empty contexts, per row
