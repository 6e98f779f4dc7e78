"""Length-shaping rewards.

- ``cosine_length`` (Demystifying Long CoT, open-r1): correctness scaled by length along a
  cosine: short correct answers earn most (``max_correct``) and long ones less
  (``min_correct``); wrong answers are punished most when short (``min_wrong``) and less
  when long (``max_wrong``): thinking longer about a wrong answer is the lesser evil.
- ``length`` (Kimi k1.5 group length reward): within the group of completions for the same
  prompt, ``lam = 0.5 - (len - min) / (max - min)``; correct ones get ``lam``, wrong ones
  ``min(0, lam)``. All the same length -> 0.
- ``overlong`` (DAPO soft overlong punishment): 0 up to ``max_len - cache_len`` tokens,
  then linearly down to -1 at ``max_len``, -1 beyond.
- ``repetition``: ``-max_penalty * (1 - unique n-grams / n-grams)`` over words.

Lengths are counted in tokens when possible: the ``completion_ids`` the TRL adapter puts
in each row, else a tokenizer named by the ``tokenizer`` option (a local path or hub id,
loaded lazily with transformers), else ``unit="words"`` (whitespace split, the default
fallback) or ``unit="chars"``. Correctness for the first two comes from the `math` reward
(row field ``answer``), or from a boolean row field ``correct`` when the caller has it.
"""

from __future__ import annotations

import math as _m
import threading
from typing import Any, Sequence

from rewards.base import RewardResult, prompt_group, register

_TOKENIZERS: dict[str, Any] = {}
_TOK_LOCK = threading.Lock()


def _tokenizer(name: str):
    """A function text -> token count. A local folder (or file) with a ``tokenizer.json``
    loads with the `tokenizers` library alone (no torch, well under a second); anything
    else is a hub id whose tokenizer.json is fetched through the hub cache."""
    with _TOK_LOCK:
        count = _TOKENIZERS.get(name)
        if count is None:
            from pathlib import Path

            path = Path(name)
            file = path / "tokenizer.json" if path.is_dir() else path
            if file.is_file() and file.suffix == ".json":
                from tokenizers import Tokenizer

                tok = Tokenizer.from_file(str(file))
                count = lambda text: len(tok.encode(text, add_special_tokens=False).ids)  # noqa: E731
            else:
                # A hub id: its tokenizer.json alone, through the hub cache (never transformers,
                # which would bring torch into `rewards`).
                from huggingface_hub import hf_hub_download
                from tokenizers import Tokenizer

                try:
                    tok = Tokenizer.from_file(hf_hub_download(name, "tokenizer.json"))
                except Exception as exc:  # noqa: BLE001 - any hub failure is the same user mistake
                    from rewards.base import RewardError

                    raise RewardError(f"tokenizer {name!r}: not a folder with tokenizer.json, and the hub "
                                      f"has none ({type(exc).__name__})") from None
                count = lambda text: len(tok.encode(text, add_special_tokens=False).ids)  # noqa: E731
            _TOKENIZERS[name] = count
        return count


def lengths(completions: Sequence[str], rows: Sequence[dict], tokenizer: str | None = None, unit: str = "words") -> tuple[list[int], str]:
    """Length of each completion and the unit it is counted in."""
    if rows and all(isinstance(r.get("completion_ids"), (list, tuple)) for r in rows):
        return [len(r["completion_ids"]) for r in rows], "tokens"
    if tokenizer:
        count = _tokenizer(tokenizer)
        return [count(c) for c in completions], "tokens"
    if unit == "chars":
        return [len(c) for c in completions], "chars"
    if unit != "words":
        raise ValueError(f"unit must be 'words' or 'chars' (or give a tokenizer), not {unit!r}")
    return [len(c.split()) for c in completions], "words"


def _correctness(completions, rows, options) -> list[bool | None]:
    if rows and all("correct" in r for r in rows):
        return [None if r["correct"] is None else bool(r["correct"]) for r in rows]
    from rewards.math import score_math

    keep = {k: options[k] for k in ("lenient", "timeout", "workers") if k in options and options[k] is not None}
    res = score_math(completions, rows, **keep)
    return [None if r.score is None else r.score >= 1.0 for r in res]


@register("cosine_length", fields=("answer",), self_managed=True, pool=True)
def cosine_length_reward(
    completions: Sequence[str],
    rows: Sequence[dict],
    *,
    max_len: int = 1000,
    min_correct: float = 0.5,
    max_correct: float = 1.0,
    min_wrong: float = -1.0,
    max_wrong: float = -0.5,
    tokenizer: str | None = None,
    unit: str = "words",
    lenient: bool = False,
    timeout: float | None = 5.0,
    workers: int | None = None,
) -> list[RewardResult]:
    """Correctness scaled by a cosine of length: short right answers best, short wrong ones worst."""
    lens, u = lengths(completions, rows, tokenizer, unit)
    correct = _correctness(completions, rows, dict(lenient=lenient, timeout=timeout, workers=workers))
    out = []
    for n, ok in zip(lens, correct):
        if ok is None:
            out.append(RewardResult(None, "gold unparsable: correctness unknown"))
            continue
        progress = min(n, max_len) / max_len
        cosine = _m.cos(progress * _m.pi)
        lo, hi = (min_correct, max_correct) if ok else (max_wrong, min_wrong)
        value = lo + 0.5 * (hi - lo) * (1.0 + cosine)
        out.append(RewardResult(value, f"{'correct' if ok else 'wrong'}: {n} {u} of {max_len}"))
    return out


@register("length", fields=("answer",), self_managed=True, pool=True, group_key=prompt_group)
def kimi_length_reward(
    completions: Sequence[str],
    rows: Sequence[dict],
    *,
    tokenizer: str | None = None,
    unit: str = "words",
    lenient: bool = False,
    timeout: float | None = 5.0,
    workers: int | None = None,
) -> list[RewardResult]:
    """Kimi k1.5 group length reward: shorter than the group's others is better; wrong never gains."""
    lens, u = lengths(completions, rows, tokenizer, unit)
    correct = _correctness(completions, rows, dict(lenient=lenient, timeout=timeout, workers=workers))
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(prompt_group(row), []).append(i)
    out: list[RewardResult | None] = [None] * len(completions)
    for idx in groups.values():
        lo = min(lens[i] for i in idx)
        hi = max(lens[i] for i in idx)
        for i in idx:
            if correct[i] is None:
                out[i] = RewardResult(None, "gold unparsable: correctness unknown")
                continue
            lam = 0.0 if hi == lo else 0.5 - (lens[i] - lo) / (hi - lo)
            value = lam if correct[i] else min(0.0, lam)
            tag = "correct" if correct[i] else "wrong"
            out[i] = RewardResult(value, f"{tag}: {lens[i]} {u} (group of {len(idx)}: {lo}..{hi})")
    return out  # type: ignore[return-value]


@register("overlong")
def overlong_reward(
    completions: Sequence[str],
    rows: Sequence[dict],
    *,
    max_len: int = 1024,
    cache_len: int = 256,
    tokenizer: str | None = None,
    unit: str = "words",
    **_: Any,
) -> list[RewardResult]:
    """DAPO soft overlong punishment: 0 until max_len - cache_len, linear to -1 at max_len."""
    if not 0 <= cache_len <= max_len:
        raise ValueError(f"need 0 <= cache_len ({cache_len}) <= max_len ({max_len})")
    lens, u = lengths(completions, rows, tokenizer, unit)
    safe = max_len - cache_len
    out = []
    for n in lens:
        if n <= safe:
            out.append(RewardResult(0.0, f"ok: {n} {u} <= {safe}"))
        elif n <= max_len:
            out.append(RewardResult((safe - n) / cache_len, f"long: {n} {u} in the last {cache_len} before {max_len}"))
        else:
            out.append(RewardResult(-1.0, f"overlong: {n} {u} > {max_len}"))
    return out


@register("repetition")
def repetition_reward(
    completions: Sequence[str], rows: Sequence[dict], *, ngram: int = 3, max_penalty: float = 1.0, **_: Any
) -> list[RewardResult]:
    """-max_penalty × the share of repeated word n-grams (0 for text without repeats)."""
    out = []
    for text in completions:
        words = text.lower().split()
        grams = [tuple(words[i : i + ngram]) for i in range(len(words) - ngram + 1)]
        if not grams:
            out.append(RewardResult(0.0, f"short: fewer than {ngram} words"))
            continue
        unique = len(set(grams))
        share = 1.0 - unique / len(grams)
        out.append(RewardResult(-max_penalty * share, f"repeats: {len(grams) - unique}/{len(grams)} {ngram}-grams repeated"))
    return out
