"""Which final answer does a math completion commit to? (extraction; grading is `rewards.math`)

Models write their answers in many styles, and a right answer that is not found scores 0
-- in GRPO that reads as "the policy was wrong". So extraction knows the styles real
models and standard prompts produce, and tries them in a fixed order of *commitment*,
strongest first. The first rule that finds something decides; the rule's name travels
into the score's reason (``correct: '36' (bold after 'the answer is') = '36'``).

1. ``<answer>...</answer>`` narrows the scope to the last answer block (R1-style prompts).
2. ``boxed`` -- every ``\\boxed{}``/``\\fbox{}`` in scope; several *different* boxes are
   hedging unless the gold has that many parts (`rewards.math` decides).
3. ``minerva`` -- ``Final Answer: The final answer is X. I hope it is correct.``
4. ``####`` -- GSM8K's marker (``#### **7**`` and ``#### The answer is 6`` too).
5. ``answer is`` / ``answer:`` -- "the (final) answer is", ``**Answer:** 12``, and the
   same markers in Chinese, Spanish, German, French and Portuguese.
6. ``<answer>`` -- the block's text when it holds no marker.
7. ``bare`` -- a short one-line completion is its own answer (``-5``, ``$\\frac{1}{2}$``,
   ``x \\in [-2, 7]``, ``28 percent``): its last math span, else its last number.
8. ``conclusion`` -- a last sentence that concludes ("Therefore, the probability ... is
   2/3.", "So the ordered pair is $(7, 6)$.").
9. ``last number`` -- only in lenient mode: the last number or math span anywhere.

A marked answer is cut at its sentence end ("The answer is 17. That is 7 more than ...")
and stripped of markdown; prose inside it is reduced to its value ("The volume of $V$ is
120" -> ``120``). Text a base model writes after its answer -- a new ``Question:``, a chat
template token -- is cut before any rule runs: it is a continuation, not hedging.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from rewards.conventions import blocks


@dataclass
class Extraction:
    answer: str | None  # None: nothing found; "": an empty box / answer
    method: str  # the rule that found it (see the module doc); "none" when nothing did
    candidates: list[str] = field(default_factory=list)  # every final answer seen (hedging)


# ------------------------------------------------------------------------------ pieces
_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
# A base model that keeps going after its answer starts a new problem or a new turn.
_CONTINUATION_RE = re.compile(
    r"(?:\n\s*(?:#+\s*)?(?:Question|Q|Problem|Human|User|Exercise)\s*\d*\s*[:.]"
    r"|<\|(?:im_start|im_end|eot_id|endoftext|end|user|start_header_id)\|>|</s>|<\|end_of_text\|>)",
    re.I,
)
_MINERVA_RE = re.compile(
    r"final answer\s*:?\s*the final answer is\s*(.+?)\s*\.?\s*(?:I hope it is correct|$)", re.I | re.S
)
_HASHES_RE = re.compile(r"####\s*([^\n]*)")
# "the answer is", "Answer:", "**Final Answer:** ...", and other languages' markers.
_MARKERS = [
    r"(?:the\s+)?(?:final\s+)?answer\s*(?:is|=|:|would be|will be|should be)\s*:?",
    r"(?:the\s+)?final\s+answer\s*(?=\$|\\\(|\\\[)",
    r"answer\s*(?=\$|\\\(|\\\[)",
    r"答案(?:是|为|為|：|:)",  # Chinese
    r"(?:la\s+)?respuesta(?:\s+final)?\s*(?:es|:|=)",  # Spanish
    r"(?:die\s+)?(?:endgültige\s+)?antwort\s*(?:ist|lautet|:|=)",  # German
    r"(?:la\s+)?réponse(?:\s+finale)?\s*(?:est|:|=)",  # French
    r"(?:a\s+)?resposta(?:\s+final)?\s*(?:é|:|=)",  # Portuguese
]
_MARKER_RE = re.compile(r"(?<![A-Za-z])(?:" + "|".join(_MARKERS) + r")", re.I)
_MATH_SPAN_RE = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
# A number as prose writes it: not glued to a letter before it (AZYUK2A has no answer).
_NUMBER_RE = re.compile(r"(?<![A-Za-z\d.])-?(?:\d[\d,]*(?:\.\d+)?|\.\d+)(?:\s*/\s*\d+)?")
_CONCLUDE_RE = re.compile(
    r"^(?:therefore|thus|so|hence|in conclusion|in summary|finally|consequently|overall|"
    r"this means|we (?:get|find|have|obtain|conclude))\b", re.I
)


def boxed_contents(text: str) -> list[str]:
    """Contents of every ``\\boxed{...}`` / ``\\fbox{...}``, braces balanced, in order."""
    out = []
    for m in _BOX_RE.finditer(text):
        i = m.end()
        if i < len(text) and text[i] == "{":
            depth, j = 0, i
            while j < len(text):
                c = text[j]
                if c == "\\":
                    j += 2
                    continue
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        out.append(text[i + 1 : j])
                        break
                j += 1
            # an unclosed box is a truncated completion: no answer from it
        elif i < len(text):
            tok = re.match(r"[^\s$]+", text[i:])  # `\boxed 5`: the next token
            if tok and m.group(0).endswith(" "):
                out.append(tok.group(0))
    return out


def cut_continuation(text: str) -> str:
    """The completion up to where a base model starts a new problem or turn."""
    m = _CONTINUATION_RE.search(text)
    if m and text[: m.start()].strip():
        return text[: m.start()]
    return text


def _sentence_end(s: str) -> int:
    """Index where the first sentence of `s` ends (outside math spans and braces)."""
    depth, in_math, i = 0, False, 0
    while i < len(s):
        c = s[i]
        if c == "\\" and i + 1 < len(s):
            if s[i + 1] in "([":
                in_math = True
            elif s[i + 1] in ")]":
                in_math = False
            i += 2
            continue
        if c == "$":
            in_math = not in_math
            if s[i:i + 2] == "$$":
                i += 1
        elif c in "{(":
            depth += 1
        elif c in "})":
            depth = max(0, depth - 1)
        elif c == "\n" and not in_math and s[:i].strip():
            return i
        elif not in_math and depth == 0 and c in ".!?。" and (i + 1 == len(s) or s[i + 1] in " \n\t*"):
            # "3." at the very end, "17. That is", but not "3.5" or "e.g. x"
            return i
        i += 1
    return len(s)


_MARKDOWN_RE = re.compile(r"\*\*|__|(?<!\\)\*|`")


def _reduce_phrase(phrase: str) -> str:
    """A marked answer without its sentence tail, markdown and prose around the value."""
    phrase = _MARKDOWN_RE.sub("", phrase).strip()
    phrase = re.sub(r"^[:\s]+", "", phrase)
    end = _sentence_end(phrase)
    phrase = phrase[:end].strip()
    # "#### The answer is 6", "Answer: the final answer is 6": the inner marker wins.
    inner = list(_MARKER_RE.finditer(phrase))
    if inner and inner[-1].end() < len(phrase):
        return _reduce_phrase(phrase[inner[-1].end():])
    boxes = boxed_contents(phrase)
    if boxes:
        return boxes[-1].strip()
    return _value_of_prose(phrase)


_WORDY_RE = re.compile(r"[A-Za-z\u00C0-\u024F]{2,}")


def _value_of_prose(phrase: str) -> str:
    """"The volume of $V$ is 120 cubic units" -> "120 cubic units"; "$x = 5$" stays."""
    outside = _MATH_SPAN_RE.sub(" ", phrase)
    if len(_WORDY_RE.findall(outside)) <= 3 and not re.search(r"\b(?:is|are|was|equals)\b", outside):
        return phrase.strip()  # an answer with at most a unit or two: normalization's job
    # The value follows the last copula outside math ("... is 120", "... equals $5$").
    last = None
    for m in re.finditer(r"\b(?:is|are|was|equals|be)\b|=", outside):
        last = m
    tail = phrase[last.end():] if last else phrase
    spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN_RE.finditer(tail)]
    if spans:
        return spans[0].strip()
    nums = list(_NUMBER_RE.finditer(tail))
    if nums:
        # "is 3 hours ago" -> 3 (the first after the copula); "increases by 100%" -> the last
        m = nums[0] if last else nums[-1]
        rest = tail[m.end():]
        unit = re.match(r"\s*(?:[A-Za-z%]+\.?\s*){0,2}", rest)
        return (m.group(0) + (unit.group(0) if unit else "")).strip()
    return tail.strip()


def _last_math_or_number(text: str) -> str | None:
    spans = [m for m in _MATH_SPAN_RE.finditer(text)]
    nums = list(_NUMBER_RE.finditer(text))
    last_span = spans[-1] if spans else None
    last_num = nums[-1] if nums else None
    if last_span and (not last_num or last_span.end() >= last_num.end()):
        return next(g for g in last_span.groups() if g is not None).strip()
    if last_num:
        # keep a unit word that follows ("28 percent", "1,000.99m²") for normalization
        rest = re.match(r"\s*(?:%|[A-Za-z\u00b2\u00b3€$]+)?", text[last_num.end():])
        return (last_num.group(0) + (rest.group(0) if rest else "")).strip()
    return None


_BARE_MAX = 160
# Words that take back a commitment: "it might be 7" is a guess, not an answer.
_UNSURE_RE = re.compile(r"\b(?:might|maybe|perhaps|probably|possibly|not sure|guess|could be|I think)\b", re.I)


def _bare_answer(text: str) -> str | None:
    """A short one-line completion is its own answer."""
    s = text.strip()
    if not s or "\n" in s.strip() and not re.fullmatch(r"(?:\$\$|\\\[).*(?:\$\$|\\\])", s, re.S):
        return None
    if len(s) > _BARE_MAX or s.endswith("?") or _UNSURE_RE.search(s) or _BOX_RE.search(s):
        return None  # a guess, or a box left open by truncation
    spans = list(_MATH_SPAN_RE.finditer(s))
    if spans and spans[0].start() == 0 and spans[-1].end() >= len(s.rstrip(" .")) and len(spans) == 1:
        return next(g for g in spans[0].groups() if g is not None).strip()
    outside = re.sub(r"\\[A-Za-z]+", " ", _MATH_SPAN_RE.sub(" ", s))
    if not _WORDY_RE.search(re.sub(r"\b(?:percent|pct|or|and)\b", "", outside)):
        return s.rstrip(" .")  # an expression, perhaps with a unit symbol
    return _last_math_or_number(s)


def _conclusion(text: str) -> str | None:
    """The value stated by a concluding last sentence ("Therefore, ... is 2/3.")."""
    body = re.sub(r"\s*I hope it is correct\.?\s*$", "", text.strip(), flags=re.I)
    # the last sentence: after the last sentence end that is followed by more text
    starts = [0] + [m.end() for m in re.finditer(r"(?<=[.!?$])\s+(?=[A-Z])|\n+", body)]
    for start in reversed(starts):
        sentence = body[start:].strip()
        if sentence and _CONCLUDE_RE.match(sentence.lstrip("*, ")) and not _UNSURE_RE.search(sentence):
            value = _value_of_prose(sentence[: _sentence_end(sentence) or len(sentence)])
            if value and value != sentence and re.search(r"\d|\\|\$", value):
                return value
            spans = [next(g for g in m.groups() if g is not None) for m in _MATH_SPAN_RE.finditer(sentence)]
            if spans:
                return spans[-1].strip()
            return None
        if sentence:
            return None  # only the very last sentence counts
    return None


# -------------------------------------------------------------------- the front door
def extract_answer(text: str, lenient: bool = False) -> Extraction:
    """The final answer a completion commits to (rules and their order: the module doc)."""
    text = cut_continuation(text)
    scope = text
    tags = blocks(text, "answer")  # the output conventions' reading: the last block decides
    if tags:
        scope = tags[-1]
    boxes = boxed_contents(scope)  # inside <answer> when there is one: boxes in the thinking do not count
    m = None
    for m in _MINERVA_RE.finditer(scope):
        pass
    # Boxes decide, unless a Minerva answer line follows them (boxed intermediate steps).
    if boxes and not (m and m.start() > scope.rfind("\\boxed")):
        return Extraction(boxes[-1].strip(), "boxed", [b.strip() for b in boxes])
    if m:
        ans = _strip_math(_reduce_phrase(m.group(1)))
        return Extraction(ans, "minerva", [ans])
    hashes = _HASHES_RE.findall(scope)
    if hashes:
        found = [_strip_math(_reduce_phrase(h)) for h in hashes]
        return Extraction(found[-1], "####", found)
    markers = list(_MARKER_RE.finditer(scope))
    while markers:
        last = markers.pop()
        ans = _strip_math(_reduce_phrase(scope[last.end():]))
        if ans:
            return Extraction(ans, "answer is", [ans])
    if tags:
        ans = _strip_math(_reduce_phrase(tags[-1]))
        return Extraction(ans, "<answer>", [ans])
    bare = _bare_answer(scope)
    if bare is not None:
        bare = _strip_math(bare)
        return Extraction(bare, "bare", [bare])
    concl = _conclusion(scope)
    if concl is not None:
        concl = _strip_math(concl)
        return Extraction(concl, "conclusion", [concl])
    if lenient:
        last = _last_math_or_number(text)
        clause = re.split(r"[.;:,!?\n]\s", text.rstrip(" .\n"))[-1]
        truncated = bool(_BOX_RE.search(text)) and not boxes
        if last is not None and not _UNSURE_RE.search(clause) and not truncated:  # "it might be 7" is a guess
            return Extraction(last, "last number", [last])
    return Extraction(None, "none", [])


_FULLWIDTH = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)} | {0x3000: 0x20, 0x3002: 0x2E}


def fullwidth_to_ascii(s: str) -> str:
    """３６ -> 36, ＝ -> = (CJK full-width forms; superscripts like m² are kept)."""
    return s.translate(_FULLWIDTH)


def _strip_math(s: str) -> str:
    s = fullwidth_to_ascii(s).strip().rstrip(" .,;")
    for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
            inner = s[len(a): len(s) - len(b)]
            if a == "$" and "$" in inner:
                continue  # "$x$ and $y$": two spans, not one
            s = inner.strip()
    return s.strip()


def extract_gold(gold: object) -> str:
    """The answer part of a gold field: GSM8K's ``#### N``, a boxed solution, or as is."""
    text = str(gold).strip()
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    boxes = list(dict.fromkeys(b.strip() for b in boxed_contents(text)))
    if len(boxes) > 1 and all(boxes):
        return ", ".join(boxes)  # a gold written as several boxes
    if boxes:
        return boxes[-1]
    if len(text) > _BARE_MAX and "\n" in text or len(text) > 2 * _BARE_MAX:
        found = extract_answer(text)  # a worked solution as the gold: its marked answer
        if found.answer:
            return found.answer
    return text
