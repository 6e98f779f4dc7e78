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
``repetition``     a degenerate loop: some word n-gram (``repeat_ngram`` words, default 8)
                   occurs ``repeat_count`` times or more (default 5), or the text ends in a
                   short stretch of characters repeated over and over ("hahaha...", ")))))").
``language``       the reasoning is not in the prompt's language. For a Latin-script
                   language: fewer than ``language_min_share`` (default 0.9) of its words
                   in Latin script (R1-Zero's Chinese/English mixing), or the whole text
                   identified (langid, once) as another language. For other targets: the
                   ``language`` reward's word share (R1's language-consistency reward).
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
from dataclasses import dataclass, field, fields

import numpy as np

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
    repeat_ngram: int = 8
    """repetition: n-gram size in words (\\w+ runs, so LaTeX's \\frac{2}{x + 1} is four)."""
    repeat_count: int = 5
    """repetition: an n-gram seen this many times is a loop (6-grams seen 5 times would drop a
    MATH-500 solution whose `align` block ends every line with the same term)."""
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
_NON_ASCII_LETTER_RE = re.compile(r"[^\W\d_a-zA-Z]")  # typographic quotes and dashes are not letters
_EN_FUNCTION = frozenset("the a an of to and in is it that for on with as be this are was by we so then".split())
_EN_FUNCTION_IDS = np.array(sorted(hash(w) for w in _EN_FUNCTION), dtype=np.int64).view(np.uint64)
_MULT = np.uint64(0x9E3779B97F4A7C15)  # odd: multiplication mod 2**64 is a bijection


class Words:
    """A trace's words, read once and shared by every filter (and by decontamination): the
    lower-cased ``\\w+`` runs and a 64-bit id for each (Python's string hash: every filter
    compares ids within one process, and a hit is confirmed on the words themselves)."""

    __slots__ = ("words", "ids", "_grams")
    LONGEST = 13  # the longest n-gram any filter asks for (decontamination's)

    def __init__(self, text: str) -> None:
        self.words = _WORD_RE.findall(text.lower())
        self.ids = np.fromiter(map(hash, self.words), dtype=np.int64, count=len(self.words)).view(np.uint64)
        self._grams: list[np.ndarray] | None = None

    def grams(self, n: int) -> np.ndarray:
        """The hash of every n-gram, in order: a polynomial over the ids. All sizes up to
        `LONGEST` (or n, if larger) come from one pass, one vector multiply-add per size."""
        if self._grams is None:
            self._grams = [self.ids]
        if len(self._grams) < n:
            h = self._grams[-1]
            with np.errstate(over="ignore"):
                for k in range(len(self._grams), min(max(n, self.LONGEST), len(self.ids))):
                    h = h[:-1] * _MULT + self.ids[k:]
                    self._grams.append(h)
        return self._grams[n - 1] if n <= len(self._grams) else np.zeros(0, dtype=np.uint64)


def truncated(finish_reason: str | None, extracted: str | None) -> str | None:
    if finish_reason == "length":
        return "truncated: hit the token budget"
    if extracted is None:
        return "truncated: no final answer"
    return None


def _ends_in_a_loop(text: str, longest: int = 12, times: int = 8) -> bool:
    tail = text.rstrip()[-longest * times:]
    return any(len(tail) >= p * times and tail[-p * times:] == tail[-p:] * times for p in range(1, longest + 1))


def repetition(text: str, ngram: int = 8, count: int = 5, words: Words | None = None) -> str | None:
    if _ends_in_a_loop(text):
        return "repetition: ends in a loop of a few characters"
    words = words or Words(text)
    if len(words.words) < ngram * count:
        return None
    grams = words.grams(ngram)
    _, first, counts = np.unique(grams, return_index=True, return_counts=True)
    top = int(np.argmax(counts))
    if counts[top] < count:
        return None
    at = int(first[top])
    return f"repetition: {' '.join(words.words[at:at + ngram])!r} {int(counts[top])} times"


def _plainly_english(text: str, words: Words) -> bool:
    if not text.isascii() and _NON_ASCII_LETTER_RE.search(text):  # an accent or another script: ask the identifier
        return False
    n_alpha = sum(map(str.isalpha, words.words))  # numbers are not words here
    return n_alpha > 0 and int(np.isin(words.ids, _EN_FUNCTION_IDS).sum()) >= 0.15 * n_alpha


def language(text: str, target: str, min_share: float = 0.9, words: Words | None = None) -> str | None:
    from rewards.conventions import blocks

    think = blocks(text, "think")
    reasoning = think[0] if think else text
    if target == "en" and _plainly_english(reasoning, words if words is not None and not think else Words(reasoning)):
        return None
    from rewards.language import SCRIPTS, ascii_words, consistency, latin_language, words_by_script

    if "LATIN" not in SCRIPTS.get(target, {"LATIN"}):
        share, reason = consistency(reasoning, target)  # a non-Latin target: R1's word share, as the reward has it
        return f"language: {reason}" if share is not None and share < min_share else None
    if reasoning.isascii() or not _NON_ASCII_LETTER_RE.search(reasoning):
        latin = ascii_words(reasoning)  # every letter is a-z: no need to look at scripts
    else:
        scripted = words_by_script(reasoning)
        latin = [w for w, script in scripted if script == "LATIN"]
        if len(latin) < min_share * len(scripted):  # letters of another script: R1-Zero's Chinese/English mixing
            others = sorted({script.lower() for _, script in scripted if script != "LATIN"})
            return f"language: {len(latin)}/{len(scripted)} words in Latin script (others: {', '.join(others)})"
    if not latin:
        return None
    # All Latin: one identification of the whole text. Sentence by sentence, langid misreads
    # short English lines ("Jen ate 22 - 11 = 11 suckers." as German) often enough to drop
    # one trace in ten; the whole text it reads right.
    found = latin_language(latin, target) if len(latin) >= 3 else target
    return None if found == target else f"language: the reasoning reads as {found}, not {target}"


def code_blocks(text: str) -> str | None:
    return "code_blocks: a fenced code block in a task that asks for none" if _FENCE_RE.search(text) else None


def long_paragraphs(text: str, max_chars: int = 3000) -> str | None:
    longest = max((len(p) for p in _PARAGRAPH_RE.split(text)), default=0)
    return f"long_paragraphs: a paragraph of {longest} characters (> {max_chars})" if longest > max_chars else None


# ---- a prompt's samples together ---------------------------------------------------------

def shingles(words: Words, n: int = 5) -> np.ndarray:
    """The sorted distinct hashes of a trace's word n-grams."""
    return np.unique(words.grams(n) if len(words.ids) >= n else words.ids)


class NearDuplicates:
    """Keeps the first of each group of near-identical samples of one prompt."""

    def __init__(self, jaccard: float = 0.8) -> None:
        self.jaccard = jaccard
        self.kept: list[tuple[str, np.ndarray, str]] = []  # (normalised text, shingles, id)

    def check(self, text: str, sample_id: str, words: Words | None = None) -> str | None:
        norm = " ".join(text.lower().split())
        sh = shingles(words or Words(text))
        for other_norm, other_sh, other_id in self.kept:
            if norm == other_norm:
                return f"near_duplicate: the same text as {other_id}"
            common = len(np.intersect1d(sh, other_sh, assume_unique=True))
            union = len(sh) + len(other_sh) - common
            if union and common / union >= self.jaccard:
                return f"near_duplicate: Jaccard {common / union:.2f} with {other_id}"
        self.kept.append((norm, sh, sample_id))
        return None


def check_trace(text: str, *, config: FilterConfig, finish_reason: str | None, extracted: str | None,
                target_language: str = "en", writes_code: bool = False, words: Words | None = None) -> str | None:
    """The first per-trace filter (module doc's order, after `verified` and `contaminated`) that
    drops `text`, or None. `words`: the trace's `Words`, when the caller has read them already."""
    on = config.enabled
    words = words or Words(text)
    if "truncated" in on and (why := truncated(finish_reason, extracted)):
        return why
    if "repetition" in on and (why := repetition(text, config.repeat_ngram, config.repeat_count, words)):
        return why
    if "language" in on and (why := language(text, target_language, config.language_min_share, words)):
        return why
    if "code_blocks" in on and not writes_code and (why := code_blocks(text)):
        return why
    if "long_paragraphs" in on and (why := long_paragraphs(text, config.max_paragraph_chars)):
        return why
    return None


def filter_name(reason: str) -> str:
    """The filter a drop reason names (its text before the first colon)."""
    return reason.split(":", 1)[0]
