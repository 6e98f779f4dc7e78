"""HyDE (Hypothetical Document Embeddings, Gao et al. 2022) for the dense side of search.

A causal LM writes a short passage that would answer the query; the passage is embedded
with the index's own embedder and used as the dense query vector, optionally averaged
with the query's embedding:

    hyde = HyDE()                                   # SmolLM2-135M-Instruct, offline
    v = hyde.query_vector("why do wings stall", index.embedder)   # (d,), L2-normalized
    hits = index.search("why do wings stall", hyde=hyde)

The LM is loaded on first use. Generated passages are remembered per query (up to
``cache_size``), so asking again costs only the embedding. ``query_vectors`` does a batch of
queries with batched generation, which is much faster per query than one at a time.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from core.errors import UserError

HYDE_PROMPT = (
    "Write a short passage from a scientific or technical paper that answers this question.\n\n"
    "Question: {query}"
)


class HyDEError(UserError, ValueError):
    pass


@dataclass
class HyDEConfig:
    """Prompt and generation settings of HyDE. Every field has a default."""

    model: str = "SmolLM2-135M-Instruct"
    """The causal LM that writes the hypothetical passage (logical name, path or hub id)."""
    prompt: str = HYDE_PROMPT
    """The instruction, with {query}; sent as the user message (or as plain text)."""
    system: str | None = None
    """An optional system message (chat template only)."""
    chat_template: bool = True
    """Wrap the prompt in the tokenizer's chat template (assistant turn opened); else the
    prompt is plain text followed by "\\nPassage:"."""
    max_new_tokens: int = 96
    """Length cap of each hypothetical passage, in tokens."""
    num_passages: int = 1
    """Passages per query; their embeddings are averaged. More than 1 needs do_sample."""
    do_sample: bool = False
    """Sample (True) or decode greedily (False: deterministic, the default)."""
    temperature: float = 0.7
    """Sampling temperature (do_sample only)."""
    top_p: float = 0.95
    """Nucleus sampling mass (do_sample only)."""
    repetition_penalty: float = 1.15
    """>1 discourages the small model's loops (1.0 = off)."""
    include_query: bool = True
    """Average the query's own embedding in with the passages' embeddings."""
    query_weight: float = 0.7
    """Weight of the query embedding when include_query (passages share 1 - query_weight).
    0.7: on Cranfield's dev queries SmolLM2-135M's passages helped less the more they
    weighed (0.7 was the best of 0, 0.3, 0.5, 0.7; see bench/retrieval.py)."""
    seed: int = 0
    """Seed for sampling (set before each generation batch)."""
    batch_size: int = 8
    """Queries per generation batch in query_vectors."""
    cache_size: int = 4096
    """Generated passages remembered per query (0 = no memo)."""
    dtype: str | None = None
    """Model dtype; None = float32 on CPU, bfloat16 on a GPU that supports it."""
    device: str | None = None
    """"cpu", "cuda", ...; None picks a GPU when there is one."""

    def __post_init__(self) -> None:
        if self.max_new_tokens < 1 or self.num_passages < 1 or self.batch_size < 1:
            raise HyDEError("max_new_tokens, num_passages and batch_size must be at least 1")
        if not 0.0 <= self.query_weight <= 1.0:
            raise HyDEError(f"query_weight must be in [0, 1], got {self.query_weight}")
        if "{query}" not in self.prompt:
            raise HyDEError("the HyDE prompt must contain {query}")


class HyDE:
    def __init__(self, config: HyDEConfig | None = None, *, model: Any = None, tokenizer: Any = None) -> None:
        self.config = config or HyDEConfig()
        self._model, self._tokenizer = model, tokenizer
        self._memo: OrderedDict[str, list[str]] = OrderedDict()
        self.generated = 0  # queries the LM actually wrote for
        self.seconds = 0.0  # time spent generating

    def with_config(self, **changes: Any) -> "HyDE":
        """A HyDE with some config fields changed that shares this one's model and its
        memo of generated passages (valid while the generation settings are unchanged)."""
        cfg = dataclasses.replace(self.config, **changes)
        other = HyDE(cfg, model=self._model, tokenizer=self._tokenizer)
        gen_fields = {"model", "prompt", "system", "chat_template", "max_new_tokens", "num_passages", "do_sample",
                      "temperature", "top_p", "repetition_penalty", "seed"}
        if not gen_fields & set(changes):
            other._memo = self._memo
        return other

    # -- the LM -----------------------------------------------------------------------
    def _load(self):
        if self._model is None or self._tokenizer is None:
            from core.models import load_causal_lm

            self._model, self._tokenizer = load_causal_lm(self.config.model, dtype=self.config.dtype,
                                                          device=self.config.device)
        self._tokenizer.padding_side = "left"
        if self._tokenizer.pad_token is None:
            self._tokenizer.pad_token = self._tokenizer.eos_token
        return self._model, self._tokenizer

    def format(self, query: str) -> str:
        """The exact text the LM continues for `query`."""
        cfg = self.config
        _, tok = self._load()
        user = cfg.prompt.format(query=query.strip())
        if cfg.chat_template and getattr(tok, "chat_template", None):
            messages = ([{"role": "system", "content": cfg.system}] if cfg.system else [])
            messages.append({"role": "user", "content": user})
            return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return user + "\nPassage:"

    def generate(self, queries: Sequence[str]) -> list[list[str]]:
        """Hypothetical passages (num_passages each) for each query, memoized."""
        import time

        cfg = self.config
        todo = [q for q in dict.fromkeys(queries) if q not in self._memo]
        for i in range(0, len(todo), cfg.batch_size):
            batch = todo[i:i + cfg.batch_size]
            t0 = time.perf_counter()
            passages = self._generate_batch(batch)
            self.seconds += time.perf_counter() - t0
            self.generated += len(batch)
            for q, ps in zip(batch, passages):
                self._memo[q] = ps
        out = [list(self._memo[q]) for q in queries]
        while len(self._memo) > max(cfg.cache_size, 0):
            self._memo.popitem(last=False)
        return out

    def _generate_batch(self, queries: list[str]) -> list[list[str]]:
        import torch

        cfg = self.config
        model, tok = self._load()
        texts = [self.format(q) for q in queries]
        device = next(model.parameters()).device
        enc = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        gen: dict[str, Any] = dict(max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample,
                                   num_return_sequences=cfg.num_passages, pad_token_id=tok.pad_token_id,
                                   repetition_penalty=cfg.repetition_penalty)
        if cfg.do_sample:
            gen.update(temperature=cfg.temperature, top_p=cfg.top_p)
            torch.manual_seed(cfg.seed)
        else:
            gen.update(temperature=None, top_p=None, top_k=None)
        with torch.inference_mode():
            out = model.generate(**enc, **gen)
        new = out[:, enc["input_ids"].shape[1]:]
        decoded = [s.strip() for s in tok.batch_decode(new, skip_special_tokens=True)]
        n = cfg.num_passages
        return [decoded[i * n:(i + 1) * n] for i in range(len(queries))]

    # -- vectors ----------------------------------------------------------------------
    def combine(self, query_vec: np.ndarray | None, passage_vecs: np.ndarray) -> np.ndarray:
        """The normalized HyDE vector from a query vector and its passages' vectors."""
        cfg = self.config
        v = np.asarray(passage_vecs, dtype=np.float32).mean(axis=0)
        if cfg.include_query and query_vec is not None:
            v = cfg.query_weight * np.asarray(query_vec, dtype=np.float32) + (1.0 - cfg.query_weight) * v
        norm = float(np.linalg.norm(v))
        return (v / norm if norm > 0 else v).astype(np.float32)

    def query_vectors(self, queries: Sequence[str], embedder: Any) -> np.ndarray:
        """(len(queries), d) normalized HyDE vectors; generation is batched."""
        queries = list(queries)
        if not queries:
            return np.zeros((0, 0), dtype=np.float32)
        passages = self.generate(queries)
        flat = [p if p.strip() else q for q, ps in zip(queries, passages) for p in ps]
        vecs = _encode(embedder, flat)
        qvecs = _encode(embedder, queries) if self.config.include_query else None
        n = self.config.num_passages
        return np.stack([self.combine(None if qvecs is None else qvecs[i], vecs[i * n:(i + 1) * n])
                         for i in range(len(queries))])

    def query_vector(self, query: str, embedder: Any) -> np.ndarray:
        """The normalized HyDE vector of one query, shape (d,)."""
        return self.query_vectors([query], embedder)[0]


def _encode(embedder: Any, texts: list[str]) -> np.ndarray:
    """Embed without filling an embedding cache with one-off texts, where the embedder
    has one (rag's Embedder takes cache=False); any `encode(list[str])` works."""
    try:
        vecs = embedder.encode(texts, cache=False)
    except TypeError:
        vecs = embedder.encode(texts)
    return np.asarray(vecs, dtype=np.float32)


def make_hyde(model: str | None = None, **opts: Any) -> HyDE:
    """A HyDE with HyDEConfig fields as keyword options."""
    fields = {f.name for f in dataclasses.fields(HyDEConfig)}
    unknown = sorted(set(opts) - fields)
    if unknown:
        raise HyDEError(f"unknown HyDE option(s): {', '.join(unknown)}")
    if model is not None:
        opts["model"] = model
    return HyDE(HyDEConfig(**opts))
