"""Evaluation generation with search in the loop: the search mode of the RAG QA task.

    gen = search_generator(Generator(model, cfg, cache=db), task)   # `task` itself decides
    outs = gen.generate(prompts)            # a Generator: same cache, same Generation records

A RAG QA task in search mode (``world:DIR[:split]:search``) asks the model to call
``<search>…</search>``; answering it needs retrieval between turns, not one `generate`
call. `search_generator` returns, for such a task, a `SearchGenerator`: a `Generator`
whose completions are written by `tasks.search_loop.SearchRollout` -- the loop search
training uses -- over the task's own index (`task.index()`), retriever and k. For any
other suite it returns the generator it was given. `eval.runner.run` (so `assay eval run`)
and bench/train_grounded.py both go through it, so their numbers agree.

Settings (`search_config`): up to `SEARCH_TURNS` searches, `task.k` passages each, at most
`TURN_TOKENS` model tokens per turn and the config's `max_new_tokens` over all turns
(pasted passages do not count). The loop samples, so greedy decoding (temperature 0, the
eval default) is sampling with top_k=1; temperature > 0 samples with the config's
temperature, top_p and top_k, `n` rows per prompt. Stop strings are not supported (the
loop's own stops are ``</search>`` and the end of sequence).

The completion recorded is everything after the prompt, decoded: the model's turns *and*
the pasted ``<information>`` blocks, because `RagQA.score` reads the retrieved passages
back from them (recall@k, citations, support). `tokens` counts the model's tokens only.

Cache keys are the `Generator`'s plus the search settings and the index version, so a
search-mode completion is never served for a one-shot prompt (or the other way round),
and a rebuilt index is searched afresh. Generation runs in this process on transformers
whatever the generator's backend (vLLM and Ray actors generate one shot only).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from eval.generation import GenerationError, Generator, progress_bar
from tasks.search_loop import SearchConfig, SearchRollout, index_retriever

SEARCH_TURNS = 2  # searches per completion (a further call gets the "answer now" note)
TURN_TOKENS = 64  # model tokens per turn


def search_config(task) -> SearchConfig:
    """How a search-mode RAG QA task is searched: its retriever and k, `SEARCH_TURNS`, `TURN_TOKENS`."""
    return SearchConfig(max_turns=SEARCH_TURNS, top_k=task.k, mode=task.retriever, max_turn_tokens=TURN_TOKENS)


def is_search_task(suite: Any) -> bool:
    from tasks.rag_qa import RagQA

    return isinstance(suite, RagQA) and suite.mode == "search"


def search_generator(generator: Generator, suite: Any) -> Generator:
    """The generator a suite's completions come from: for a RAG QA task in search mode, a
    `SearchGenerator` over the task's index; for any other suite, `generator` itself."""
    if not is_search_task(suite):
        return generator
    index = suite.index()
    version = str(index.manifest.get("version", ""))
    return SearchGenerator(generator, SearchRollout(index_retriever(index, suite.retriever), search_config(suite)),
                           index_version=version)


class SearchGenerator(Generator):
    """A `Generator` writing each completion with search in the loop (`rollout`).

    Shares the wrapped generator's model, tokenizer, identity, cache and stats; only the
    cache keys and the generation itself differ."""

    def __init__(self, generator: Generator, rollout: SearchRollout, *, index_version: str = "") -> None:
        super().__init__(generator.model_name, generator.config, cache=generator.cache, progress=generator.progress)
        self.backend = "transformers"
        self.base = generator
        self.rollout = rollout
        self.index_version = index_version
        self.stats = generator.stats

    # the wrapped generator's model: loaded once, whichever of the two asks first
    @property
    def path(self) -> str:
        return self.base.path

    @property
    def identity(self) -> str:
        return self.base.identity

    @property
    def tokenizer(self):
        return self.base.tokenizer

    def _load_model(self):
        return Generator._load_model(self.base)  # in this process, also for a Ray or vLLM generator

    def search_settings(self) -> dict[str, Any]:
        """What the search loop adds to the generation settings (in the cache key and the summary)."""
        return {**dataclasses.asdict(self.rollout.config), "index_version": self.index_version}

    def keys(self, rendered: str, n: int) -> list[str]:
        from eval.cache import digest

        settings = {**self.config.cache_settings(), "search": self.search_settings()}
        return [digest(self.identity, rendered, settings, j) for j in range(n)]

    def _generate_hf(self, prompts: list[str], n: int, keys: dict[str, list[str]], add_special: bool) -> None:
        import torch

        cfg = self.config
        if cfg.stop:
            raise GenerationError(f"stop strings ({cfg.stop}) are not supported with search in the loop")
        model, tok = self._load_model(), self.tokenizer
        sample = cfg.temperature > 0
        per_call = n if sample else 1  # greedy: one completion, repeated
        decoding = dict(temperature=cfg.temperature, top_k=cfg.top_k, top_p=cfg.top_p) if sample else \
            dict(temperature=1.0, top_k=1, top_p=1.0)
        budget = self.rollout.config.max_new_tokens or cfg.max_new_tokens
        bar = progress_bar(len(prompts), f"generating with search ({self.model_name})", self.progress)
        for start in range(0, len(prompts), cfg.batch_size):
            batch = prompts[start:start + cfg.batch_size]
            torch.manual_seed(cfg.seed + start)
            with torch.no_grad():
                out = self.rollout.generate(model, tok, [p for p in batch for _ in range(per_call)],
                                            max_new_tokens=cfg.max_new_tokens, **decoding)
            rows = []
            for i, prompt in enumerate(batch):
                for j in range(n):
                    r = i * per_call + (j if sample else 0)
                    written = sum(out.policy_mask[r])  # the model's tokens, not the pasted ones
                    text = tok.decode(out.completion_ids[r], skip_special_tokens=True)
                    rows.append((keys[prompt][j], text, "length" if written >= budget else "stop", written))
                    self.stats["new_tokens"] += written if (j == 0 or sample) else 0
            self.cache.put_generations(self.identity, rows)
            self.stats["generated"] += len(rows)
            bar.update(len(batch))
        bar.close()
