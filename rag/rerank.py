"""Second-stage reranking of the top N hits: a cross-encoder or a pointwise LLM judge.

    reranker = make_reranker("llm")                      # SmolLM2-135M-Instruct, offline
    reranker = make_reranker("cross-encoder", "cross-encoder/ms-marco-MiniLM-L6-v2")
    hits = reranker.rerank(query, hits)                  # reordered, scores["rerank"] set

Both take the first `depth` hits (``reranker.depth``: how many candidates the caller should
retrieve), score every (query, passage) pair in batches, and reorder those candidates; hits
past the depth keep their order after them. The returned hits are new objects (the inputs
are not changed), ranked from 1, with ``scores["rerank"]`` holding the reranker's own score
and ``score`` the final one used for ordering.

- ``CrossEncoderReranker``: sentence-transformers ``CrossEncoder`` on any model id or path.
  No trained cross-encoder ships offline; for online users any hub id works.
- ``LLMReranker``: a causal LM reads a prompt asking whether the passage answers the query;
  relevance is the softmax over the next-token logits of "yes" against "no" (each side
  sums the variants " yes", "yes", " Yes", "Yes" that are single tokens), i.e. P(yes).
  Batched with left padding; only the last position's logits are computed.

``combine`` decides how the reranker's score meets the first stage: ``"replace"`` orders
by the reranker alone; ``"rrf"`` fuses the two rankings by reciprocal rank with weight
``weight`` on the reranker; ``"convex"`` mixes min-max-normalized scores. A small LLM judge
is a weak ranker on its own, and fusing it with the first-stage rank is how it can still
help (see bench/retrieval.py for what each setting measured on Cranfield).
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any, Literal, Sequence

from core.errors import UserError

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
DEFAULT_LLM = "SmolLM2-135M-Instruct"

LLM_PROMPT = (
    "Judge whether the passage is relevant to the search query.\n\n"
    "Query: {query}\n\n"
    "Passage: {passage}\n\n"
    "Does the passage answer the query? Answer yes or no."
)
YES_WORDS = (" yes", "yes", " Yes", "Yes")
NO_WORDS = (" no", "no", " No", "No")


class RerankError(UserError, ValueError):
    pass


@dataclass
class RerankConfig:
    """How to rerank. Every field has a default; YAML maps onto it one to one."""

    kind: Literal["llm", "cross-encoder"] = "llm"
    """Which reranker: a pointwise LLM judge or a sentence-transformers cross-encoder."""
    model: str | None = None
    """Model name, path or hub id; None = SmolLM2-135M-Instruct (llm) or
    cross-encoder/ms-marco-MiniLM-L6-v2 (cross-encoder, needs the hub)."""
    depth: int = 20
    """How many first-stage candidates are rescored (the rest keep their order after them)."""
    batch_size: int = 16
    """(query, passage) pairs per forward pass."""
    max_passage_tokens: int = 192
    """Passages are cut to this many tokens of the model's tokenizer before scoring."""
    max_length: int = 512
    """Cross-encoder: maximum tokens of query + passage."""
    combine: Literal["replace", "rrf", "convex"] | None = None
    """How the reranker's score meets the first stage: replace it, RRF of the two ranks, or
    a convex mix of min-max-normalized scores. None = per kind: "replace" for a
    cross-encoder; "convex" for the LLM judge, whose score alone hurt nDCG@10 on Cranfield
    (bench/retrieval.py: convex with weight 0.2 was the least harmful setting on dev)."""
    weight: float | None = None
    """combine="rrf"/"convex": the reranker's weight in [0, 1]; the first stage gets
    1 - weight. None = 0.2 for the LLM judge, 0.5 otherwise."""
    rrf_k: int = 60
    """combine="rrf": the k in 1 / (k + rank)."""
    prompt: str = LLM_PROMPT
    """LLM judge: the user message, with {query} and {passage}."""
    chat_template: bool = True
    """LLM judge: wrap the prompt in the tokenizer's chat template (assistant turn opened),
    else use it as plain text followed by "\\nAnswer:"."""
    dtype: str | None = None
    """Model dtype (float32, bfloat16, float16); None = float32 on CPU, bf16 on a GPU."""
    device: str | None = None
    """"cpu", "cuda", ...; None picks a GPU when there is one."""

    def __post_init__(self) -> None:
        if self.kind not in ("llm", "cross-encoder"):
            raise RerankError(f"unknown reranker kind {self.kind!r}; use 'llm' or 'cross-encoder'")
        if self.combine is None:
            self.combine = "convex" if self.kind == "llm" else "replace"
        if self.weight is None:
            self.weight = 0.2 if self.kind == "llm" else 0.5
        if self.combine not in ("replace", "rrf", "convex"):
            raise RerankError(f"unknown combine {self.combine!r}; use 'replace', 'rrf' or 'convex'")
        if self.depth < 1 or self.batch_size < 1:
            raise RerankError("depth and batch_size must be at least 1")
        if not 0.0 <= self.weight <= 1.0:
            raise RerankError(f"weight must be in [0, 1], got {self.weight}")


class Reranker:
    """Base: subclasses implement `score_pairs(query, passages) -> list[float]`."""

    config: RerankConfig

    def __init__(self, config: RerankConfig) -> None:
        self.config = config
        self.calls = 0
        self.pairs_scored = 0
        self.seconds = 0.0

    @property
    def depth(self) -> int:
        return self.config.depth

    @property
    def name(self) -> str:
        return f"{self.config.kind}:{self.config.model}"

    def score_pairs(self, query: str, passages: Sequence[str]) -> list[float]:
        raise NotImplementedError

    def rerank(self, query: str, hits: Sequence[Any], top_n: int | None = None) -> list[Any]:
        """`hits` reordered by the reranker (see the module docstring); new Hit objects."""
        hits = list(hits)
        if not hits:
            return []
        head = hits[: self.config.depth]
        t0 = time.perf_counter()
        raw = [float(s) for s in self.score_pairs(query, [h.chunk.text for h in head])]
        self.seconds += time.perf_counter() - t0
        self.calls += 1
        self.pairs_scored += len(head)
        return self.apply(hits, raw, top_n)

    def apply(self, hits: Sequence[Any], raw: Sequence[float], top_n: int | None = None,
              config: RerankConfig | None = None) -> list[Any]:
        """The reordering `rerank` makes, given the reranker's scores `raw` of the first
        len(raw) hits (so scores computed once can be combined in several ways)."""
        cfg = config or self.config
        hits = list(hits)
        head, tail = hits[: len(raw)], hits[len(raw):]
        raw = [float(x) for x in raw]
        final = combine_scores(raw, [float(h.score) for h in head], cfg.combine, cfg.weight, cfg.rrf_k)
        order = sorted(range(len(head)), key=lambda i: (-final[i], i))  # stable on ties
        out = []
        for new_rank, i in enumerate(order, 1):
            h = head[i]
            out.append(dataclasses.replace(h, score=final[i], rank=new_rank,
                                           scores={**h.scores, "rerank": raw[i]}))
        for j, h in enumerate(tail, len(out) + 1):
            out.append(dataclasses.replace(h, rank=j, scores=dict(h.scores)))
        return out[:top_n] if top_n is not None else out

    def rerank_many(self, queries: Sequence[str], hit_lists: Sequence[Sequence[Any]],
                    top_n: int | None = None) -> list[list[Any]]:
        return [self.rerank(q, hits, top_n) for q, hits in zip(queries, hit_lists)]


def _minmax(xs: Sequence[float]) -> list[float]:
    lo, hi = min(xs), max(xs)
    if hi - lo <= 1e-12:
        return [0.5] * len(xs)
    return [(x - lo) / (hi - lo) for x in xs]


def combine_scores(rerank: Sequence[float], first: Sequence[float], how: str = "replace",
                   weight: float = 0.5, rrf_k: int = 60) -> list[float]:
    """Final scores of candidates listed in first-stage order (rank 1 first)."""
    n = len(rerank)
    if how == "replace" or n == 0:
        return list(rerank)
    if how == "rrf":
        order = sorted(range(n), key=lambda i: (-rerank[i], i))
        rr = [0] * n
        for r, i in enumerate(order, 1):
            rr[i] = r
        return [weight / (rrf_k + rr[i]) + (1 - weight) / (rrf_k + i + 1) for i in range(n)]
    if how == "convex":
        a, b = _minmax(rerank), _minmax(first)
        return [weight * a[i] + (1 - weight) * b[i] for i in range(n)]
    raise RerankError(f"unknown combine {how!r}")


class CrossEncoderReranker(Reranker):
    """sentence-transformers CrossEncoder on any model id or path (one logit = relevance)."""

    def __init__(self, config: RerankConfig) -> None:
        super().__init__(config)
        from sentence_transformers import CrossEncoder

        from core.models import pick_device, resolve

        name = config.model or DEFAULT_CROSS_ENCODER
        self.config = dataclasses.replace(config, model=name)
        try:
            self.model = CrossEncoder(resolve(name), max_length=config.max_length,
                                      device=config.device or pick_device())
        except OSError as exc:
            raise RerankError(f"cannot load cross-encoder {name!r}: {str(exc).splitlines()[0]}") from None

    def score_pairs(self, query: str, passages: Sequence[str]) -> list[float]:
        if not passages:
            return []
        scores = self.model.predict([(query, p) for p in passages], batch_size=self.config.batch_size,
                                    show_progress_bar=False, convert_to_numpy=True)
        return [float(s) for s in scores.reshape(len(passages), -1)[:, -1]]


class LLMReranker(Reranker):
    """Pointwise yes/no judge on a causal LM: relevance = P(yes) from the next-token logits."""

    def __init__(self, config: RerankConfig, *, model: Any = None, tokenizer: Any = None) -> None:
        super().__init__(config)
        name = config.model or DEFAULT_LLM
        self.config = dataclasses.replace(config, model=name)
        if model is None or tokenizer is None:
            from core.models import load_causal_lm

            model, tokenizer = load_causal_lm(name, dtype=config.dtype, device=config.device)
        self.model, self.tokenizer = model, tokenizer
        self.tokenizer.padding_side = "left"
        self.yes_ids = self._single_tokens(YES_WORDS)
        self.no_ids = self._single_tokens(NO_WORDS)
        if not self.yes_ids or not self.no_ids:
            raise RerankError(f"{name}: the tokenizer has no single-token 'yes'/'no'")

    def _single_tokens(self, words: Sequence[str]) -> list[int]:
        ids: list[int] = []
        for w in words:
            toks = self.tokenizer(w, add_special_tokens=False).input_ids
            if len(toks) == 1 and toks[0] not in ids:
                ids.append(toks[0])
        return ids

    def _truncate(self, passage: str) -> str:
        n = self.config.max_passage_tokens
        ids = self.tokenizer(passage, add_special_tokens=False).input_ids
        if len(ids) <= n:
            return passage
        return self.tokenizer.decode(ids[:n], skip_special_tokens=True) + " ..."

    def format(self, query: str, passage: str) -> str:
        """The exact text fed to the model for one pair."""
        user = self.config.prompt.format(query=query.strip(), passage=self._truncate(passage.strip()))
        if self.config.chat_template and getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template([{"role": "user", "content": user}], tokenize=False,
                                                      add_generation_prompt=True)
        return user + "\nAnswer:"

    def score_pairs(self, query: str, passages: Sequence[str]) -> list[float]:
        """P(yes) for each passage."""
        import torch

        texts = [self.format(query, p) for p in passages]
        out: list[float] = []
        device = next(self.model.parameters()).device
        bs = self.config.batch_size
        for i in range(0, len(texts), bs):
            enc = self.tokenizer(texts[i:i + bs], return_tensors="pt", padding=True, add_special_tokens=False)
            ids, mask = enc["input_ids"].to(device), enc["attention_mask"].to(device)
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                try:
                    logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos,
                                        logits_to_keep=1).logits[:, -1, :]
                except TypeError:  # models whose forward has no logits_to_keep
                    logits = self.model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1, :]
            logits = logits.float()
            yes = torch.logsumexp(logits[:, self.yes_ids], dim=-1)
            no = torch.logsumexp(logits[:, self.no_ids], dim=-1)
            out.extend(torch.sigmoid(yes - no).tolist())  # softmax over {yes, no} = P(yes)
        return out


def make_reranker(kind: str = "llm", model: str | None = None, **opts: Any) -> Reranker:
    """A reranker by kind ("llm" or "cross-encoder"); opts are RerankConfig fields."""
    kind = {"cross_encoder": "cross-encoder", "ce": "cross-encoder", "crossencoder": "cross-encoder"}.get(kind, kind)
    extra = {k: opts.pop(k) for k in ("model_obj", "tokenizer") if k in opts}
    fields = {f.name for f in dataclasses.fields(RerankConfig)}
    unknown = sorted(set(opts) - fields)
    if unknown:
        raise RerankError(f"unknown reranker option(s): {', '.join(unknown)}")
    config = RerankConfig(kind=kind, model=model, **opts)
    if config.kind == "cross-encoder":
        return CrossEncoderReranker(config)
    return LLMReranker(config, model=extra.get("model_obj"), tokenizer=extra.get("tokenizer"))


def from_config(config: RerankConfig) -> Reranker:
    return make_reranker(**dataclasses.asdict(config))


__all__ = ["RerankConfig", "Reranker", "CrossEncoderReranker", "LLMReranker", "make_reranker",
           "combine_scores", "RerankError", "from_config"]
