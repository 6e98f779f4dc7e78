"""The output conventions: how assay reads a completion, written once.

A reward a model is trained on and the metric it is judged by must read a completion the
same way, or training optimises one thing and evaluation measures another. So every rule
about the *shape* of a model's output lives here, and rewards (`qa`, `grounding`,
`math_extraction`), tasks (RAG QA, reasoning-gym), eval (YAML suites) and the demo report
import it; none keeps a regex of its own.

Blocks -- ``<think>``, ``<answer>``, ``<search>``, ``<information>``:
  tags are matched case-insensitively, and a block whose closing tag is missing runs to
  the end of the text (a completion cut at the token budget still has its last block).
  When a completion holds several ``<answer>`` blocks, the **last** one is the answer: a
  model that writes an answer and then another has changed its mind, and under RL it
  must never get two shots (`answer_block`).

The claim -- the part of a completion that makes claims (`claim`):
  the last answer block when there is one, else the completion without its think, search
  and information blocks. Text a search engine pasted in is never the model's claim, nor
  support for it.

Information blocks -- one search's results as pasted into a search-in-the-loop completion
(`information_block` writes, `information_passages` reads): ``[n] text`` lines, numbered
on across searches, each passage's whitespace collapsed and cut to
``INFORMATION_PASSAGE_CHARS``; "No results." when a search finds nothing.

Citations -- ``[1]``, ``[1][3]``, ``[1, 3]``, ``[1; 3]``, ``[1-3]`` and ``[1–3]`` (a range
of up to 50 numbers is expanded; a wider one is read as its two ends). `citations` gives
every number in order of appearance (repeats kept: a reward that penalises each bad
citation needs them); `cited_passages` the distinct ones in first-cited order.

The short answer -- what a short-answer QA completion commits to (`short_answer`): the
last answer block, else the text after the last ``</information>``, else the whole
completion; think/search/information blocks removed; then its first non-empty line,
without a leading "Answer:" / "Final answer:" and without citation markers.

Abstention -- the response says the documents do not give the answer (`is_abstention`):
"not stated", "the passages do not say", "cannot be determined", "unanswerable", "I don't
know", "no information about", ... `ABSTENTION` is the sentence assay's own traces and
training targets use.
"""

from __future__ import annotations

import re
from typing import Sequence

# ---- blocks ----------------------------------------------------------------------------

TAGS = ("think", "answer", "search", "information")
_BLOCK_RE = {tag: re.compile(rf"<{tag}>(.*?)(?:</{tag}>|\Z)", re.S | re.I) for tag in TAGS}
_OTHER_BLOCKS_RE = re.compile(r"<(think|search|information)>.*?(?:</\1>|\Z)", re.S | re.I)


def blocks(text: str, tag: str) -> list[str]:
    """The contents of every ``<tag>…</tag>`` block in order (an unclosed last block runs to
    the end of the text)."""
    if tag not in _BLOCK_RE:
        raise ValueError(f"unknown block {tag!r}; the blocks are {', '.join(TAGS)}")
    return _BLOCK_RE[tag].findall(text)


def answer_block(text: str) -> str | None:
    """The last ``<answer>`` block's contents (the answer the completion ends with), or None."""
    found = _BLOCK_RE["answer"].findall(text)
    return found[-1] if found else None


def strip_blocks(text: str) -> str:
    """`text` without its think, search and information blocks (each replaced by a space)."""
    return _OTHER_BLOCKS_RE.sub(" ", text)


def after_information(text: str) -> str:
    """What the model wrote after the last pasted search result (the whole text if none)."""
    parts = re.split(r"</information>", text, flags=re.I)
    return parts[-1]


def claim(completion: str) -> str:
    """The part of a completion that makes claims (see the module doc)."""
    block = answer_block(completion)
    if block is not None:
        return block.strip()
    return strip_blocks(completion).strip()


# ---- information blocks ----------------------------------------------------------------

INFORMATION_TEMPLATE = "\n<information>{passages}</information>\n"
INFORMATION_PASSAGE_CHARS = 600
NO_RESULTS = "No results."
_NUMBERED_RE = re.compile(r"\[(\d+)\] (.*?)(?=\n\[\d+\] |\Z)", re.S)


def format_passages(texts: Sequence[str], *, start: int = 1, max_chars: int | None = None, sep: str = "\n\n") -> str:
    """``[start] text`` for each passage, whitespace collapsed, each cut to `max_chars`."""
    out = []
    for n, text in enumerate(texts, start):
        flat = " ".join(str(text).split())
        out.append(f"[{n}] {flat[:max_chars] if max_chars else flat}")
    return sep.join(out)


def information_block(texts: Sequence[str], *, start: int = 1, max_chars: int | None = INFORMATION_PASSAGE_CHARS,
                      template: str = INFORMATION_TEMPLATE) -> str:
    """One search's results as pasted into the completion: ``[n] text`` lines, numbered on
    from `start` (passages keep their numbers across searches), inside `template`."""
    body = format_passages(texts, start=start, max_chars=max_chars, sep="\n") if texts else NO_RESULTS
    return template.replace("{passages}", body)


def information_passages(completion: str) -> list[str]:
    """The passage texts pasted into a completion's information blocks, in the order shown
    (so the n-th is the one the model cites as ``[n]``)."""
    out: list[str] = []
    for block in blocks(completion, "information"):
        out.extend(m.group(2).strip() for m in _NUMBERED_RE.finditer(block))
    return out


# ---- citations -------------------------------------------------------------------------

CITATION_RE = re.compile(r"\[\s*(\d+(?:\s*[,;\-–]\s*\d+)*)\s*\]")
_MAX_RANGE = 50


def citations(text: str) -> list[int]:
    """Every cited number in order of appearance, repeats kept, ranges expanded."""
    out: list[int] = []
    for group in CITATION_RE.findall(text):
        for part in re.split(r"\s*[,;]\s*", group):
            bounds = re.split(r"\s*[-–]\s*", part.strip())
            if len(bounds) == 2:
                lo, hi = int(bounds[0]), int(bounds[1])
                out.extend(range(lo, hi + 1) if 0 < hi - lo <= _MAX_RANGE else (lo, hi))
            else:
                out.extend(int(b) for b in bounds)
    return out


def cited_passages(text: str) -> list[int]:
    """The distinct cited numbers, in first-cited order."""
    return list(dict.fromkeys(citations(text)))


def remove_citations(text: str) -> str:
    """`text` without its citation markers (and the space before each)."""
    return re.sub(r"\s*" + CITATION_RE.pattern, "", text)


# ---- the short answer ------------------------------------------------------------------

_ANSWER_LABEL_RE = re.compile(r"^(?:final answer|answer)\s*[:\-]\s*", re.I)


def short_answer(completion: str) -> str:
    """The answer a short-answer completion commits to (see the module doc)."""
    text = answer_block(completion)
    if text is None:
        text = after_information(completion)
    text = strip_blocks(text)
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    first = _ANSWER_LABEL_RE.sub("", lines[0]) if lines else ""
    return remove_citations(first).strip()


# ---- abstention ------------------------------------------------------------------------

ABSTENTION = "The passages do not say."
_ABSTAIN_RE = re.compile("|".join([
    r"\bnot (?:explicitly |directly |clearly )?(?:stated|mentioned|specified|given|provided|say|said|included|contained|found|known)\b",
    r"\b(?:do|does|did)(?:n't| not) (?:say|state|mention|specify|contain|include|provide|give|tell|indicate)\b",
    r"\b(?:cannot|can't|can ?not|unable to) (?:be )?(?:determined?|found|answer(?:ed)?|tell|say|find|know|confirm|infer)\b",
    r"\bunanswerable\b",
    r"\bnot answerable\b",
    r"\bi (?:do not|don't) know\b",
    r"\b(?:no|not enough|insufficient) (?:information|mention|details?|data|evidence|record)\b",
    r"\bthere is no (?:information|mention|record|evidence)\b",
    r"\bnot (?:in|from) the (?:provided |given |retrieved )?(?:documents?|passages?|context|corpus|sources?|texts?)\b",
    r"\b(?:documents?|passages?|context|corpus|sources?) (?:is|are) silent\b",
    r"\bunknown\b",
]), re.IGNORECASE)


def is_abstention(response: str) -> bool:
    """True when `response` says the documents do not give the answer."""
    return bool(_ABSTAIN_RE.search(response.replace("’", "'")))
