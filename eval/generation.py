"""Batched generation for evaluation: transformers (default) or vLLM, behind one cache.

    gen = Generator("SmolLM2-135M-Instruct", GenerationConfig(max_new_tokens=512))
    outs = gen.generate(prompts, n=4)      # prompts: str or chat messages; outs[i] = n Generations

How the transformers path stays close to a bare `model.generate`:
- prompts are sorted by token length and batched, so a batch pads to similar lengths
  (left padding, which decoder-only generation needs; the KV cache is on);
- `n` samples of one prompt come from one `num_return_sequences=n` call; with greedy
  decoding the n samples would be identical, so one is generated and repeated;
- stop strings end a sequence inside `generate` (a stopping criterion over the generated
  tokens only) and the returned text is cut before the earliest stop string, as lm-eval does.

Every finished batch is written to the SQLite cache (`eval.cache`) before the next one
starts, keyed by model identity, rendered prompt, settings and sample index. A rerun, or a
run resumed after a kill, generates only what is missing.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Sequence

from core.errors import UserError
from eval.cache import Cache, digest, model_fingerprint


class GenerationError(UserError, ValueError):
    pass


@dataclass
class GenerationConfig:
    """How completions are sampled. Every field maps to a YAML key and a CLI flag."""

    max_new_tokens: int = 2048
    """Generation budget per completion. Long enough for step-by-step reasoning; a 256
    token cap (lm-eval's default) cuts chains of thought off before the answer."""
    temperature: float = 0.0
    """0 means greedy decoding; > 0 samples."""
    top_p: float = 1.0
    """Nucleus sampling mass (sampling only)."""
    top_k: int = 0
    """Keep only the k most likely tokens (0 = off; sampling only)."""
    stop: list[str] = field(default_factory=list)
    """Strings that end a completion; the text is cut before the first one."""
    batch_size: int = 8
    """Prompts per forward batch (each carries its n samples)."""
    seed: int = 0
    """Seed for sampling; the same seed, prompts and batch give the same text."""
    backend: str = "auto"
    """"transformers", "vllm", or "auto" (vLLM when installed and a GPU is present)."""
    dtype: str = "auto"
    """Model dtype: auto (float32 on CPU, bfloat16 on a capable GPU), float32, bfloat16, float16."""
    system_prompt: str | None = None
    """Prepended as a system message to chat prompts (None keeps the template's default)."""

    def cache_settings(self) -> dict[str, Any]:
        """The settings that change a completion's text (batching and backend do not)."""
        keep = ("max_new_tokens", "temperature", "top_p", "top_k", "stop", "seed")
        d = {k: v for k, v in asdict(self).items() if k in keep}
        if self.temperature <= 0:  # greedy ignores the sampling knobs
            d.update(top_p=None, top_k=None, seed=None)
        return d

    def validate(self) -> None:
        if self.max_new_tokens < 1:
            raise GenerationError(f"max_new_tokens must be >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise GenerationError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise GenerationError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0 or self.batch_size < 1:
            raise GenerationError("top_k must be >= 0 and batch_size >= 1")
        if self.backend not in ("auto", "transformers", "vllm"):
            raise GenerationError(f"unknown backend {self.backend!r}; use auto, transformers or vllm")


@dataclass
class Generation:
    text: str
    finish_reason: str | None  # "stop" (eos or stop string) or "length"
    tokens: int | None  # generated tokens before the cut
    cached: bool = False


Prompt = "str | list[dict[str, str]]"


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def pick_backend(config: GenerationConfig) -> str:
    """Which backend a config runs on here; asking for vLLM where it is absent is an error."""
    config.validate()
    if config.backend == "vllm":
        if not vllm_available():
            raise GenerationError("backend 'vllm' requested but vllm is not installed (pip install 'assay[vllm]')")
        return "vllm"
    if config.backend == "auto" and vllm_available():
        import torch

        if torch.cuda.is_available():
            return "vllm"
    return "transformers"


def vllm_sampling_kwargs(config: GenerationConfig, n: int) -> dict[str, Any]:
    """vLLM SamplingParams arguments equivalent to a config (greedy: temperature 0)."""
    kw: dict[str, Any] = {"n": n, "max_tokens": config.max_new_tokens, "temperature": config.temperature,
                          "stop": list(config.stop) or None, "seed": config.seed}
    if config.temperature > 0:
        kw.update(top_p=config.top_p, top_k=config.top_k if config.top_k > 0 else -1)
    return kw


def cut_at_stop(text: str, stops: Sequence[str]) -> tuple[str, bool]:
    """Text before the earliest stop string, and whether one was found."""
    cut = len(text)
    for s in stops:
        if s:
            i = text.find(s)
            if 0 <= i < cut:
                cut = i
    return text[:cut], cut < len(text)


class Generator:
    """A model plus its cache; renders prompts, generates what is missing, returns all."""

    def __init__(self, model: str, config: GenerationConfig | None = None, *, cache: Cache | None = None,
                 progress: bool = True):
        self.config = config or GenerationConfig()
        self.backend = pick_backend(self.config)
        self.model_name = str(model)
        self.cache = cache if cache is not None else Cache(None)
        self.progress = progress
        self._model = None
        self._tokenizer = None
        self._llm = None
        self._path: str | None = None
        self._identity: str | None = None
        self.stats = {"generated": 0, "cached": 0, "new_tokens": 0, "seconds": 0.0}

    # The model name is resolved when first needed (rendering the first prompt), so a
    # suite's data errors are reported before a model's; an unknown name fails at once.
    @property
    def path(self) -> str:
        if self._path is None:
            from core.models import resolve

            self._path = resolve(self.model_name)
        return self._path

    @property
    def identity(self) -> str:
        if self._identity is None:
            self._identity = f"{self.model_name}@{model_fingerprint(self.path)}"
        return self._identity

    # --- loading ---
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self._tokenizer = AutoTokenizer.from_pretrained(self.path)
            except (OSError, ValueError) as exc:
                raise GenerationError(f"cannot load tokenizer of {self.model_name!r} ({self.path}): "
                                      f"{str(exc).splitlines()[0]}") from None
            if self._tokenizer.pad_token is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
            self._tokenizer.padding_side = "left"
        return self._tokenizer

    def load(self) -> None:
        """Load the model now (so load time is not counted as generation time)."""
        if self.backend == "transformers":
            self._load_model()

    def _load_model(self):
        if self._model is None:
            from core.models import load_causal_lm

            try:
                self._model, self._tokenizer = load_causal_lm(self.path, dtype=self.config.dtype)
            except (OSError, ValueError) as exc:
                if isinstance(exc, UserError):
                    raise
                raise GenerationError(f"cannot load model {self.model_name!r}: {str(exc).splitlines()[0]}") from None
        return self._model

    # --- prompts ---
    def render(self, prompt: Any) -> str:
        """A chat prompt (list of messages) through the chat template; plain text as is."""
        if isinstance(prompt, str):
            return prompt
        messages = list(prompt)
        if self.config.system_prompt and not any(m.get("role") == "system" for m in messages):
            messages = [{"role": "system", "content": self.config.system_prompt}, *messages]
        tok = self.tokenizer
        if not getattr(tok, "chat_template", None):
            raise GenerationError(f"model {self.model_name!r} has no chat template; use a plain-text prompt suite")
        return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def keys(self, rendered: str, n: int) -> list[str]:
        settings = self.config.cache_settings()
        return [digest(self.identity, rendered, settings, j) for j in range(n)]

    # --- generation ---
    def generate(self, prompts: Sequence[Any], n: int = 1) -> list[list[Generation]]:
        """n completions for each prompt, in order; cached ones are not regenerated."""
        if n < 1:
            raise GenerationError(f"samples must be >= 1, got {n}")
        rendered = [self.render(p) for p in prompts]
        # Chat-rendered text already carries its special tokens; plain text gets the
        # tokenizer's usual ones (a BOS for Llama-style models).
        add_special = all(isinstance(p, str) for p in prompts)
        # Identical prompts (repeated rows) are generated once.
        unique = list(dict.fromkeys(rendered))
        keys = {r: self.keys(r, n) for r in unique}
        found = self.cache.get_generations([k for ks in keys.values() for k in ks])
        todo = [r for r in unique if any(k not in found for k in keys[r])]
        self.stats["cached"] += sum(1 for r in unique for k in keys[r] if k in found)
        if todo:
            t0 = time.perf_counter()
            if self.backend == "vllm":
                self._generate_vllm(todo, n, keys)
            else:
                self._generate_hf(todo, n, keys, add_special)
            self.stats["seconds"] += time.perf_counter() - t0
            found = self.cache.get_generations([k for ks in keys.values() for k in ks])
        out = []
        todo_set = set(todo)
        for r in rendered:
            gens = []
            for k in keys[r]:
                text, reason, tokens = found[k]
                gens.append(Generation(text, reason, tokens, cached=r not in todo_set))
            out.append(gens)
        return out

    def _generate_hf(self, prompts: list[str], n: int, keys: dict[str, list[str]], add_special: bool) -> None:
        import torch

        model = self._load_model()
        tok = self.tokenizer
        cfg = self.config
        lengths = {p: len(ids) for p, ids in zip(prompts, tok(prompts, add_special_tokens=add_special)["input_ids"])}
        order = sorted(prompts, key=lambda p: -lengths[p])  # longest first: any OOM shows up at once
        sample = cfg.temperature > 0
        per_call = n if sample else 1
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        gen_kwargs: dict[str, Any] = dict(max_new_tokens=cfg.max_new_tokens, do_sample=sample,
                                          num_return_sequences=per_call, pad_token_id=tok.pad_token_id,
                                          use_cache=True)
        if sample:
            gen_kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=cfg.top_k)
        else:
            gen_kwargs.update(temperature=None, top_p=None, top_k=None)
        bar = progress_bar(len(order), f"generating ({self.model_name})", self.progress)
        for start in range(0, len(order), cfg.batch_size):
            batch = order[start:start + cfg.batch_size]
            enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=add_special).to(model.device)
            torch.manual_seed(cfg.seed + start)
            extra = {}
            if cfg.stop:
                extra["stopping_criteria"] = _stopping(tok, cfg.stop, enc["input_ids"].shape[1])
            with torch.inference_mode():
                out = model.generate(**enc, **gen_kwargs, **extra)
            new = out[:, enc["input_ids"].shape[1]:]
            rows = []
            for i, prompt in enumerate(batch):
                for j in range(n):
                    seq = new[i * per_call + (j if sample else 0)].tolist()
                    # Trailing pads (after eos or a stop) are not generated tokens.
                    length = len(seq)
                    while length and seq[length - 1] == tok.pad_token_id:
                        length -= 1
                    ended_eos = any(t in eos_ids for t in seq[:length])
                    if ended_eos:
                        length = next(idx for idx, t in enumerate(seq) if t in eos_ids)
                    text = tok.decode(seq[:length], skip_special_tokens=True)
                    text, stopped = cut_at_stop(text, cfg.stop)
                    reason = "stop" if (ended_eos or stopped or length < cfg.max_new_tokens) else "length"
                    rows.append((keys[prompt][j], text, reason, length))
                    self.stats["new_tokens"] += length if (j == 0 or sample) else 0
            self.cache.put_generations(self.identity, rows)
            self.stats["generated"] += len(rows)
            bar.update(len(batch))
        bar.close()

    def _generate_vllm(self, prompts: list[str], n: int, keys: dict[str, list[str]]) -> None:
        from vllm import LLM, SamplingParams  # import-guarded by pick_backend

        if self._llm is None:
            self._llm = LLM(model=self.path, seed=self.config.seed,
                            dtype="auto" if self.config.dtype == "auto" else self.config.dtype)
        params = SamplingParams(**vllm_sampling_kwargs(self.config, n))
        results = self._llm.generate(prompts, params)
        rows = []
        for prompt, res in zip(prompts, results):
            for j, o in enumerate(res.outputs[:n]):
                reason = "length" if o.finish_reason == "length" else "stop"
                rows.append((keys[prompt][j], o.text, reason, len(o.token_ids)))
        self.cache.put_generations(self.identity, rows)
        self.stats["generated"] += len(rows)


def _stopping(tokenizer, stops: Sequence[str], prompt_len: int):
    """Stop a sequence once its *generated* text contains a stop string.

    transformers' own `stop_strings` also matches a stop string that straddles the end of
    the prompt (prompt "...Answer:" + generated "::" matches ":::"), ending generation
    before the completion has said anything; lm-eval only cuts on generated text.
    A stop string of L characters spans at most L + 1 tokens, so decoding a short tail
    of each sequence per step is enough.
    """
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    window = max(len(s) for s in stops) + 2

    class GeneratedTextStop(StoppingCriteria):
        def __call__(self, input_ids, scores, **kwargs):
            new = input_ids[:, prompt_len:]
            tails = tokenizer.batch_decode(new[:, -window:], skip_special_tokens=True)
            return torch.tensor([any(s in t for s in stops) for t in tails], device=input_ids.device)

    return StoppingCriteriaList([GeneratedTextStop()])


class _NoBar:
    def update(self, k: int) -> None: ...
    def close(self) -> None: ...


def progress_bar(total: int, desc: str, enabled: bool):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="prompt", file=sys.stderr, leave=False)
