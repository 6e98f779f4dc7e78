"""The `math` reward: is the final answer in a completion equal to the gold answer?

Three steps, cheapest first:

1. **Extract** the final answer: the last ``\\boxed{...}`` (nested braces), else GSM8K's
   ``#### N``, else "the answer is ...", else the text of ``<answer>...</answer>``, else (only
   in lenient mode) the last number. Several *different* boxed answers are hedging and
   score 0; an empty box scores 0.
2. **Normalize** both sides (``$``, ``\\text{}``, units, ``^\\circ``, ``%``, thousands
   separators, ``\\dfrac``, ``x = 5`` -> ``5``, multiple-choice letters) and decide on a
   **fast path** when possible: identical normalized strings, two exact numbers (compared
   as exact fractions, so ``1/2^99`` is not ``1/2^98``), or two plain words.
3. Everything else (radicals, pi, intervals, sets, tuples, matrices, equations) goes to the
   **symbolic path**: Math-Verify with the gold first, in killable worker processes with
   a caller-enforced time limit (`rewards.math_symbolic`, `rewards.workers`).

Scores are 1.0 / 0.0, or None when the gold itself cannot be read.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Sequence

from rewards.base import RewardResult, register


@dataclass
class MathConfig:
    """Options of the `math` reward (pass as keyword options)."""

    lenient: bool = False
    """Fall back to the last number in the text when no marked answer is found."""
    timeout: float = 5.0
    """Seconds allowed per symbolic comparison; over time scores 0 with reason "timeout"."""
    workers: int | None = None
    """Worker processes for the symbolic path (None: one per available core, at most 8)."""
    hedging_penalty: bool = True
    """Several different final answers (boxed twice, "3 or 4") score 0."""
    gold_field: str = "answer"
    """The row field holding the gold answer (a bare answer, a boxed solution, or GSM8K's ``#### N``)."""
    ignore_tags: tuple[str, ...] = ("information",)
    """Blocks the policy did not write -- retrieved passages pasted into search rollouts as
    ``<information>...</information>`` -- are cut before extraction: a passage's ``#### 42``
    or boxed answer is not the model's answer."""


# --------------------------------------------------------------------------- extraction
@dataclass
class Extraction:
    answer: str | None  # None: nothing found; "" an empty box / answer
    method: str  # "boxed", "####", "answer is", "<answer>", "last number", "none"
    candidates: list[str] = field(default_factory=list)  # every final answer seen (hedging)


_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*")
_ANSWER_TAG_RE = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_HASHES_RE = re.compile(r"####\s*([^\n]*)")
_ANSWER_IS_RE = re.compile(
    r"(?:final answer|the answer|answer)\s*(?:is|:|=)\s*:?\s*(.+?)(?:\n|$)", re.I
)
_NUMBER_RE = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?")


def _boxed_contents(text: str) -> list[str]:
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
            # `\boxed 5`: the next token
            tok = re.match(r"[^\s$]+", text[i:])
            if tok and m.group(0).endswith(" "):
                out.append(tok.group(0))
    return out


def extract_answer(text: str, lenient: bool = False) -> Extraction:
    """The final answer a completion commits to (see the module doc for the order)."""
    scope = text
    tags = _ANSWER_TAG_RE.findall(text)
    if tags:
        scope = tags[-1]
    boxes = _boxed_contents(scope)  # inside <answer> when there is one: boxes in the thinking do not count
    if boxes:
        return Extraction(boxes[-1].strip(), "boxed", [b.strip() for b in boxes])
    hashes = _HASHES_RE.findall(scope)
    if hashes:
        return Extraction(hashes[-1].strip(), "####", [h.strip() for h in hashes])
    said = _ANSWER_IS_RE.findall(scope)
    if said:
        ans = said[-1].strip()
        ans = re.sub(r"^\$+|\$+$", "", ans.rstrip(" .")).strip()
        return Extraction(ans, "answer is", [ans])
    if tags:
        ans = tags[-1].strip()
        return Extraction(ans, "<answer>", [ans])
    if lenient:
        nums = _NUMBER_RE.findall(text)
        if nums:
            return Extraction(nums[-1], "last number", [nums[-1]])
    return Extraction(None, "none", [])


def extract_gold(gold: Any) -> str:
    """The answer part of a gold field: GSM8K's ``#### N``, a boxed solution, or as is."""
    text = str(gold).strip()
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    boxes = _boxed_contents(text)
    if boxes:
        return boxes[-1].strip()
    return text


# ------------------------------------------------------------------------ normalization
_UNICODE = {
    "\u2212": "-", "\u2013": "-", "\u00b1": "\\pm ", "\u2213": "\\mp ", "\u00d7": "\\times ",
    "\u00f7": "\\div ", "\u03c0": "\\pi ", "\u221e": "\\infty ", "\u221a": "\\sqrt ",
    "\u00b0": "^\\circ", "\u2009": " ", "\u00a0": " ", "\u2264": "\\le ", "\u2265": "\\ge ",
}
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|operatorname)\s*\{([^{}]*)\}")
_SPACING_RE = re.compile(r"\\(?:left|right|displaystyle|[,!;:> ]|quad|qquad)|~")
_UNIT_WORDS = (
    "dollars?|cents?|units?|degrees?|cm|mm|km|m|meters?|inches|inch|feet|foot|ft|miles?|mph|"
    "hours?|minutes?|seconds?|days?|weeks?|months?|years?|pounds?|lbs?|kg|grams?|g|ounces?|oz|"
    "liters?|ml|gallons?|people|students?|sq|square|cubic|percent|points?|pages?|apples?|"
    "marbles?|cookies?|books?|pieces?|times|ways|boxes|bags|eggs|cups|items?"
)
_TRAILING_UNIT_RE = re.compile(
    rf"^(.*?\d)\s*(?:\\,)?(?:(?:{_UNIT_WORDS})(?:\^\{{?\d\}}?)?\.?\s*)+$", re.I
)


def clean_latex(s: str) -> str:
    """Light cleanup that keeps LaTeX meaning (what the symbolic path receives)."""
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    s = s.strip()
    # Strip math delimiters wrapped around the whole answer.
    for a, b in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(a) and s.endswith(b) and len(s) >= len(a) + len(b):
            s = s[len(a) : len(s) - len(b)].strip()
    boxed = _boxed_contents(s)
    if boxed and s.startswith(("\\boxed", "\\fbox")) and len(boxed) == 1 and s.endswith("}"):
        s = boxed[0].strip()  # a box around the whole answer
    s = re.sub(r"\\mathrm\{e\}|\\text\{e\}", "e", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d+)", r"\\sqrt{\1}", s)
    s = re.sub(r"([\^_])\{(\w)\}", r"\1\2", s)  # x^{2} -> x^2
    s = s.rstrip()
    while s.endswith((".", ",")) and not s.endswith("\\."):
        s = s[:-1].rstrip()
    return s


def normalize(s: str) -> str:
    """Canonical string form used by the fast path (spaces removed)."""
    s = clean_latex(s)
    s = re.sub(r"^\\text\{\s*(?:the )?(?:final )?answer\s*(?:is)?:?\s*\}", "", s, flags=re.I)
    for _ in range(3):
        s2 = _TEXT_CMD_RE.sub(r"\1", s)
        if s2 == s:
            break
        s = s2
    s = _SPACING_RE.sub(" ", s)
    s = re.sub(r"\^\s*\{?\\circ\}?|\\circ|\\degree", "", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = s.strip()
    # `x = 5`, `k=\frac12` -> the right-hand side (one simple variable on the left).
    m = re.fullmatch(r"[A-Za-z](?:_\{?\w+\}?)?\s*=\s*([^=]+)", s)
    if m:
        s = m.group(1).strip()
    m = _TRAILING_UNIT_RE.match(s)
    if m:
        s = m.group(1)
    s = re.sub(r"(?<=\d)\{,\}(?=\d{3})", ",", s)
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    if re.fullmatch(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?", s):
        s = s.replace(" ", "")  # 1 000 000
    # "4 4" is not 44: keep a mark between digits that only spaces separated.
    s = re.sub(r"(?<=\d)\s+(?=\d)", "~", s)
    s = re.sub(r"\s+", "", s)
    while s.endswith((".",)):
        s = s[:-1]
    # 5.0 -> 5, 0.50 -> 0.5 (a plain decimal only)
    if re.fullmatch(r"-?\d+\.\d*?0+", s):
        s = s.rstrip("0").rstrip(".")
    return s


_CHOICE_RE = re.compile(r"^\(?([A-Ea-e])\)?(?:[.:)]|\s|$)")


def _choice_letter(s: str) -> str | None:
    s = normalize(s)
    s = re.sub(r"^(?:option|choice)", "", s, flags=re.I)
    m = _CHOICE_RE.match(s)
    return m.group(1).upper() if m else None


# ---------------------------------------------------------------- exact number fast path
class _NotANumber(Exception):
    pass


_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|\\frac|\\cdot|\\times|\\div|[-+*/^(){}]")


def exact_number(s: str) -> Fraction | None:
    """Value of a normalized arithmetic expression of literals (``-\\frac{1}{2^{99}}``,
    ``3/4``, ``2.5``), exactly; None for anything else (symbols, radicals, sets, ...)."""
    if not s or len(s) > 200:
        return None
    toks = _TOKEN_RE.findall(s)
    if "".join(toks) != s:
        return None
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        pos += 1
        return toks[pos - 1]

    def expr() -> Fraction:
        v = term()
        while peek() in ("+", "-"):
            v = v + term() if take() == "+" else v - term()
        return v

    def term() -> Fraction:
        v = unary()
        while peek() in ("*", "/", "\\cdot", "\\times", "\\div"):
            op = take()
            r = unary()
            if op in ("/", "\\div"):
                if r == 0:
                    raise _NotANumber
                v = v / r
            else:
                v = v * r
        return v

    def unary() -> Fraction:
        if peek() == "-":
            take()
            return -unary()
        if peek() == "+":
            take()
            return unary()
        return power()

    def power() -> Fraction:
        base = atom()
        if peek() == "^":
            take()
            e = atom()
            if e.denominator != 1 or abs(e.numerator) > 4096 or (base == 0 and e < 0):
                raise _NotANumber
            return base ** int(e)
        return base

    def atom() -> Fraction:
        t = take() if peek() is not None else None
        if t is None:
            raise _NotANumber
        if t in ("(", "{"):
            v = expr()
            if peek() != (")" if t == "(" else "}"):
                raise _NotANumber
            take()
            return v
        if t == "\\frac":
            if peek() != "{":
                raise _NotANumber
            num = atom()
            if peek() != "{":
                raise _NotANumber
            den = atom()
            if den == 0:
                raise _NotANumber
            return num / den
        if t[0].isdigit():
            return Fraction(t)
        raise _NotANumber

    try:
        v = expr()
    except (_NotANumber, IndexError, ZeroDivisionError, OverflowError):
        return None
    if pos != len(toks):
        return None
    return v


def _balanced(s: str) -> bool:
    depth = 0
    for c in s:
        depth += c in "({"
        depth -= c in ")}"
        if depth < 0:
            return False
    return depth == 0


def _exact_number(s: str) -> Fraction | None:
    # Bracket matching is checked up front so the parser can stay tiny.
    if not _balanced(s):
        return None
    return exact_number(s)


def _split_top(s: str) -> list[str]:
    parts, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(c)
    parts.append("".join(cur))
    return parts


def _number_sequences(g: str, p: str) -> tuple[bool, str] | None:
    """Tuples/intervals ``(a,b]`` and bare lists ``a, b`` of exact numbers, decided exactly.

    Bracketed: same brackets and the same numbers in order (an interval's ends and a
    tuple's entries are ordered). A bare list is a set, as Math-Verify reads it. Anything
    with a non-number inside goes to the symbolic path.
    """
    def parse(s: str):
        if len(s) >= 2 and s[0] in "([" and s[-1] in ")]" and _balanced(s[1:-1]):
            inner, kind = s[1:-1], s[0] + s[-1]
        else:
            inner, kind = s, "set"
        parts = _split_top(inner)
        if len(parts) < 2:
            return None
        vals = [_exact_number(x) for x in parts]
        if any(v is None for v in vals) or any("." in x for x in parts):
            return None
        return kind, vals

    a, b = parse(g), parse(p)
    if a is None or b is None:
        return None
    if a[0] == "set" and b[0] == "set":
        return set(a[1]) == set(b[1]), "number sets"
    if a[0] == "set" or b[0] == "set":
        return None  # a set against a tuple/interval: Math-Verify's call
    return a == b, "number tuples"


def _has_variable(s: str) -> bool:
    """A letter other than e and i outside LaTeX commands (an unknown, not a constant)."""
    return bool(re.search(r"[a-df-hj-zA-Z]", re.sub(r"\\[A-Za-z]+", "", s)))


def _top_level_commas(s: str) -> int:
    depth = n = 0
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c == "," and depth <= 1:
            n += 1
    return n


_WORD_RE = re.compile(r"[A-Za-z][A-Za-z '\-]*")


def fast_compare(gold: str, pred: str) -> tuple[bool | None, str]:
    """Decide cheaply when possible: (True/False, how) or (None, "") for the symbolic path."""
    if pred == "":
        return False, "empty answer"
    g, p = normalize(gold), normalize(pred)
    if not p:
        return False, "empty answer"
    if g == p:
        return True, "exact match"
    # ± on one side only is a different answer (Math-Verify agrees once it sees LaTeX).
    if ("\\pm" in g) != ("\\pm" in p) and "," not in g + p:
        return False, "± on one side only"
    if len(g) == 1 and g.upper() in "ABCDE" and g.isalpha():
        letter = _choice_letter(pred)
        if letter is not None:
            return letter == g.upper(), f"choice {letter}"
    gv, pv = _exact_number(g), _exact_number(p)
    if gv is not None and pv is not None:
        if gv == pv:
            return True, "equal numbers"
        if "." not in g and "." not in p:
            return False, "different numbers"
        if abs(gv - pv) > Fraction(1, 1000) * max(1, abs(gv)):
            return False, "different numbers"
        return None, ""  # a close decimal approximation: leave it to Math-Verify's rounding
    seq = _number_sequences(g, p)
    if seq is not None:
        return seq
    # Cheap structural rejections, so wrong answers rarely need sympy.
    if (gv is not None and _has_variable(p)) or (pv is not None and _has_variable(g)):
        return False, "number vs expression with variables"
    if "\pm" not in g + p and "\mp" not in g + p and "\begin" not in g + p:
        if _top_level_commas(g) != _top_level_commas(p):
            return False, "different number of components"
    if _WORD_RE.fullmatch(g) and _WORD_RE.fullmatch(p) and (len(g) > 1 and len(p) > 1):
        return g.casefold() == p.casefold(), "words"
    return None, ""


# ------------------------------------------------------------------------ the reward
_CACHE: "OrderedDict[tuple[str, str], tuple[bool | None, str]]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 20000


def _cache_get(key):
    with _CACHE_LOCK:
        v = _CACHE.get(key)
        if v is not None:
            _CACHE.move_to_end(key)
        return v


def _cache_put(key, value):
    with _CACHE_LOCK:
        _CACHE[key] = value
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)


def _is_hedge(ex: Extraction, gold: str) -> bool:
    distinct = {normalize(c) for c in ex.candidates if c.strip()}
    if len(distinct) > 1:
        return True
    ans = ex.answer or ""
    if re.search(r"\bor\b", ans) and not re.search(r"\bor\b", gold):
        return True
    return False


def score_math(
    completions: Sequence[str],
    rows: Sequence[dict],
    *,
    lenient: bool = False,
    timeout: float | None = 5.0,
    workers: int | None = None,
    hedging_penalty: bool = True,
    gold_field: str = "answer",
    ignore_tags: Sequence[str] = ("information",),
) -> list[RewardResult]:
    results: list[RewardResult | None] = [None] * len(completions)
    if ignore_tags:
        names = "|".join(re.escape(t) for t in ignore_tags)
        block = re.compile(rf"<({names})>.*?(?:</\1>|\Z)", re.S | re.I)  # an unclosed block runs to the end
        completions = [block.sub(" ", t) if "<" in t else t for t in completions]
    symbolic: dict[tuple[str, str], list[int]] = {}
    extracted: list[tuple[str, str]] = [("", "")] * len(completions)
    for i, (text, row) in enumerate(zip(completions, rows)):
        gold = extract_gold(row.get(gold_field, ""))
        if not gold.strip():
            results[i] = RewardResult(None, "gold unparsable: empty gold answer")
            continue
        ex = extract_answer(text, lenient=lenient)
        details = {"extracted": ex.answer, "method": ex.method, "gold": gold}
        if ex.answer is None:
            results[i] = RewardResult(0.0, "no answer: nothing boxed or marked as the answer", details)
            continue
        if ex.answer.strip() == "":
            results[i] = RewardResult(0.0, "empty answer: empty box", details)
            continue
        if hedging_penalty and _is_hedge(ex, gold):
            shown = ", ".join(dict.fromkeys(c for c in ex.candidates))[:120]
            results[i] = RewardResult(0.0, f"hedging: several final answers ({shown})", details)
            continue
        key = (clean_latex(gold), clean_latex(ex.answer))
        extracted[i] = key
        hit = _cache_get(key)
        if hit is None:
            verdict, how = fast_compare(gold, ex.answer)
            if verdict is not None:
                hit = (verdict, how)
                _cache_put(key, hit)
        if hit is not None:
            results[i] = _verdict(hit[0], hit[1], ex.answer, gold, details)
        else:
            symbolic.setdefault(key, []).append(i)
    if symbolic:
        from rewards.workers import shared_pool

        keys = list(symbolic)
        outcomes = shared_pool(workers).run(
            "rewards.math_symbolic:check", [{"gold": g, "pred": p} for g, p in keys], timeout=timeout
        )
        for key, out in zip(keys, outcomes):
            if out.ok:
                verdict = (out.value["equal"], out.value["how"])
                _cache_put(key, verdict)
            elif out.error.startswith("timeout"):
                verdict = (False, f"timeout: symbolic check over {timeout:g}s")
            else:
                verdict = (False, f"error: symbolic check failed ({out.error})")
            for i in symbolic[key]:
                d = {"extracted": key[1], "method": "", "gold": key[0]}
                ex = extract_answer(completions[i], lenient=lenient)
                d["method"] = ex.method
                results[i] = _verdict(verdict[0], verdict[1], ex.answer or "", key[0], d)
    return results  # type: ignore[return-value]


def _verdict(equal: bool | None, how: str, answer: str, gold: str, details: dict) -> RewardResult:
    details = {**details, "how": how}
    a, g = answer[:60], gold[:60]
    if equal is None:
        return RewardResult(None, f"gold unparsable: {g!r}", details)
    if equal:
        return RewardResult(1.0, f"correct: {a!r} = {g!r} ({how})", details)
    if how.startswith(("timeout", "error", "empty", "hedging")):
        return RewardResult(0.0, how, details)
    return RewardResult(0.0, f"wrong: {a!r} != {g!r} ({how})", details)


@register("math", fields=("answer",), heavy=True, self_managed=True)
def math_reward(completions: Sequence[str], rows: Sequence[dict], **options: Any) -> list[RewardResult]:
    """1.0 when the final answer equals the gold `answer` (extracted, normalized, symbolic if needed)."""
    from dataclasses import asdict

    from rewards.base import RewardError

    try:
        config = MathConfig(**options)
    except TypeError:
        known = ", ".join(MathConfig.__dataclass_fields__)
        raise RewardError(f"math: unknown option in {sorted(options)}; known: {known}") from None
    return score_math(completions, rows, **asdict(config))


def verify(gold: Any, answer: str, *, timeout: float | None = 5.0, workers: int | None = None) -> bool:
    """Is `answer` (a bare answer or a whole completion) equal to `gold`? Gold goes first."""
    text = answer if extract_answer(answer).answer is not None else f"\\boxed{{{answer}}}"
    res = score_math([text], [{"answer": gold}], timeout=timeout, workers=workers)[0]
    return res.score == 1.0
