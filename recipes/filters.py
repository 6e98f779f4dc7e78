"""The filters a verified sample passes before it becomes training data (DeepSeek-R1's stage 3).

R1 kept a model's samples only when they were right *and* readable: "we filtered out
chain-of-thought with mixed languages, long paragraphs, and code blocks", and kept only
the correct ones of several samples per prompt. Each rule below is one function over one
trace that says why it drops it (or None), so the reason lands in ``dropped.jsonl`` and
the counts in the manifest. They run in this order; the first that drops a trace names it:

``verified``       the task's own scorer (the one evaluation uses) gave at least
                   ``threshold`` (default 1.0: right). Not a filter of this module: the
                   sampler applies it, since it needs the scorer.
``contaminated``   the prompt or the completion shares a word n-gram with a benchmark test
                   item (`recipes.decontamination`).
``truncated``      the generation hit its token budget (``finish_reason == "length"``), or
                   the scorer found no final answer in it.
``repetition``     a degenerate loop: some word n-gram (``repeat_ngram`` words, default 6)
                   occurs ``repeat_count`` times or more (default 4), or the text ends in a
                   short stretch of characters repeated over and over ("hahaha...", ")))))").
``language``       the reasoning is not in the prompt's language: fewer than
                   ``language_min_share`` (default 0.9) of its words are, as the
                   ``language`` reward measures it (R1's language-consistency reward).
                   Clearly English text (no letter outside a-z, 15% of its words English
                   function words) is let through without running the identifier.
``code_blocks``    a fenced code block (```` ``` ```` or ``~~~``) in a task that does not ask
                   for code.
``long_paragraphs`` a paragraph (text between blank lines) longer than
                   ``max_paragraph_chars`` (default 3,000).
``near_duplicate`` among one prompt's kept samples, a trace whose word 5-gram shingles
                   overlap an earlier kept one's by Jaccard >= ``dedup_jaccard`` (default
                   0.8), or equal to it after normalising case and whitespace. The earlier
                   one is kept. A prompt's samples are few (k), so the exact pairwise
                   Jaccard is both cheaper and exact where MinHash would estimate.
"""

from __future__ import annotations

import re
import zlib
from collections import Counter
from dataclasses import dataclass, field, fields

from core.config import ConfigError

FILTERS = ("verified", "contaminated", "truncated", "repetition", "language", "code_blocks", "long_paragraphs",
           "near_duplicate")


@dataclass
class FilterConfig:
    """Which filters run and their settings; every filter is on by default where it applies."""

    enabled: list[str] = field(default_factory=lambda: list(FILTERS))
    """The filters that run (`FILTERS`); `--no-filter NAME` removes one."""
    threshold: float = 1.0
    """verified: the least task score that counts as right."""
    repeat_ngram: int = 6
    """repetition: n-gram size in words."""
    repeat_count: int = 4
    """repetition: an n-gram seen this many times is a loop."""
    language_min_share: float = 0.9
    """language: least share of reasoning words in the prompt's language."""
    max_paragraph_chars: int = 3000
    """long_paragraphs: the longest paragraph kept, in characters."""
    dedup_jaccard: float = 0.8
    """near_duplicate: Jaccard of word 5-gram shingles at or above which two samples are one."""

    def __post_init__(self) -> None:
        unknown = [f for f in self.enabled if f not in FILTERS]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], FILTERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (filters: {', '.join(FILTERS)})"
            raise ConfigError(f"unknown filter {unknown[0]!r}{hint}")
        if not 0 <= self.threshold <= 1:
            raise ConfigError(f"threshold must be in [0, 1], got {self.threshold}")
        if self.repeat_ngram < 1 or self.repeat_count < 2:
            raise ConfigError("repeat_ngram must be >= 1 and repeat_count >= 2")
        if not 0 <= self.language_min_share <= 1 or not 0 < self.dedup_jaccard <= 1:
            raise ConfigError("language_min_share must be in [0, 1] and dedup_jaccard in (0, 1]")
        if self.max_paragraph_chars < 1:
            raise ConfigError("max_paragraph_chars must be >= 1")

    def settings(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


# ---- one trace at a time -----------------------------------------------------------------

_WORD_RE = re.compile(r"\w+")
_FENCE_RE = re.compile(r"^\s*(```|~~~)", re.M)
_PARAGRAPH_RE = re.compile(r"\n\s*\n")
_ASCII_WORD_RE = re.compile(r"[a-z]+")
_NON_ASCII_LETTER_RE = re.compile(r"[^\W\d_a-zA-Z]")  # typographic quotes and dashes are not letters
_EN_FUNCTION_RE = re.compile(r"\b(?:the|a|an|of|to|and|in|is|it|that|for|on|with|as|be|this|are|was|by|we|so|then)\b")


def truncated(finish_reason: str | None, extracted: str | None) -> str | None:
    if finish_reason == "length":
        return "truncated: hit the token budget"
    if extracted is None:
        return "truncated: no final answer"
    return None


def _ends_in_a_loop(text: str, longest: int = 12, times: int = 8) -> bool:
    tail = text.rstrip()[-longest * times:]
    return any(len(tail) >= p * times and tail[-p * times:] == tail[-p:] * times for p in range(1, longest + 1))


def repetition(text: str, ngram: int = 6, count: int = 4) -> str | None:
    if _ends_in_a_loop(text):
        return "repetition: ends in a loop of a few characters"
    words = text.lower().split()
    if len(words) < ngram * count:
        return None
    grams = Counter(zip(*(words[i:] for i in range(ngram))))  # every n-gram counted in C
    gram, n = grams.most_common(1)[0]
    return f"repetition: {' '.join(gram)!r} {n} times" if n >= count else None


def _plainly_english(text: str) -> bool:
    if not text.isascii() and _NON_ASCII_LETTER_RE.search(text):  # an accent or another script: ask the identifier
        return False
    low = text.lower()
    n_words = len(_ASCII_WORD_RE.findall(low))
    return n_words > 0 and len(_EN_FUNCTION_RE.findall(low)) >= 0.15 * n_words


def language(text: str, target: str, min_share: float = 0.9) -> str | None:
    from rewards.conventions import blocks

    think = blocks(text, "think")
    reasoning = think[0] if think else text
    if target == "en" and _plainly_english(reasoning):
        return None
    from rewards.language import consistency

    share, reason = consistency(reasoning, target)
    if share is not None and share < min_share:
        return f"language: {reason}"
    return None


def code_blocks(text: str) -> str | None:
    return "code_blocks: a fenced code block in a task that asks for none" if _FENCE_RE.search(text) else None


def long_paragraphs(text: str, max_chars: int = 3000) -> str | None:
    longest = max((len(p) for p in _PARAGRAPH_RE.split(text)), default=0)
    return f"long_paragraphs: a paragraph of {longest} characters (> {max_chars})" if longest > max_chars else None


# ---- a prompt's samples together ---------------------------------------------------------

def shingles(text: str, n: int = 5) -> frozenset[int]:
    """Hashes of the text's word n-grams (crc32: stable across processes, unlike hash())."""
    words = _WORD_RE.findall(text.lower())
    if len(words) < n:
        return frozenset([zlib.crc32(" ".join(words).encode())])
    return frozenset(zlib.crc32(" ".join(words[i:i + n]).encode()) for i in range(len(words) - n + 1))


class NearDuplicates:
    """Keeps the first of each group of near-identical samples of one prompt."""

    def __init__(self, jaccard: float = 0.8) -> None:
        self.jaccard = jaccard
        self.kept: list[tuple[str, frozenset[int], str]] = []  # (normalised text, shingles, id)

    def check(self, text: str, sample_id: str) -> str | None:
        norm = " ".join(text.lower().split())
        sh = shingles(text)
        for other_norm, other_sh, other_id in self.kept:
            if norm == other_norm:
                return f"near_duplicate: the same text as {other_id}"
            union = len(sh | other_sh)
            if union and len(sh & other_sh) / union >= self.jaccard:
                return f"near_duplicate: Jaccard {len(sh & other_sh) / union:.2f} with {other_id}"
        self.kept.append((norm, sh, sample_id))
        return None


def check_trace(text: str, *, config: FilterConfig, finish_reason: str | None, extracted: str | None,
                target_language: str = "en", writes_code: bool = False) -> str | None:
    """The first per-trace filter (module doc's order, after `verified`) that drops `text`, or None."""
    on = config.enabled
    if "truncated" in on and (why := truncated(finish_reason, extracted)):
        return why
    if "repetition" in on and (why := repetition(text, config.repeat_ngram, config.repeat_count)):
        return why
    if "language" in on and (why := language(text, target_language, config.language_min_share)):
        return why
    if "code_blocks" in on and not writes_code and (why := code_blocks(text)):
        return why
    if "long_paragraphs" in on and (why := long_paragraphs(text, config.max_paragraph_chars)):
        return why
    return None


def filter_name(reason: str) -> str:
    """The filter a drop reason names (its text before the first colon)."""
    return reason.split(":", 1)[0]
