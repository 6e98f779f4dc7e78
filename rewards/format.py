"""Format rewards for R1-style completions: ``<think>…</think><answer>…</answer>``.

- ``format``: the whole completion is one think block then one answer block (whitespace
  between and around them allowed), both non-empty, each tag exactly once.
- ``format_strict``: as above, with the exact newlines of the R1 template
  (``<think>\\n…\\n</think>\\n<answer>\\n…\\n</answer>``), nothing before or after.
- ``format_lenient``: a non-empty think block followed somewhere by a non-empty answer
  block; other text around them is tolerated.
- ``tag_count``: partial credit, 0.25 for each of the four tags present exactly once.
- ``format_code``: ``format``, and the answer holds a fenced code block (```python by default).

Option ``prefilled_think=True``: the prompt already ends with ``<think>`` (a common chat
template trick), so the completion starts inside the think block.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from rewards.base import RewardResult, register

TAGS = ("<think>", "</think>", "<answer>", "</answer>")
_STANDARD = re.compile(r"\s*<think>(.*?)</think>\s*<answer>(.*?)</answer>\s*", re.S)
_STRICT = re.compile(r"<think>\n(.*?)\n</think>\n<answer>\n(.*?)\n</answer>\n?", re.S)
_LENIENT = re.compile(r"<think>(.*?)</think>.*?<answer>(.*?)</answer>", re.S)


def _prep(text: str, prefilled_think: bool) -> str:
    if prefilled_think and not text.lstrip().startswith("<think>"):
        return "<think>" + ("\n" if not text.startswith("\n") else "") + text
    return text


def _tag_problem(text: str) -> str | None:
    for tag in TAGS:
        n = text.count(tag)
        if n != 1:
            return f"{tag} appears {n} times"
    return None


def check_format(text: str, mode: str = "standard") -> tuple[bool, str]:
    """(ok, reason) for one completion; mode is standard, strict or lenient."""
    if mode == "lenient":
        m = _LENIENT.search(text)
        if not m:
            return False, "bad format: no <think>…</think> followed by <answer>…</answer>"
    else:
        problem = _tag_problem(text)
        if problem:
            return False, f"bad format: {problem}"
        m = (_STRICT if mode == "strict" else _STANDARD).fullmatch(text)
        if not m:
            if mode == "strict":
                return False, "bad format: not exactly <think>\\n…\\n</think>\\n<answer>\\n…\\n</answer>"
            return False, "bad format: text outside the blocks or answer before think"
    if not m.group(1).strip():
        return False, "bad format: empty think block"
    if not m.group(2).strip():
        return False, "bad format: empty answer block"
    return True, f"ok: {mode} R1 format"


def _format_batch(completions: Sequence[str], mode: str, prefilled_think: bool) -> list[RewardResult]:
    out = []
    for text in completions:
        ok, reason = check_format(_prep(text, prefilled_think), mode)
        out.append(RewardResult(1.0 if ok else 0.0, reason))
    return out


@register("format")
def format_reward(completions: Sequence[str], rows: Sequence[dict], *, prefilled_think: bool = False, **_: Any) -> list[RewardResult]:
    """1.0 for exactly one <think>…</think> then one <answer>…</answer> and nothing else."""
    return _format_batch(completions, "standard", prefilled_think)


@register("format_strict")
def format_strict_reward(completions: Sequence[str], rows: Sequence[dict], *, prefilled_think: bool = False, **_: Any) -> list[RewardResult]:
    """1.0 for the exact R1 template with its newlines."""
    return _format_batch(completions, "strict", prefilled_think)


@register("format_lenient")
def format_lenient_reward(completions: Sequence[str], rows: Sequence[dict], *, prefilled_think: bool = False, **_: Any) -> list[RewardResult]:
    """1.0 when a think block is followed by an answer block, other text tolerated."""
    return _format_batch(completions, "lenient", prefilled_think)


@register("tag_count")
def tag_count_reward(completions: Sequence[str], rows: Sequence[dict], *, prefilled_think: bool = False, **_: Any) -> list[RewardResult]:
    """0.25 for each R1 tag that appears exactly once (partial credit toward the format)."""
    out = []
    for text in completions:
        text = _prep(text, prefilled_think)
        good = [t for t in TAGS if text.count(t) == 1]
        bad = [f"{t}×{text.count(t)}" for t in TAGS if text.count(t) != 1]
        reason = f"tags: {len(good)}/4 once" + (f" ({', '.join(bad)})" if bad else "")
        out.append(RewardResult(0.25 * len(good), reason))
    return out


_FENCE = re.compile(r"```([\w+-]*)[ \t]*\n(.*?)```", re.S)


@register("format_code")
def format_code_reward(
    completions: Sequence[str], rows: Sequence[dict], *, prefilled_think: bool = False, language: str = "python", **_: Any
) -> list[RewardResult]:
    """1.0 for the R1 format with a fenced code block (```python) inside the answer."""
    out = []
    for text in completions:
        text = _prep(text, prefilled_think)
        ok, reason = check_format(text, "standard")
        if not ok:
            out.append(RewardResult(0.0, reason))
            continue
        answer = _STANDARD.fullmatch(text).group(2)
        fences = [(lang.lower(), body) for lang, body in _FENCE.findall(answer)]
        if not fences:
            out.append(RewardResult(0.0, "no code: no fenced block in the answer"))
        elif language and not any(lang == language.lower() for lang, _ in fences):
            out.append(RewardResult(0.0, f"no code: fenced block is not ```{language}"))
        elif not any(body.strip() for _, body in fences):
            out.append(RewardResult(0.0, "no code: empty fenced block"))
        else:
            out.append(RewardResult(1.0, f"ok: R1 format with ```{language or ''} block in the answer"))
    return out
