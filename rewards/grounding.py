"""The grounding reward: is the answer supported by the contexts that were retrieved for it?

A row carries ``contexts``: the retrieved chunk texts, in the order they were shown to the
model as ``[1]``, ``[2]``, … . The answer is the completion's claim
(`rewards.conventions.claim`: the last ``<answer>`` block when there is one, else the
completion with ``<think>``, ``<search>`` and ``<information>`` blocks removed -- pasted-in
retrieval must not count as the model's own claim, nor as support for it).

The answer is split into sentences. Each sentence is checked against the chunks it cites
(``[2]``, ``[1][3]``, ``[1, 3]``, ``[1; 3]``, ``[1-3]``: `rewards.conventions.citations`, the
same reading as the citation-precision metric); a sentence without a citation is checked against all
contexts (or scores 0 with ``require_citations=True``). A sentence's support is 1.0 when
its normalized text appears verbatim in a checked chunk, else the share of its content
words (lower-cased, stop words dropped, light plural folding) found in those chunks. The
answer's support is the word-weighted mean over sentences; the score is that support
times the share of citations that point at a chunk that exists — citing ``[7]`` when five
chunks were retrieved is penalised, never ignored.

Options: ``require_citations`` (False), ``min_support`` (0.0: supports below it score 0).
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from rewards.base import RewardError, RewardResult, register
from rewards.conventions import CITATION_RE, citations, claim

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[^\W_]+", re.U)
STOPWORDS = frozenset("""
a an the and or but if then else of to in on at by for with from as into onto over under about than that this
these those it its is are was were be been being am do does did has have had having not no nor so such can could
will would shall should may might must i you he she we they me him her us them my your his our their what which who
whom whose when where why how all any both each few more most other some own same very just also there here out up
down off again further once only too s t
""".split())


def content_words(text: str) -> list[str]:
    words = []
    for w in _WORD.findall(text.lower()):
        if w in STOPWORDS:
            continue
        if len(w) > 3 and w.endswith("s") and not w.endswith("ss"):
            w = w[:-1]  # fold simple plurals: "wings" supports "wing"
        words.append(w)
    return words


def _normalize(text: str) -> str:
    return " ".join(_WORD.findall(text.lower()))


def _context_texts(row: dict, i: int) -> list[str]:
    contexts = row.get("contexts")
    if contexts is None:
        raise RewardError(f"row {i}: missing field 'contexts' (the retrieved chunk texts)")
    if isinstance(contexts, str) or not isinstance(contexts, (list, tuple)):
        raise RewardError(f"row {i}: field 'contexts' must be a list of chunk texts, got {type(contexts).__name__}")
    out = []
    for j, c in enumerate(contexts):
        if isinstance(c, dict) and isinstance(c.get("text"), str):
            out.append(c["text"])
        elif isinstance(c, str):
            out.append(c)
        else:
            raise RewardError(f"row {i}: contexts[{j}] must be a string (or a dict with 'text')")
    return out


def score_grounding(completion: str, contexts: Sequence[str], *, require_citations: bool = False,
                    min_support: float = 0.0) -> RewardResult:
    """Score one completion against its retrieved contexts."""
    if not contexts:
        return RewardResult(None, "no retrieved contexts to check against")
    answer = claim(completion)
    if not _WORD.search(answer):
        return RewardResult(0.0, "empty answer", {"support": 0.0})
    context_words = [set(content_words(c)) for c in contexts]
    context_norm = [_normalize(c) for c in contexts]
    all_words = set().union(*context_words)
    all_norm = " \n ".join(context_norm)

    cited_all, invalid = [], []
    weighted, total_weight, unsupported = 0.0, 0, []
    for sentence in (s for s in _SENTENCE.split(answer) if _WORD.search(s)):
        cited = citations(sentence)
        cited_all.extend(cited)
        valid = sorted({n for n in cited if 1 <= n <= len(contexts)})
        invalid.extend(n for n in cited if not 1 <= n <= len(contexts))
        claimed = CITATION_RE.sub(" ", sentence)
        words = content_words(claimed)
        weight = max(len(words), 1)
        total_weight += weight
        if cited and not valid:
            continue  # cites only chunks that do not exist: no support
        if not cited and require_citations:
            continue
        words_ok = set().union(*(context_words[n - 1] for n in valid)) if valid else all_words
        norm_ok = " \n ".join(context_norm[n - 1] for n in valid) if valid else all_norm
        norm_claim = _normalize(claimed)
        if norm_claim and norm_claim in norm_ok:
            weighted += weight
            continue
        if not words:
            weighted += weight  # nothing checkable ("Yes [2].") is taken as supported by what it cites
            continue
        hit = [w in words_ok for w in words]
        weighted += weight * sum(hit) / len(words)
        unsupported.extend(w for w, ok in zip(words, hit) if not ok)

    support = weighted / total_weight if total_weight else 0.0
    valid_share = 1.0 - len(invalid) / len(cited_all) if cited_all else 1.0
    score = support * valid_share
    if score < min_support:
        score = 0.0
    details: dict[str, Any] = {"support": round(support, 4), "citations": cited_all, "invalid_citations": invalid,
                               "unsupported_words": unsupported[:10]}
    parts = [f"{support:.0%} of answer words supported"]
    parts.append(f"by cited {sorted(set(cited_all) - set(invalid))}" if cited_all and len(invalid) < len(cited_all)
                 else "by the contexts (no valid citation)" if cited_all else "by the contexts (no citations)")
    if invalid:
        parts.append(f"cites non-existent {sorted(set(invalid))} of {len(contexts)} contexts")
    if require_citations and not cited_all:
        parts.append("citations required")
    if unsupported:
        parts.append("unsupported: " + ", ".join(dict.fromkeys(unsupported[:5])))
    return RewardResult(round(score, 6), "; ".join(parts), details)


@register("grounding", fields=("contexts",))
def grounding(completions: Sequence[str], rows: Sequence[dict], *, require_citations: bool = False,
              min_support: float = 0.0, **_: Any) -> list[RewardResult]:
    """Share of the answer supported by the retrieved contexts it cites; non-existent citations penalised."""
    return [score_grounding(c, _context_texts(r, i), require_citations=require_citations, min_support=min_support)
            for i, (c, r) in enumerate(zip(completions, rows))]
