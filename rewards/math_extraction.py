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
7. ``bare`` -- a short one-sentence completion is its own answer (``-5``, ``$\\frac{1}{2}$``,
   ``x \\in [-2, 7]``, ``28 percent``): its last math span, else its last number.
8. ``conclusion`` -- a last sentence that concludes ("Therefore, the probability ... is
   2/3.", "So the ordered pair is $(7, 6)$.", "Thus, she will spend $15*13=$195.").
9. ``final statement`` -- the last statement, unmarked, when it commits to a value: the one
   after its last '=' ("Total = 50,000 + 7,500 = $57,500"), or its one number when it states
   a result ("She makes $45.00 in total.") or one the work computed ("Kylar pays $64 for the
   16 glasses"). Courtesy lines, asides, checks and suppositions after it are skipped
   ("Let me know if you need anything else!", "If she also sold the 3 eggs, she would make
   $24."); a question, a guess, a negation, two values ("either 12 or 14") or a doubt at the
   end commits to nothing, and a statement that neither states a result nor derives its
   value restates a given ("He already has $4 savings.").
10. ``last number`` -- only in lenient mode: the last number or math span anywhere (not when
   the ending is a question, a hedge, a negation or a supposition).

Retractions: a completion is graded on the answer it ENDS with. After a marked answer (or
after the last ``</answer>``), text from a retraction cue on is read on its own: "Actually
no", "Wait, I made an error", "that is wrong", "Correction:" replace the answer with the one
that follows (or leave none: ``retracted``); a second look ("Wait, let me check") replaces it
only with a new *marked* answer, leaves it standing when it states nothing new or the same
value, is hedging when it ends on another unmarked value, and leaves none when it ends on a
question or a guess with a number in it. The rule's name
then reads ``boxed after a retraction``. Several different answers *without* a retraction are
hedging, as before -- also values offered right after an answer ("\\boxed{18}, or possibly
20") and several "the answer is" lines. A negated answer ("The answer is not 18", "NOT
\\boxed{18}"), a marked answer that is a question ("So the answer is 18?") or a supposition
("Suppose the answer is 18.") commits to nothing; a fenced code block is a program, not the
reply, and nothing in it is read.

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
    return [content for _, _, content in _box_spans(text)]


def _box_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, contents) of every box, in order."""
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
                        out.append((m.start(), j + 1, text[i + 1 : j]))
                        break
                j += 1
            # an unclosed box is a truncated completion: no answer from it
        elif i < len(text):
            tok = re.match(r"[^\s$]+", text[i:])  # `\boxed 5`: the next token
            if tok and m.group(0).endswith(" "):
                out.append((m.start(), i + tok.end(), tok.group(0)))
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
    # "not 20; it is 18" -> "it is 18"; "NOT \\boxed{18}" -> nothing: a negated value is no answer
    neg = re.match(r"(?:not|n't|never)\b(.*?)(?:[;,]|\bbut\b)\s*(?:but\s+|rather\s+)?(.+)", phrase, re.I | re.S)
    if neg:
        return _reduce_phrase(neg.group(2))
    if re.match(r"(?:not|n't|never)\b", phrase, re.I):
        return ""
    # "18, not 20" -> "18"; "20 (though some might say 18)" -> "20": the aside is not the answer
    phrase = re.sub(r",?\s+(?:and\s+)?not\s+[^;,]*$", "", phrase, flags=re.I)
    phrase = re.sub(r"\s\((?![^()]*\\)[^()]*\b[A-Za-z]{3,}\b[^()]*\)", "", phrase).strip()
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
    if _HYPOTHETICAL_RE.search(s) or re.search(r"[.!?]\s+\S", s.rstrip(" .!")):
        return None  # a supposition, or several sentences: the final-statement rule reads those
    spans = list(_MATH_SPAN_RE.finditer(s))
    if spans and spans[0].start() == 0 and spans[-1].end() >= len(s.rstrip(" .")) and len(spans) == 1:
        return next(g for g in spans[0].groups() if g is not None).strip()
    outside = re.sub(r"\\[A-Za-z]+", " ", _MATH_SPAN_RE.sub(" ", s))
    if not _WORDY_RE.search(re.sub(r"\b(?:percent|pct|or|and)\b", "", outside)):
        return s.rstrip(" .")  # an expression, perhaps with a unit symbol
    if _DOUBT_RE.search(s) or re.search(r"\d[^\d]{0,12}\bor\b[^\d]{0,12}\d", s):
        return None  # "It is either 41 or 42.": a sentence offering two numbers commits to neither
    return _last_math_or_number(s)


def _conclusion(text: str) -> str | None:
    """The value stated by a concluding last sentence ("Therefore, ... is 2/3.")."""
    body = re.sub(r"\s*I hope it is correct\.?\s*$", "", text.strip(), flags=re.I)
    # the last sentence: after the last sentence end that is followed by more text
    starts = [0] + [m.end() for m in re.finditer(r"(?<=[.!?$])\s+(?=[A-Z])|\n+", body)]
    for start in reversed(starts):
        sentence = body[start:].strip()
        if sentence and _CONCLUDE_RE.match(sentence.lstrip("*, ")) and not _UNSURE_RE.search(sentence):
            if "?" in sentence or _NEGATION_RE.search(sentence) or _counterfactual(sentence):
                return None  # "So is it 18?", "So it is not 18.", "So if she had sold more, she would make 18."
            sentence = _uncurrency(sentence)  # "Thus, she will spend $15*13=$195.": money, not math
            outside = _MATH_SPAN_RE.sub(" ", sentence)
            if "=" in outside and not re.search(r"\bor\b", outside[outside.rindex("="):]):
                vals = _numbers(outside[outside.rindex("=") + 1:])  # "Therefore, she has 80 - 20 = 60 left."
                return vals[0] if vals else None
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


# ------------------------------------------------------- final statements and retractions
# Asides after the answer: courtesy lines, "by the way", a check ("This makes sense, since
# ..."), a short "Correct." -- they take nothing back, and a number in them is not an answer.
_ASIDE_RE = re.compile(
    r"^(?:let me know|i hope|hope (?:this|that|it)|feel free|happy to help|good luck|have a (?:great|nice|good)|"
    r"thanks|thank you|enjoy|cheers|by the way|btw|fun fact|side note|as an aside|p\.?s\.?\b|note:|"
    r"(?:this|that|it) (?:makes sense|checks out|is consistent|matches)|check(?:ing)?:|verification:|to (?:check|verify)\b)", re.I)
# A statement that only supposes: "If she had sold one more, she would make $20."
_HYPOTHETICAL_RE = re.compile(
    r"\b(?:if|unless|suppose|supposing|assume|assuming|imagine|hypothetically|let's say|let us say|in case|"
    r"otherwise|were (?:she|he|it|they|we|you|I) to)\b", re.I)
# A supposition against the facts: "If she had sold one more", "if it were", "would have",
# "Suppose ...". A plain conditional ("If he saves $2 a day, it takes him 8 / 2 = 4 days") is
# how worked solutions state results; it counts when it derives its value.
_COUNTERFACTUAL_RE = re.compile(
    r"\b(?:if|unless)\b[^,.;]{0,40}?\b(?:had|were)\b|\bwould have\b|\bcould have\b|\bwould've\b"
    r"|\b(?:suppose|supposing|assume|assuming|imagine|hypothetically|let's say|let us say|say that)\b", re.I)


def _counterfactual(sentence: str) -> bool:
    return bool(_COUNTERFACTUAL_RE.search(sentence))


_NEGATION_RE = re.compile(r"\b(?:not|never|no|cannot)\b|n't\b", re.I)
_DOUBT_RE = re.compile(
    r"\b(?:wrong|incorrect|mistake|error|either|not sure|unsure|uncertain|guess|possible|possibly|alternatively)\b", re.I)
# Words that show the final statement states a result, not a given of the problem.
_RESULT_RE = re.compile(
    r"^(?:so|thus|therefore|hence|in total|overall|altogether|in all|finally|in the end)\b"
    r"|\b(?:total|totals|in all|altogether|all together|combined|result|final|answer|comes? to|amounts? to)\b", re.I)
# Taking an answer back. Strong: says the answer was wrong. Weak: a second look ("Wait").
_RETRACT_STRONG_RE = re.compile(
    r"(?:\b(?:wait|hmm+|hold on|oops|actually)\b[\s,.!:;\u2014-]*\bno\b"
    r"|(?:^|(?<=[.!?\n]))\s*No\s*[,.!:;\u2014]"
    r"|\bscratch that\b|\bcorrection\s*:|\bon second thought\b|\b(?:just )?kidding\b"
    r"|\bI (?:made|make|have made) (?:an?\s+|a small\s+|a big\s+)?(?:error|mistake|miscalculation|slip)"
    r"|\bI (?:misread|miscalculated|miscounted|mis-?computed|forgot)\b"
    r"|\b(?:that|this|it|which)(?:'s|\s+is|\s+was)\s+(?:wrong|incorrect|not (?:right|correct))\b"
    r"|\b(?:that|this|it) (?:doesn't|does not|can't|cannot|didn't) (?:look|seem|sound|be) (?:right|correct)\b"
    r"|\bI was wrong\b|\b(?:my|the|that|this) (?:earlier |previous |first )?answer (?:is|was) (?:wrong|incorrect)\b)",
    re.I)
_RETRACT_WEAK_RE = re.compile(
    r"\b(?:wait|actually|hmm+|oops|hold on|let me (?:re-?check|recompute|re-?calculate|redo|reconsider|verify|double[- ]check|check))\b",
    re.I)
_LIST_RE = re.compile(r"\d,\s+-?\$?\d[\d.]*,\s+(?:and\s+|or\s+)?-?\$?\d")  # "16, 17, 18"
_CODE_FENCE_RE = re.compile(r"```.*?(?:```|\Z)", re.S)


def _sentences(text: str) -> list[str]:
    """`text` split into lines, and lines into sentences (a '.' followed by a space; not
    "3.5", not inside braces). ``$`` is not trusted here: prose writes it as currency."""
    out = []
    for line in text.splitlines():
        depth, start = 0, 0
        for i, c in enumerate(line):
            if c in "{(":
                depth += 1
            elif c in "})":
                depth = max(0, depth - 1)
            elif c in ".!?。" and depth == 0 and (i + 1 == len(line) or line[i + 1] in " \t"):
                out.append(line[start:i + 1])
                start = i + 1
        out.append(line[start:])
    return [x.strip() for x in out if x.strip(" .!*_#>-\t")]


def _uncurrency(sentence: str) -> str:
    """"makes 9 × $2 = $18." -> "makes 9 × 2 = 18.": ``$`` pairs that enclose prose are money."""
    for m in _MATH_SPAN_RE.finditer(sentence):
        inner = next(g for g in m.groups() if g is not None)
        if m.group(0).startswith("$") and (_WORDY_RE.search(re.sub(r"\\[A-Za-z]+", " ", inner))
                                           or re.search(r"[-+*/x×=,]\s*$", inner) or inner[:1].isspace()):
            return re.sub(r"\\?\$(?=\s*-?\d|\s*\.\d)", "", sentence)
    if sentence.count("$") % 2:
        return re.sub(r"\\?\$(?=\s*-?\d|\s*\.\d)", "", sentence)
    return sentence.replace("\\$", "")


def _numbers(sentence: str) -> list[str]:
    """The values a sentence states: its math spans, then the numbers outside them."""
    vals = [next(g for g in m.groups() if g is not None).strip() for m in _MATH_SPAN_RE.finditer(sentence)]
    outside = _MATH_SPAN_RE.sub(" ", sentence)
    vals += [m.group(0) for m in _NUMBER_RE.finditer(outside)]
    return [v for v in vals if re.search(r"\d", v)]


def _same_value(a: str, b: str) -> bool:
    a, b = (re.sub(r"[\s,$\\]|\.0+$|\.(?=\d*$)(?=0*$)", "", x) for x in (a, b))
    return a == b


def _computed_before(value: str, text: str) -> bool:
    """Did the work before the final statement compute `value` (``... = 18``, ``is 18``)?"""
    for m in re.finditer(r"(?:=|\bis\b|\bare\b)\s*\$?\s*(-?\d[\d,]*(?:\.\d+)?)", text):
        if _same_value(m.group(1), value):
            return True
    return False


_ASSIGNMENT_RE = re.compile(r"\s*(.+?)\s*=\s*\$?([^\s=]+?)\s*$")  # "x = 9"


def _statement_value(s: str, before: str) -> tuple[str | None, list[str], bool]:
    """The value sentence `s` states as a result, other values it lists with it (hedging), and
    whether that value is derived (after an '=' in `s`, or computed in the work `before`)."""
    if "=" in s:
        vals = _numbers(s[s.rindex("=") + 1:])
        if not vals:
            return None, [], False
        value = vals[0]
        # "x = 9", "x = 16", "x = 18": enumerating candidates for one unknown, not an answer
        lhs = s.split("=", 1)[0].strip()
        if s.count("=") == 1 and len(vals) == 1 and lhs:
            others = [m.group(2) for m in map(_ASSIGNMENT_RE.match, before.splitlines()) if m and m.group(1) == lhs]
            others = [o for o in others if not _same_value(o, value)]
            if others:
                return value, others + [value], True
        return value, [], True
    vals = list(dict.fromkeys(_numbers(s)))
    if len(vals) > 1:  # "Kylar pays $64 for the 16 glasses": the value the work computed
        vals = [v for v in vals if _computed_before(v, before)]
    if len(vals) != 1:
        return None, [], False
    value = vals[0]
    at = s.find(value)
    if at >= 0 and s[at + len(value):].lstrip().startswith("%"):
        value += "%"
    return value, [], _computed_before(vals[0], before)


def _final_statement(text: str) -> tuple[str | None, list[str], str | None]:
    """The value a completion's last statement commits to, with no marker ("Total = 50,000 +
    7,500 = $57,500", "She makes $45.00 in total."), and any other value it offers in the
    same breath (hedging). Trailing courtesy lines, asides and suppositions are skipped; a
    question, a hedge, a negation or a doubt at the end commits to nothing. A statement that
    neither states a result ("total", "so", ...) nor derives its value restates a given of
    the problem ("He already has $4 savings.") and commits to nothing either. The third item
    is the text up to the final statement (asides cut), or None when the ending refuses to
    commit -- what lenient mode may still read a last number from."""
    body = re.sub(r"\s*I hope it is correct\.?\s*$", "", text.strip(), flags=re.I)
    sents = _sentences(body)
    while sents:
        s = _uncurrency(_MARKDOWN_RE.sub("", sents[-1]).strip())
        kept = "\n".join(sents)
        plain = re.sub(r"[^\w\s]", " ", s).split()
        has_value = bool(_numbers(s))
        if _ASIDE_RE.match(s.lstrip("(*_ ")) or (s.startswith("(") and s.endswith((")", ").", ")!"))):
            sents.pop()  # a courtesy line or an aside: it takes nothing back
            continue
        if "?" in s:
            return None, [], None  # a question at the end: nothing committed
        if _UNSURE_RE.search(s) or _DOUBT_RE.search(s):
            return None, [], kept  # a guess or a doubt (lenient mode reads its last clause)
        if not has_value:
            if len(plain) <= 3 and not _NEGATION_RE.search(s):
                sents.pop()  # "Correct.", "That's it!", an emoji
                continue
            return None, [], kept  # the completion ends on words, not on a value
        before = _uncurrency("\n".join(sents[:-1]))
        if _counterfactual(s) or (_HYPOTHETICAL_RE.search(s) and not _statement_value(s, before)[2]):
            if len(sents) > 1:
                sents.pop()  # "If she also sold the 3 eggs, she would make $24." after the result
                continue
            return None, [], None
        if _NEGATION_RE.search(s) or re.search(r"\bor\b|\bbetween\b", s, re.I) or _LIST_RE.search(s):
            return None, [], None  # "not 18", "18 or 20", "16, 17, 18": no one value
        value, others, derived = _statement_value(s, before)
        if value is None or not (derived or _RESULT_RE.search(s)):
            return None, [], kept  # a given of the problem restated ("He already has $4 savings."), not a result
        return value, others, kept
    return None, [], ""


def _alternatives_after(rest: str, answer: str) -> list[str]:
    """Other values offered right after an answer ("\\boxed{18}, or possibly 20")."""
    out = []
    for sent in _sentences(rest[:400])[:2]:
        for m in _ALTERNATIVE_RE.finditer(sent):
            out += [v for v in _numbers(m.group(1)) if not _same_value(v, answer)]
    return out


# "or 20", "maybe 20", "or possibly $20", "it could also be 20": a value offered as an alternative
_ALTERNATIVE_RE = re.compile(
    r"\b(?:or|maybe|perhaps|possibly|(?:might|could|may)(?: also)? be)\s+(?:even\s+|also\s+|maybe\s+|possibly\s+|perhaps\s+)?"
    r"(\$?\s*-?\d[\d,]*(?:\.\d+)?)", re.I)


def _boxes(text: str) -> list[tuple[int, int, str]]:
    """Every box with its span, except one the completion negates ("NOT \\boxed{18}")."""
    out = []
    for start, end, content in _box_spans(text):
        if re.search(r"(?:\bnot|n't|\bnever)\s*\$?\s*$", text[max(0, start - 20):start], re.I):
            continue
        out.append((start, end, content))
    return out


def _rules(scope: str, lenient: bool, block: bool, text: str) -> Extraction:
    """The rules of the module doc, in order, on one scope (no retractions)."""
    boxes = _boxes(scope)  # inside <answer> when there is one: boxes in the thinking do not count
    m = None
    for m in _MINERVA_RE.finditer(scope):
        pass
    # Boxes decide, unless a Minerva answer line follows them (boxed intermediate steps).
    if boxes and not (m and m.start() > boxes[-1][0]):
        found = [b[2].strip() for b in boxes]
        rest = scope[boxes[-1][1]:]
        if re.match(r"\s*\$?\s*\?", rest):
            return Extraction(None, "none", [])  # "\\boxed{18}?": a question, not an answer
        return Extraction(found[-1], "boxed", found + _alternatives_after(rest, found[-1]))
    if m:
        ans = _strip_math(_reduce_phrase(m.group(1)))
        return Extraction(ans, "minerva", [ans])
    hashes = list(_HASHES_RE.finditer(scope))
    if hashes:
        found = [_strip_math(_reduce_phrase(h.group(1))) for h in hashes]
        return Extraction(found[-1], "####", found + _alternatives_after(scope[hashes[-1].end():], found[-1]))
    markers = list(_MARKER_RE.finditer(scope))
    while markers:
        last = markers.pop()
        sentence_start = max(scope.rfind(c, 0, last.start()) for c in ".!?\n")
        phrase = scope[last.end():]
        end = last.end() + _sentence_end(phrase)
        sentence = scope[sentence_start + 1: end + 1]
        if scope[end:end + 1] == "?" or re.match(r"\s*\S{0,3}\?", scope[end:end + 6]):
            return Extraction(None, "none", [])  # "So the answer is 18?": a question
        if re.search(r"\b(?:suppose|supposing|assume|assuming|imagine|let's say|if|unless)\b", sentence, re.I) and (
                re.search(r"\b(?:would|could|might|had|were)\b", sentence, re.I)
                or re.match(r"\s*(?:suppose|supposing|assume|assuming|imagine|let's say)\b", sentence, re.I)):
            continue  # "Suppose the answer is 18.", "The answer would be 18 if ...": a supposition
        ans = _strip_math(_reduce_phrase(phrase))
        if ans:
            earlier = []
            for prev in markers:  # other values stated as the answer before: hedging unless taken back
                head = scope[max(0, prev.start() - 200):prev.start()]
                head = head[max(head.rfind(c) for c in ".!?\n") + 1:]
                tail = scope[prev.end():prev.end() + 2000]
                sent = head + tail[:_sentence_end(tail) + 1]
                if "?" in sent or _TENTATIVE_RE.search(sent):
                    continue  # "Let's check whether the answer is 5": a test, not a claim
                val = _strip_math(_reduce_phrase(tail))
                if val and re.search(r"\d", val) and not _same_value(val, ans):
                    earlier.append(val)
            return Extraction(ans, "answer is", earlier + [ans] + _alternatives_after(scope[end + 1:], ans))
    if block:
        ans = _strip_math(_reduce_phrase(scope))
        return Extraction(ans, "<answer>", [ans])
    bare = _bare_answer(scope)
    if bare is not None:
        bare = _strip_math(bare)
        return Extraction(bare, "bare", [bare])
    concl = _conclusion(scope)
    if concl is not None:
        concl = _strip_math(concl)
        return Extraction(concl, "conclusion", [concl])
    final, others, kept = _final_statement(scope)
    if final is not None:
        final = _strip_math(final)
        return Extraction(final, "final statement", others or [final])
    if lenient and kept:  # not when the ending is a question, a hedge, a negation or a supposition
        text = kept if scope == text else text
        last = _last_math_or_number(text)
        clause = re.split(r"[.;:,!?\n]\s", text.rstrip(" .\n"))[-1]
        truncated = bool(_BOX_RE.search(text)) and not boxes
        guess = _UNSURE_RE.search(clause) or _DOUBT_RE.search(clause) or _NEGATION_RE.search(clause)
        if last is not None and not guess and not truncated:  # "it might be 7" is a guess, "18 is wrong" a doubt
            return Extraction(last, "last number", [last])
    return Extraction(None, "none", [])


_MARKED = ("boxed", "minerva", "####", "answer is", "<answer>")
_TENTATIVE_RE = re.compile(r"\b(?:if|whether|suppose|assum\w*|check\w*|test\w*|try\w*|guess\w*|maybe|perhaps|might|could|would)\b", re.I)


def _cues(text: str, start: int = 0) -> list[re.Match]:
    """Retraction cues from `start` on, in order; a weak cue inside a strong one ("Wait, no")
    is the strong one."""
    strong = list(_RETRACT_STRONG_RE.finditer(text, max(0, start)))
    covered = {i for c in strong for i in range(c.start(), c.end())}
    weak = [w for w in _RETRACT_WEAK_RE.finditer(text, max(0, start))
            if not covered.intersection(range(w.start(), w.end()))]
    return sorted(strong + weak, key=lambda c: c.start())


_CUE_WORDS = ("wait", "actually", "hmm", "oops", "hold on", "let me", "scratch", "correct", "second thought",
              "kidding", "wrong", "mistake", "error", "misread", "miscalc", "miscount", "miscomput", "mis-comput",
              "forgot", "right", "i was", "slip")
_NO_RE = re.compile(r"(?:^|[.!?\n])\s*no\s*[,.!:;\u2014]")


def _may_retract(text: str) -> bool:
    """A cheap test before the retraction regexes: could `text` hold a cue at all?"""
    low = text.lower()
    return any(w in low for w in _CUE_WORDS) or ("no" in low and bool(_NO_RE.search(low)))


def _first_commitment(scope: str) -> int | None:
    """Where the first marked answer (box, answer line, ####, "the answer is") starts."""
    starts = [b[0] for b in _boxes(scope)]
    for rx in (_MINERVA_RE, _HASHES_RE, _MARKER_RE):
        m = rx.search(scope)
        if m:
            starts.append(m.start())
    return min(starts) if starts else None


def _ends_with(scope: str, first: int, lenient: bool, text: str, before, depth: int = 0) -> Extraction:
    """The answer `scope` ENDS with when a stated answer (starting at `first`) is taken back.

    Walks the retraction cues after `first` from the last: the text from a cue on is read
    on its own. A new answer there replaces the earlier one when the cue says the earlier one
    was wrong ("Actually no", "I made an error", "that is wrong") or the new one is marked;
    a strong cue with no new answer leaves none; a second look ("Wait, let me check") that
    states nothing new, or the same value, leaves the earlier answer standing; a second look
    that ends on another unmarked value, or on a question or a guess, is hedging.
    `before(end)` reads ``scope[:end]`` without the cues from `end` on."""
    end = len(scope)
    for cue in reversed(_cues(scope, first + 1)):
        if cue.start() <= first or cue.start() >= end:
            if cue.start() <= first:
                break
            continue
        rest = scope[cue.start():end]
        strong = cue.re is _RETRACT_STRONG_RE
        new = _rules(rest, lenient, False, text)
        if new.answer is not None and new.method != "last number":
            if strong or new.method in _MARKED:
                return Extraction(new.answer, f"{new.method} after a retraction", new.candidates)
            prior = before(cue.start()) if depth < 20 else Extraction(None, "none", [])
            if prior.answer is not None and _same_value(prior.answer, new.answer):
                return prior  # a second look that confirms the answer
            return Extraction(new.answer, new.method, prior.candidates + new.candidates)  # hedging
        if strong:
            return Extraction(None, "retracted", [])
        if _numbers(rest) and ("?" in rest or _UNSURE_RE.search(rest)):
            return Extraction(None, "retracted", [])  # "\\boxed{18}. Hmm, maybe 20?": doubt, no answer
        end = cue.start()  # a second look that states nothing new: what came before stands
    return before(end)


def _extract_scope(scope: str, lenient: bool, block: bool, text: str, depth: int = 0) -> Extraction:
    """The rules on one scope, and the answer it ENDS with when a stated answer is taken back
    ("The answer is 42. Actually no, it's 43.")."""
    if not _may_retract(scope):
        return _rules(scope, lenient, block, text)  # the common case, kept cheap
    first = 0 if block else _first_commitment(scope)
    if first is None:
        return _rules(scope, lenient, block, text)
    def before(end: int) -> Extraction:
        if end == len(scope):
            return _rules(scope, lenient, block, text)
        return _extract_scope(scope[:end], lenient, block, text, depth + 1)
    return _ends_with(scope, first, lenient, text, before, depth)


# -------------------------------------------------------------------- the front door
def extract_answer(text: str, lenient: bool = False) -> Extraction:
    """The final answer a completion commits to (rules and their order: the module doc)."""
    text = cut_continuation(text)
    text = _CODE_FENCE_RE.sub("\n", text)  # a program is not the reply: its comments state nothing
    tags = blocks(text, "answer")  # the output conventions' reading: the last block decides
    if not tags:
        return _extract_scope(text, lenient, False, text)
    ex = _extract_scope(tags[-1], lenient, True, text)
    lower = text.lower()
    close = lower.rfind("</answer>")
    if close > lower.rfind("<answer>"):
        # "<answer>16</answer> That is wrong, the answer is \\boxed{17}": a retraction after
        # the last block extends the scope to the text that follows it.
        after = text[close + len("</answer>"):]
        return _ends_with(after, -1, lenient, text, lambda end: ex)
    return ex


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
