"""Search in the loop, as Search-R1 does: the model may call a retriever while it writes.

    rollout = SearchRollout.from_index("idx/", SearchConfig(max_turns=2, top_k=3))
    gen = rollout.generate(model, tokenizer, prompt_texts, max_new_tokens=160)
    gen.completion_ids[i], gen.policy_mask[i], gen.queries[i], gen.passages[i]

One loop for everything that writes with retrieval between turns: training (the TRL
adaptor `train.rollouts.make_search_rollout`, and assay's PPO) and evaluation (the search
mode of the RAG QA task, `eval.search_generation`), so a model is evaluated by the very
loop it was trained in.

A completion is written in turns. The policy samples until it closes a
``<search>query</search>`` (or ends, or runs out of budget); the query goes to the
retriever (an assay index, or any ``retrieve(query, k) -> [Passage]``); the top-k chunks
are pasted in as ``<information>[1] …</information>`` (`rewards.conventions.information_block`,
the block the programmatic search traces are written with); the policy continues from
there, for up to `max_turns` searches, and its final answer is what is rewarded or scored.

The pasted tokens are the environment's, not the policy's: they get mask 0 in
`SearchGeneration.policy_mask`. TRL 1.16 takes a per-token ``env_mask`` from a rollout
function and multiplies it into the loss mask (`completion_mask * tool_mask` in
GRPOTrainer), so no gradient, KL or entropy term touches retrieved text; assay's PPO uses
the same mask for its rewards, GAE and losses. Token ids are kept exactly as sampled and
as tokenized for the information blocks (never decoded and re-encoded), so the ids the
loss sees are the ids the policy produced.

This module imports torch and transformers only inside the functions that generate.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Literal, NamedTuple, Sequence

from core.config import ConfigError
from rewards.conventions import INFORMATION_PASSAGE_CHARS, INFORMATION_TEMPLATE, information_block
from tasks.passages import SEARCH_INSTRUCTIONS

if TYPE_CHECKING:
    import torch

    from rag.index import Index


_SEARCH = re.compile(r"<search>(.*?)</search>", re.S)


@dataclass
class SearchConfig:
    """How search-in-the-loop rollouts run. Every field has the default shown."""

    max_turns: int = 2  # searches allowed per completion; a further call gets a "no more searches" note
    top_k: int = 3  # chunks pasted in per search
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"  # the index's search mode
    max_new_tokens: int | None = None  # policy tokens per completion over all turns; None = the caller's max_new_tokens
    max_turn_tokens: int | None = None  # policy tokens per turn; None = no per-turn cap
    max_information_tokens: int = 384  # an information block is cut to this many tokens
    max_passage_chars: int = INFORMATION_PASSAGE_CHARS  # each pasted chunk is cut to this many characters
    information_template: str = INFORMATION_TEMPLATE  # must contain {passages}
    limit_message: str = "Search limit reached: answer now."  # pasted when the policy searches past max_turns
    instructions: str | None = None  # prepended to every prompt's (last user) text; "default" = SEARCH_INSTRUCTIONS; None = prompts as they are

    def __post_init__(self) -> None:
        if self.max_turns < 0:
            raise ConfigError(f"search.max_turns: must be >= 0, got {self.max_turns}")
        if self.top_k < 1:
            raise ConfigError(f"search.top_k: must be >= 1, got {self.top_k}")
        if "{passages}" not in self.information_template:
            raise ConfigError("search.information_template: must contain {passages}")
        if self.instructions == "default":
            self.instructions = SEARCH_INSTRUCTIONS
        if self.mode not in ("hybrid", "bm25", "dense"):
            raise ConfigError(f"search.mode: must be hybrid, bm25 or dense, got {self.mode!r}")


class Passage(NamedTuple):
    text: str
    doc_id: str
    start: int
    end: int


Retriever = Callable[[str, int], Sequence[Passage]]


def index_retriever(index: "str | Index", mode: str = "hybrid") -> Retriever:
    """`retrieve(query, k)` over an assay index: its directory, or one already open."""
    if isinstance(index, (str, os.PathLike)):
        from rag.index import Index

        index = Index.open(index)

    def retrieve(query: str, k: int) -> list[Passage]:
        return [Passage(h.chunk.text, h.chunk.doc_id, h.chunk.start, h.chunk.end) for h in index.search(query, k=k, mode=mode)]

    return retrieve


@dataclass
class SearchGeneration:
    """Per-row results of a batch of search rollouts (unpadded lists)."""

    prompt_ids: list[list[int]]
    completion_ids: list[list[int]]
    policy_mask: list[list[int]]  # 1 = sampled by the policy, 0 = pasted information
    logprobs: list[list[float]]  # sampling log-probs of policy tokens (0.0 on pasted ones)
    queries: list[list[str]] = field(default_factory=list)
    passages: list[list[Passage]] = field(default_factory=list)

    @property
    def search_calls_list(self) -> list[int]:
        return [len(q) for q in self.queries]

    def padded(self, pad_id: int) -> dict[str, "torch.Tensor"]:
        """Left-padded prompts, right-padded completions, as PPO's evaluate/update steps want them."""
        import torch

        P = max(len(p) for p in self.prompt_ids)
        C = max(1, max(len(c) for c in self.completion_ids))
        n = len(self.prompt_ids)
        out = {
            "prompt_ids": torch.full((n, P), pad_id, dtype=torch.long),
            "prompt_mask": torch.zeros((n, P), dtype=torch.long),
            "completion_ids": torch.full((n, C), pad_id, dtype=torch.long),
            "completion_mask": torch.zeros((n, C), dtype=torch.long),
            "policy_mask": torch.zeros((n, C), dtype=torch.long),
        }
        for i, (p, c, m) in enumerate(zip(self.prompt_ids, self.completion_ids, self.policy_mask)):
            if p:
                out["prompt_ids"][i, P - len(p):] = torch.tensor(p)
                out["prompt_mask"][i, P - len(p):] = 1
            if c:
                out["completion_ids"][i, : len(c)] = torch.tensor(c)
                out["completion_mask"][i, : len(c)] = 1
                out["policy_mask"][i, : len(c)] = torch.tensor(m)
        return out


def _stop_on_search(tokenizer, prompt_len: int):
    """A StoppingCriteria that ends a row once its newly generated text closes a </search>.

    Only the generated tokens are decoded: a prompt that mentions </search> (the
    instructions do) must not stop generation at its first token."""
    import torch
    from transformers import StoppingCriteria

    class StopOnSearch(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, prompt_len:]
            tail = new[:, -12:].tolist()
            texts = tokenizer.batch_decode(tail, skip_special_tokens=False)
            return torch.tensor(["</search>" in t for t in texts], dtype=torch.bool, device=input_ids.device)

    return StopOnSearch()


def _search_end(tokenizer, tokens: list[int]) -> int | None:
    """Index of the token that completes the first </search>, or None."""
    for j in range(len(tokens)):
        if "</search>" in tokenizer.decode(tokens[max(0, j - 12) : j + 1], skip_special_tokens=False):
            return j
    return None


class SearchRollout:
    """Batched multi-turn generation with retrieval between turns."""

    def __init__(self, retrieve: Retriever, config: SearchConfig | None = None):
        self.retrieve = retrieve
        self.config = config or SearchConfig()

    @classmethod
    def from_index(cls, index: "str | Index", config: SearchConfig | None = None) -> "SearchRollout":
        """Retrieval from an assay index (a directory, or an open `rag.index.Index`) in `config.mode`."""
        config = config or SearchConfig()
        return cls(index_retriever(index, config.mode), config)

    def information(self, query: str, start_number: int) -> tuple[str, list[Passage]]:
        passages = list(self.retrieve(query, self.config.top_k)) if query.strip() else []
        if not query.strip():
            return self.config.information_template.replace("{passages}", "Empty query."), passages
        return information_block([p.text for p in passages], start=start_number, max_chars=self.config.max_passage_chars,
                                 template=self.config.information_template), passages

    def generate(self, model, tokenizer, prompts: Sequence[str], *, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, max_prompt_length: int | None = None,
                 generate_kwargs: dict | None = None) -> SearchGeneration:
        """Roll out one completion per prompt text (already chat-templated)."""
        import torch

        cfg = self.config
        budget = cfg.max_new_tokens or max_new_tokens
        device = next(model.parameters()).device
        pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos_ids = {tokenizer.eos_token_id}
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        eos_ids |= set(gen_eos if isinstance(gen_eos, (list, tuple)) else [gen_eos])
        eos_ids.discard(None)

        prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        if max_prompt_length:
            prompt_ids = [p[-max_prompt_length:] for p in prompt_ids]
        n = len(prompt_ids)
        comp: list[list[int]] = [[] for _ in range(n)]
        mask: list[list[int]] = [[] for _ in range(n)]
        logps: list[list[float]] = [[] for _ in range(n)]
        queries: list[list[str]] = [[] for _ in range(n)]
        passages: list[list[Passage]] = [[] for _ in range(n)]
        written = [0] * n  # policy tokens so far
        done = [False] * n

        for _round in range(2 * cfg.max_turns + 2):  # every round either ends rows or spends a search
            active = [i for i in range(n) if not done[i]]
            if not active:
                break
            seqs = [prompt_ids[i] + comp[i] for i in active]
            L = max(len(s) for s in seqs)
            input_ids = torch.full((len(active), L), pad_id, dtype=torch.long)
            attention = torch.zeros((len(active), L), dtype=torch.long)
            for r, s in enumerate(seqs):
                input_ids[r, L - len(s):] = torch.tensor(s)
                attention[r, L - len(s):] = 1
            room = max(budget - written[i] for i in active)
            seg_max = min(room, cfg.max_turn_tokens) if cfg.max_turn_tokens else room
            out = model.generate(
                input_ids=input_ids.to(device), attention_mask=attention.to(device), do_sample=True,
                temperature=temperature, top_k=top_k, top_p=top_p, max_new_tokens=seg_max,
                pad_token_id=pad_id, eos_token_id=sorted(eos_ids),
                stopping_criteria=[_stop_on_search(tokenizer, L)],
                output_logits=True, return_dict_in_generate=True, **(generate_kwargs or {}),
            )
            new = out.sequences[:, L:].cpu()
            # log-probs of the sampled tokens under the sampling distribution (full softmax at
            # `temperature`; top_k = 0 and top_p = 1 keep that the distribution sampled from)
            step_logps = [torch.log_softmax(lg.float() / temperature, -1).gather(-1, new[:, t : t + 1].to(lg.device))
                          .squeeze(-1).cpu() for t, lg in enumerate(out.logits)]
            step_logps = torch.stack(step_logps, 1) if step_logps else torch.zeros(len(active), 0)

            for r, i in enumerate(active):
                tokens = new[r].tolist()
                cut = len(tokens)
                ended = False
                for j, t in enumerate(tokens):
                    if t in eos_ids:
                        cut, ended = j + 1, True
                        break
                cut = min(cut, budget - written[i])
                search_at = _search_end(tokenizer, tokens[:cut])
                if search_at is not None:
                    cut, ended = search_at + 1, False
                seg = tokens[:cut]
                comp[i] += seg
                mask[i] += [1] * len(seg)
                logps[i] += step_logps[r, :cut].tolist()
                written[i] += len(seg)
                if search_at is not None:
                    text = tokenizer.decode(seg, skip_special_tokens=True)
                    found = _SEARCH.findall(text[text.rfind("<search>"):]) if "<search>" in text else []
                    query = found[-1].strip() if found else ""
                    if len(queries[i]) < cfg.max_turns:
                        info, got = self.information(query, len(passages[i]) + 1)
                        queries[i].append(query)
                        passages[i].extend(got)
                    else:
                        info = cfg.information_template.replace("{passages}", cfg.limit_message)
                    info_ids = tokenizer(info, add_special_tokens=False)["input_ids"][: cfg.max_information_tokens]
                    comp[i] += info_ids
                    mask[i] += [0] * len(info_ids)
                    logps[i] += [0.0] * len(info_ids)
                if ended or written[i] >= budget:
                    done[i] = True
        return SearchGeneration(prompt_ids, comp, mask, logps, queries, passages)
