"""Search in the loop, as Search-R1 does: the policy may call a retriever while it writes.

    rollout = make_search_rollout("idx/", SearchConfig(max_turns=2, top_k=3))
    GRPOTrainer(..., rollout_func=rollout)                    # TRL 1.16
    train_ppo(..., search=SearchConfig(), search_index="idx/")  # assay's PPO

A completion is written in turns. The policy samples until it closes a
``<search>query</search>`` (or ends, or runs out of budget); the query goes to the assay
index; the top-k chunks are pasted in as ``<information>[1] …</information>``; the policy
continues from there, for up to `max_turns` searches, and its final answer is rewarded.

The pasted tokens are the environment's, not the policy's: they get mask 0. TRL 1.16
takes a per-token ``env_mask`` from a rollout function and multiplies it into the loss
mask (`completion_mask * tool_mask` in GRPOTrainer), so no gradient, KL or entropy term
touches retrieved text; assay's PPO uses the same mask (``policy_mask``) for its
rewards, GAE and losses. Token ids are kept exactly as sampled and as tokenized for the
information blocks (never decoded and re-encoded), so the ids the loss sees are the ids
the policy produced.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Literal, NamedTuple, Sequence

from core.config import ConfigError
from tasks.passages import INFORMATION_PASSAGE_CHARS, INFORMATION_TEMPLATE, SEARCH_INSTRUCTIONS, information_block

if TYPE_CHECKING:
    import torch

_SEARCH = re.compile(r"<search>(.*?)</search>", re.S)


@dataclass
class SearchConfig:
    """How search-in-the-loop rollouts run. Every field has the default shown."""

    max_turns: int = 2  # searches allowed per completion; a further call gets a "no more searches" note
    top_k: int = 3  # chunks pasted in per search
    mode: Literal["hybrid", "bm25", "dense"] = "hybrid"  # the index's search mode
    max_new_tokens: int | None = None  # policy tokens per completion over all turns; None = the trainer's limit
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


def index_retriever(index_dir: str, mode: str = "hybrid") -> Retriever:
    """`retrieve(query, k)` over the assay index at `index_dir`."""
    from rag.index import Index

    index = Index.open(index_dir)

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
    def from_index(cls, index_dir: str, config: SearchConfig | None = None) -> "SearchRollout":
        config = config or SearchConfig()
        return cls(index_retriever(index_dir, config.mode), config)

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


def _prompt_texts(prompts: Sequence[Any], tokenizer, instructions: str | None, chat_template_kwargs: dict) -> list[str]:
    texts = []
    for p in prompts:
        if isinstance(p, str):
            texts.append(f"{instructions}\n\n{p}" if instructions else p)
        elif isinstance(p, list):
            msgs = [dict(m) for m in p]
            if instructions:
                users = [j for j, m in enumerate(msgs) if m.get("role") == "user"]
                if users:
                    msgs[users[-1]]["content"] = f"{instructions}\n\n{msgs[users[-1]]['content']}"
            texts.append(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                                       **chat_template_kwargs))
        else:
            raise ConfigError(f"a prompt must be a string or chat messages, got {type(p).__name__}")
    return texts


def make_search_rollout(index_dir: str | None, config: SearchConfig | None = None, *,
                        retrieve: Retriever | None = None, generate_kwargs: dict | None = None):
    """A TRL 1.16 `rollout_func(prompts, trainer) -> dict` doing search-in-the-loop generation.

    Returns prompt_ids, completion_ids, logprobs, and `env_mask` (0 on retrieved tokens:
    TRL multiplies it into the loss mask), plus per-completion fields the reward functions
    receive as keyword arguments: `contexts` (the retrieved chunk texts, numbered as the
    policy saw them, so the `grounding` reward can check citations), `search_queries`
    and `search_calls`. TRL hands the function the per-process prompts already repeated
    `num_generations` times, so it returns one completion per prompt it receives.
    `retrieve` replaces the index (any `retrieve(query, k) -> [Passage]`).
    """
    config = config or SearchConfig()
    if retrieve is None:
        if not index_dir:
            raise ConfigError("search in the loop needs retrieval.index (an assay index directory)")
        retrieve = index_retriever(index_dir, config.mode)
    rollout = SearchRollout(retrieve, config)

    def rollout_func(prompts: list, trainer) -> dict[str, list]:
        import torch

        tokenizer = getattr(trainer.processing_class, "tokenizer", None) or trainer.processing_class
        model = trainer.accelerator.unwrap_model(trainer.model)
        texts = _prompt_texts(prompts, tokenizer, config.instructions, getattr(trainer, "chat_template_kwargs", {}) or {})
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                gen = rollout.generate(
                    model, tokenizer, texts, max_new_tokens=trainer.max_completion_length,
                    temperature=trainer.temperature, top_k=trainer.top_k or 0,
                    top_p=trainer.top_p if trainer.top_p is not None else 1.0,
                    max_prompt_length=getattr(trainer.args, "max_prompt_length", None),
                    generate_kwargs=generate_kwargs)
        finally:
            model.train(was_training)
        return {
            "prompt_ids": gen.prompt_ids,
            "completion_ids": gen.completion_ids,
            "logprobs": gen.logprobs,
            "env_mask": gen.policy_mask,
            "contexts": [[p.text for p in ps] for ps in gen.passages],
            "search_queries": gen.queries,
            "search_calls": gen.search_calls_list,
        }

    rollout_func.search_rollout = rollout  # for inspection and tests
    return rollout_func
