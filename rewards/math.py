"""The `math` reward: is the final answer in a completion equal to the gold answer?

Three steps, cheapest first:

1. **Extract** the final answer (`rewards.math_extraction`): the last ``\\boxed{...}``
   (nested braces), else GSM8K's ``#### N``, else "the answer is ...", else the text of
   ``<answer>...</answer>``, else a bare answer, a concluding sentence or an unmarked final
   statement, else (only in lenient mode) the last number; an answer taken back ("Actually
   no, it's 43") is replaced by the one the completion ends with. Several *different* final
   answers without a retraction are hedging and score 0; an empty box scores 0.
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

import cmath
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, Sequence

from rewards.base import RewardResult, register


@dataclass
class MathConfig:
    """Options of the `math` reward (pass as keyword options)."""

    lenient: bool = False
    """Fall back to the last number in the text when no answer is found (not when the
    completion ends on a question, a hedge, a negation or a supposition)."""
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

    def __post_init__(self):
        from rewards.base import RewardError

        if self.timeout is not None and not (self.timeout > 0 and self.timeout < float("inf")):
            raise RewardError(f"math.timeout must be a number of seconds > 0 (or None for no limit), got {self.timeout!r}")
        if self.workers is not None and (not isinstance(self.workers, int) or self.workers < 1):
            raise RewardError(f"math.workers must be an integer >= 1 (or None: one per core), got {self.workers!r}")


# --------------------------------------------------------------------------- extraction
# Extraction lives in its own module (what the completion commits to); grading is here.
from rewards.math_extraction import (  # noqa: E402  # noqa: E402,F401
    Extraction,
    extract_answer,
    extract_gold,
    fullwidth_to_ascii,
)
from rewards.math_extraction import boxed_contents as _boxed_contents

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
    "liters?|ml|gallons?|people|students?|sq|square|cubic|percent|percentage|pct|points?|pages?|"
    "apples?|marbles?|cookies?|books?|pieces?|times|ways|boxes|bags|eggs|cups|items?"
)
_TRAILING_UNIT_RE = re.compile(
    rf"^(.*?\d)\s*(?:\\,)?(?:(?:{_UNIT_WORDS})(?:\^\{{?\d\}}?)?\.?\s*)+$", re.I
)
# Any one or two plain words after a number are a unit ("125 crayons", "12 pct", "3 hours
# ago" is reduced by extraction); words that join answers ("and", "or") are not units.
_TRAILING_WORDS_RE = re.compile(
    r"^(-?[\d.,/]*\d(?:\^\d)?)\s*(?!(?:and|or|to|and|x|i|e)\b)(?:[A-Za-z\u00b2\u00b3\u20ac\u00a3\u00a5]+\.?\s*){1,3}$",
    re.I,
)
_TRAILING_TEXT_RE = re.compile(
    r"^(.*[\d}])\s*\\(?:text|textnormal|textrm|mbox|mathrm|textbf|textit)\s*\{\s*(?!and\b|or\b)[A-Za-z .]+\}\s*\.?$"
)
_RELATION_WORDS = {"\\leqslant": "\\le ", "\\geqslant": "\\ge ", "\\leq": "\\le ", "\\geq": "\\ge ",
                   "\\lt": "<", "\\gt": ">", "<=": "\\le ", ">=": "\\ge ", "\\neq": "\\ne ", "!=": "\\ne "}


@lru_cache(maxsize=65536)
def clean_latex(s: str) -> str:
    """Light cleanup that keeps LaTeX meaning (what the symbolic path receives)."""
    s = fullwidth_to_ascii(s)  # ３６ -> 36
    s = re.sub(r"(?<!\\)\\\\(?=[A-Za-z])", r"\\", s)  # \\le written with a doubled backslash
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
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = re.sub(r"\\frac\s*(\d)\s*(\d)", r"\\frac{\1}{\2}", s)
    s = re.sub(r"\\frac\s*(\d)\s*\{", r"\\frac{\1}{", s)
    s = re.sub(r"\\frac\s*(\{[^{}]*\})\s*(\d)", r"\\frac\1{\2}", s)
    s = re.sub(r"\\sqrt\s*(\d+)", r"\\sqrt{\1}", s)
    s = re.sub(r"([\^_])\{(\w)\}", r"\1\2", s)  # x^{2} -> x^2
    # MATH's thousands separators: 10,\!000 and 14{,}916
    s = re.sub(r"(?<=\d)\s*(?:,\\!|\{\s*,\s*\}|,\\,)\s*(?=\d{3})", ",", s)
    for k, v in _RELATION_WORDS.items():
        s = s.replace(k, v)
    s = s.rstrip()
    while s.endswith((".", ",")) and not s.endswith("\\."):
        s = s[:-1].rstrip()
    return s


@lru_cache(maxsize=65536)
def normalize(s: str) -> str:
    """Canonical string form used by the fast path (spaces removed)."""
    s = clean_latex(s)
    s = re.sub(r"^\\text\{\s*(?:the )?(?:final )?answer\s*(?:is)?:?\s*\}", "", s, flags=re.I)
    m = _TRAILING_TEXT_RE.match(s)
    if m:
        s = m.group(1)  # \frac{1}{3}\text{ meters}
    for _ in range(3):
        s2 = _TEXT_CMD_RE.sub(r"\1", s)
        if s2 == s:
            break
        s = s2
    s = _SPACING_RE.sub(" ", s)
    s = re.sub(r"\^\s*\{?\\circ\}?|\\circ|\\degree", "", s)
    s = s.replace("\\%", "").replace("%", "").replace("\\$", "").replace("$", "")
    s = re.sub(r"[\u20ac\u00a3\u00a5]", "", s)  # other currency signs
    s = s.strip()
    s = _strip_name(s)
    m = _TRAILING_UNIT_RE.match(s) or _TRAILING_WORDS_RE.match(s)
    if m:
        s = m.group(1)
    words = _number_from_words(s)
    if words is not None:
        s = str(words)
    s = re.sub(r"(?<=\d)\{,\}(?=\d{3})", ",", s)
    if re.fullmatch(r"-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?", s):
        s = s.replace(",", "")
    if re.fullmatch(r"-?\d{1,3}(?: \d{3})+(?:\.\d+)?", s):
        s = s.replace(" ", "")  # 1 000 000
    # "4 4" is not 44: keep a mark between digits that only spaces separated.
    s = re.sub(r"(?<=\d)\s+(?=\d)", "~", s)
    s = re.sub(r"\s+", "", s)
    while s.endswith((".",)):
        s = s[:-1]
    s = re.sub(r"(?<![\d.])\.(?=\d)", "0.", s)  # .4 -> 0.4
    # 5.0 -> 5, 0.50 -> 0.5 (a plain decimal only)
    if re.fullmatch(r"-?\d+\.\d*?0+", s):
        s = s.rstrip("0").rstrip(".")
    return s


# A left-hand side that only names the answer: x, k_1, f(x), (p,q), |AB|, A:B, \frac{NO}{BO}.
_NAME_RE = re.compile(
    r"(?:[A-Za-z](?:_\{?\w+\}?)?(?:\([A-Za-z, ]*\))?|[A-Z]{2,3}|\([A-Za-z ,_{}]+\)|\|[A-Za-z]+\||"
    r"[A-Za-z](?:_\{?\w+\}?)?(?:\s*:\s*[A-Za-z](?:_\{?\w+\}?)?)+|\\frac\{[A-Za-z]+\}\{[A-Za-z]+\}|"
    r"\\[A-Za-z]+(?:_\{?\w+\}?)?)"
)


def _strip_name(s: str) -> str:
    """``(p,q)=(3,2)`` -> ``(3,2)``; ``x = 5+5+1 = 11`` -> ``11``; ``x \\in [a,b]`` -> ``[a,b]``;
    ``x \\approx 11`` -> ``11``. An equation whose left side is more than a name stays."""
    m = re.match(r"^\s*([A-Za-z](?:_\{?\w+\}?)?)\s*\\in\s*(.+)$", s)
    if m:
        return m.group(2).strip()
    m = re.match(r"^\s*([A-Za-z](?:_\{?\w+\}?)?)\s*\\approx\s*(.+)$", s)
    if m:
        return m.group(2).strip()
    if len(_split_top(s, ",")) > 1:
        return s  # a list: each part has its own name (answer_parts)
    parts = _split_top(s, "=")
    if len(parts) >= 2 and _NAME_RE.fullmatch(parts[0].strip()) and all(p.strip() for p in parts):
        s = parts[-1].strip()
    elif len(parts) > 2 and all(p.strip() for p in parts):
        s = parts[-1].strip()  # a chain of equal steps: its last value
    else:
        return s
    if "\\approx" in s:
        left, right = s.split("\\approx", 1)
        s = right.strip() if _NAME_RE.fullmatch(left.strip()) else left.strip()
    return s


_UNITS_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen".split())}
_TENS_WORDS = {w: 10 * (i + 2) for i, w in enumerate(
    "twenty thirty forty fifty sixty seventy eighty ninety".split())}
_SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9}


def _number_from_words(s: str) -> int | None:
    """"twenty-four" -> 24, "one hundred and five" -> 105; None for anything else."""
    words = re.split(r"[\s-]+", s.strip().lower().replace(" and ", " "))
    if not words or not all(w in _UNITS_WORDS or w in _TENS_WORDS or w in _SCALE_WORDS for w in words):
        return None
    total = current = 0
    for w in words:
        if w in _UNITS_WORDS:
            current += _UNITS_WORDS[w]
        elif w in _TENS_WORDS:
            current += _TENS_WORDS[w]
        elif w == "hundred":
            current = max(current, 1) * 100
        else:
            total += max(current, 1) * _SCALE_WORDS[w]
            current = 0
    return total + current


_CHOICE_RE = re.compile(r"^\(?([A-Ea-e])\)?(?:[.:)]|\s|$)")


def _choice_letter(s: str) -> str | None:
    s = normalize(s)
    s = re.sub(r"^(?:option|choice)", "", s, flags=re.I)
    m = _CHOICE_RE.match(s)
    return m.group(1).upper() if m else None


# ---------------------------------------------------------------- exact number fast path
class _NotANumber(Exception):
    pass


_TOKEN_RE = re.compile(r"\d+(?:\.\d+)?|\\frac|\\sqrt|\\pi|\\cdot|\\times|\\div|[-+*/^(){}\[\]]|i")
_STARTS_FACTOR = ("(", "{", "\\frac", "\\sqrt", "\\pi", "i")


def _evaluate(s: str, *, exact: bool) -> Any:
    r"""The value of an arithmetic expression of literals, by one small grammar:

        expr := term (('+'|'-') term)*        term := unary (op unary | power)*
        unary := ('-'|'+') unary | power      power := atom ('^' atom)?
        atom := number | (expr) | {expr} | \frac atom atom | \sqrt[n] atom | \pi | i

    `exact`: Fractions only -- no radicals, pi, i or implicit products, integer exponents
    (``1/2^99`` stays exactly itself, so it is not ``1/2^98``); otherwise complex floats,
    with implicit products (``3\sqrt{13}``, ``288\pi``). Raises `_NotANumber`."""
    toks = _TOKEN_RE.findall(s)
    if "".join(toks) != s:
        raise _NotANumber
    pos = 0

    def peek():
        return toks[pos] if pos < len(toks) else None

    def take():
        nonlocal pos
        if pos >= len(toks):
            raise _NotANumber
        pos += 1
        return toks[pos - 1]

    def expr():
        v = term()
        while peek() in ("+", "-"):
            v = v + term() if take() == "+" else v - term()
        return v

    def term():
        v = unary()
        while True:
            t = peek()
            if t in ("*", "/", "\\cdot", "\\times", "\\div"):
                take()
                r = unary()
                if t in ("/", "\\div"):
                    if r == 0:
                        raise _NotANumber
                    v = v / r
                else:
                    v = v * r
            elif not exact and t is not None and (t[0].isdigit() or t in _STARTS_FACTOR):
                v = v * power()  # implicit product
            else:
                return v

    def unary():
        if peek() in ("-", "+"):
            return -unary() if take() == "-" else unary()
        return power()

    def power():
        base = atom()
        if peek() != "^":
            return base
        take()
        e = unary() if peek() == "-" else atom()
        if exact:
            if e.denominator != 1 or abs(e.numerator) > 4096 or (base == 0 and e < 0):
                raise _NotANumber
            return base ** int(e)
        if abs(e) > 64:
            raise _NotANumber
        return base ** e

    def group(close):
        v = expr()
        if take() != close:
            raise _NotANumber
        return v

    def atom():
        t = take()
        if t == "(":
            return group(")")
        if t == "{":
            return group("}")
        if t == "\\frac":
            if exact and peek() != "{":
                raise _NotANumber
            num = atom()
            if exact and peek() != "{":
                raise _NotANumber
            den = atom()
            if den == 0:
                raise _NotANumber
            return num / den
        if t[0].isdigit():
            return Fraction(t) if exact else complex(float(t))
        if exact:
            raise _NotANumber  # radicals, pi, i: not exact rationals
        if t == "\\sqrt":
            n = group("]").real if peek() == "[" and take() else 2.0
            return atom() ** (1.0 / n)
        if t == "\\pi":
            return complex(cmath.pi)
        if t == "i":
            return 1j
        raise _NotANumber

    try:
        v = expr()
    except (IndexError, ZeroDivisionError, OverflowError, TypeError, ValueError):
        raise _NotANumber from None
    if pos != len(toks):
        raise _NotANumber
    return v


def exact_number(s: str) -> Fraction | None:
    """Value of a normalized arithmetic expression of literals (``-\\frac{1}{2^{99}}``,
    ``3/4``, ``2.5``), exactly; None for anything else (symbols, radicals, sets, ...)."""
    if not s or len(s) > 4000:
        return None
    try:
        return _evaluate(s, exact=True)
    except _NotANumber:
        return None


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


def _split_top(s: str, sep: str = ",") -> list[str]:
    parts, depth, cur = [], 0, []
    for c in s:
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
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


_JOINERS_RE = re.compile(
    r"\\q?quad|\\text\{\s*(?:and|or|,)\s*\}|\\(?:text|mbox)\{\s*for part \(\w\) and\s*\}|\s+(?:and|or)\s+|(?<=[)\]}])\s*(?:and|or)\s*(?=[(\[{\\])"
)
_INTERVAL_NAME = r"[A-Za-z](?:_\{?\w+\}?)?(?:\([A-Za-z]\))?"
_BOUND = r"[^<>=\\]*(?:\\(?:frac|sqrt|pi|infty|dfrac)[^<>=]*)?"


def _as_interval(s: str) -> str:
    r"""``-2 \le x \le 7`` -> ``[-2, 7]``, ``x > 5`` -> ``(5, \infty)``; anything else as is."""
    t = s.replace(" ", "")
    ops = {"<": ("(", ")"), "\\le": ("[", "]")}
    m = re.fullmatch(rf"({_BOUND})(<|\\le)({_INTERVAL_NAME})(<|\\le)({_BOUND})", t)
    if m and m.group(1) and m.group(5):
        return f"{ops[m.group(2)][0]}{m.group(1)},{m.group(5)}{ops[m.group(4)][1]}"
    m = re.fullmatch(rf"({_INTERVAL_NAME})(<|>|\\le|\\ge)({_BOUND})", t) or None
    if m and m.group(3) and not re.search(r"[A-Za-z]", re.sub(r"\\(?:frac|sqrt|pi|infty)", "", m.group(3))):
        op, v = m.group(2), m.group(3)
        return {"<": f"(-\\infty,{v})", "\\le": f"(-\\infty,{v}]", ">": f"({v},\\infty)", "\\ge": f"[{v},\\infty)"}[op]
    m = re.fullmatch(rf"({_BOUND})(<|>|\\le|\\ge)({_INTERVAL_NAME})", t)
    if m and m.group(1) and not re.search(r"[A-Za-z]", re.sub(r"\\(?:frac|sqrt|pi|infty)", "", m.group(1))):
        flipped = {"<": ">", ">": "<", "\\le": "\\ge", "\\ge": "\\le"}[m.group(2)]
        return _as_interval(f"{m.group(3)}{flipped}{m.group(1)}")
    return s


def answer_parts(answer: str) -> list[str]:
    r"""The parts of a multi-part answer, each without its name: ``1, 2``, ``6 and 8``,
    ``\boxed{1}\boxed{2}``, ``(11,7) or (7,11)``, ``\{-12, -11\}``, ``-12;-11``,
    ``p=5,q=2;p=7,q=2`` (-> ``(5,2)``, ``(7,2)``). A single answer is one part."""
    s = clean_latex(answer)
    if re.fullmatch(r"(?:\\?[$€£¥])?\s*-?[1-9]\d{0,2}(?:,\d{3})+(?:\.\d+)?\s*(?:[A-Za-z²³%€$]+\.?)?\s*\$?", s):
        return [s]  # $1,000.99 and 1,000,000 m² are one number
    s = re.sub(r"(?<!\\)\\(?:[!;: ]|,(?!\d))", " ", s)  # spacing commands (\, holds a comma)
    s = _JOINERS_RE.sub(",", s)
    s = re.sub(r"^\\left\s*", "", s)
    for a, b in (("\\{", "\\}"), ("\\left\\{", "\\right\\}")):
        if s.startswith(a) and s.endswith(b) and _balanced(s[len(a):-len(b)]):
            s = s[len(a):-len(b)]
    if s.startswith("{") and s.endswith("}") and _balanced(s[1:-1]) and "," in s:
        s = s[1:-1]  # ${1,3}$: LaTeX grouping around a list
    if ";" in s:
        s = re.sub(r"\(([^()]*)\)", lambda m: "(" + m.group(1).replace(";", ",") + ")", s)
    groups = _split_top(s, ";") if ";" in s else [s]
    parts: list[str] = []
    for group in groups:
        items = [x.strip() for x in _split_top(group, ",") if x.strip()]
        if len(groups) > 1 and len(items) > 1 and all(re.fullmatch(r"[A-Za-z](?:_\{?\w+\}?)?\s*=.+", x) for x in items):
            parts.append("(" + ",".join(x.split("=", 1)[1].strip() for x in items) + ")")
            continue
        parts.extend(items)
    parts = [_as_interval(_strip_name(x)) for x in parts]
    return [x for x in parts if x] or [s]


def _decimal_comma(g: str, p: str) -> bool | None:
    """``1000,99`` against ``1000.99`` (a decimal comma), either way round; None otherwise."""
    for a, b in ((g, p), (p, g)):
        if re.fullmatch(r"-?\d+\.\d+", a) and re.fullmatch(r"-?\d+,\d+", b):
            return Fraction(a) == Fraction(b.replace(",", "."))
    return None


def _expand_pm(parts: list[str], other: list[str]) -> list[str]:
    if len(parts) == 1 and len(other) == 2 and parts[0].replace(" ", "").startswith("\\pm"):
        v = parts[0].replace(" ", "")[3:]
        return [v, f"-{v}"]
    return parts


MAX_NESTING = 40
MAX_DIGITS = 1000


def _too_large(s: str) -> bool:
    depth = deepest = 0
    for c in s:
        if c in "{(":
            depth += 1
            deepest = max(deepest, depth)
        elif c in "})":
            depth -= 1
    return deepest > MAX_NESTING or bool(re.search(r"\d{%d}" % (MAX_DIGITS + 1), s))


def fast_compare(gold: str, pred: str) -> tuple[bool | None, str]:
    """Decide cheaply when possible: (True/False, how) or (None, "") for the symbolic path.

    Multi-part answers are compared as sets of parts (order and repeats do not matter,
    as for the solutions of an equation); one part goes to `_compare_one`."""
    if pred == "":
        return False, "empty answer"
    if _too_large(gold) or _too_large(pred):
        # Parsers answer on a fragment of such input (the innermost fraction of 201 nested
        # ones): only the whole text, normalized, can decide.
        same = normalize(gold) == normalize(pred)
        return same, "unparseable: nested too deep or a numeral too long; compared as text"
    g, p = normalize(gold), normalize(pred)
    if g == p and p:
        return True, "exact match"
    gv, pv = _exact_number(g), _exact_number(p)
    if gv is not None and pv is not None and "." not in g + p:
        return gv == pv, "equal numbers" if gv == pv else "different numbers"  # the common case, decided
    dec = _decimal_comma(g, p)
    if dec is not None:
        return dec, "decimal comma"
    gp, pp = answer_parts(gold), answer_parts(pred)
    gp, pp = _expand_pm(gp, pp), _expand_pm(pp, gp)
    if len(gp) == 1 and len(pp) == 1:
        return _compare_one(gp[0], pp[0])
    gp = list(dict.fromkeys(gp, None))
    pp = list(dict.fromkeys(pp, None))
    gset = list({normalize(x): x for x in gp}.values())
    pset = list({normalize(x): x for x in pp}.values())
    if len(gset) != len(pset):
        return False, f"different number of parts ({len(gset)} vs {len(pset)})"
    unsure = False
    free = list(pset)
    for g in gset:
        found = None
        for q in free:
            v, _ = _compare_one(g, q)
            if v:
                found = q
                break
            if v is None:
                unsure = True
        if found is None:
            if unsure:
                return None, ""
            return False, f"part {g!r} not among the answer's parts"
        free.remove(found)
    return True, f"same {len(gset)} parts"


def symbolic_forms(gold: str, pred: str) -> tuple[str, str]:
    """What the symbolic path compares: a set of parts for multi-part answers."""
    gp, pp = answer_parts(gold), answer_parts(pred)
    gp, pp = _expand_pm(gp, pp), _expand_pm(pp, gp)
    if len(gp) == 1 and len(pp) == 1:
        if len(_split_top(gp[0], "=")) > 1:
            return gp[0], clean_latex(pred)  # an equation is compared with the whole equation
        return gp[0], pp[0]
    return "\\{" + ", ".join(gp) + "\\}", "\\{" + ", ".join(pp) + "\\}"


def _compare_one(gold: str, pred: str) -> tuple[bool | None, str]:
    """One answer part against one: (True/False, how) or (None, "") for the symbolic path."""
    if pred == "":
        return False, "empty answer"
    g, p = normalize(gold), normalize(pred)
    if not p:
        return False, "empty answer"
    if g == p:
        return True, "exact match"
    dec = _decimal_comma(g, p)
    if dec is not None:
        return dec, "decimal comma"
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
    if "\\pm" not in g + p and "\\mp" not in g + p and "\\begin" not in g + p:
        if _top_level_commas(g) != _top_level_commas(p):
            return False, "different number of components"
    if _WORD_RE.fullmatch(g) and _WORD_RE.fullmatch(p) and (len(g) > 1 and len(p) > 1):
        return g.casefold() == p.casefold(), "words"
    # Closed forms (radicals, pi, complex numbers): clearly different values need no sympy;
    # close ones still go to the symbolic path, which decides exactly.
    gc, pc = closed_form_value(g), closed_form_value(p)
    if gc is not None and pc is not None and abs(gc - pc) > 1e-6 * max(1.0, abs(gc)):
        return False, "different values"
    return None, ""


def closed_form_value(s: str) -> complex | None:
    """The value of a normalized closed form of numbers, fractions, radicals, pi and i
    (``3\\sqrt{13}``, ``-\\frac{\\pi}{6}``, ``6-5i``), as a complex float; None for
    anything else (a variable, a base subscript, a set). Only used to reject."""
    if not s or len(s) > 300:
        return None
    s = s.replace("\\left", "").replace("\\right", "")
    if re.search(r"\d\\frac", s):
        return None  # 1\\frac{4}{5}: a mixed number or a product -- not ours to guess
    try:
        v = _evaluate(s, exact=False)
    except _NotANumber:
        return None
    return v if cmath.isfinite(v) else None


# ------------------------------------------------------------------------ the reward
_CACHE: "OrderedDict[tuple[str, str], tuple[bool | None, str]]" = OrderedDict()
_CACHE_LOCK = threading.Lock()
_CACHE_SIZE = 20000


def clear_caches() -> None:
    """Forget verdicts and normalized strings (benchmarks time cold passes)."""
    with _CACHE_LOCK:
        _CACHE.clear()
    clean_latex.cache_clear()
    normalize.cache_clear()


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


def _resolve_parts(ex: Extraction, gold: str) -> tuple[Extraction, str | None]:
    """Several different final answers are hedging -- unless the gold has that many parts
    (``\\boxed{1}`` and ``\\boxed{2}`` for the gold ``1, 2``): then they are one answer.
    Returns the extraction to grade and, when it is hedging, the reason."""
    if len(ex.candidates) <= 1 and " or " not in (ex.answer or "") and "\\text{or}" not in (ex.answer or ""):
        return ex, None  # one answer: nothing to resolve (the common case, kept cheap)
    distinct = list({normalize(c): c.strip() for c in ex.candidates if c.strip()}.values())
    gold_parts = len(answer_parts(gold))
    if len(distinct) > 1:
        if gold_parts == len(distinct):
            joined = ", ".join(distinct)
            return Extraction(joined, f"{ex.method} ({len(distinct)} parts)", [joined]), None
        shown = ", ".join(dict.fromkeys(c for c in ex.candidates))[:120]
        return ex, f"hedging: several final answers ({shown})"
    ans = ex.answer or ""
    if gold_parts == 1 and re.search(r"\bor\b", ans) and not re.search(r"\bor\b", gold):
        return ex, f"hedging: several final answers ({ans[:120]})"
    return ex, None


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
    methods: dict[int, tuple[str, str, str]] = {}
    for i, (text, row) in enumerate(zip(completions, rows)):
        gold = extract_gold(row.get(gold_field, ""))
        if not gold.strip():
            results[i] = RewardResult(None, "gold unparsable: empty gold answer")
            continue
        ex = extract_answer(text, lenient=lenient)
        details = {"extracted": ex.answer, "method": ex.method, "gold": gold}
        if ex.answer is None:
            why = ("the stated answer was taken back and no other given" if ex.method == "retracted"
                   else "nothing boxed or marked as the answer")
            results[i] = RewardResult(0.0, f"no answer: {why}", details)
            continue
        if ex.answer.strip() == "":
            results[i] = RewardResult(0.0, "empty answer: empty box", details)
            continue
        ex, hedge = _resolve_parts(ex, gold)
        details["extracted"], details["method"] = ex.answer, ex.method
        if hedge and hedging_penalty:
            results[i] = RewardResult(0.0, hedge, details)
            continue
        if unevaluated(gold, ex.answer):
            results[i] = RewardResult(0.0, f"unevaluated: {ex.answer[:60]!r} is arithmetic still to do, not the number "
                                           f"{gold[:60]!r}", details)
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
            methods[i] = (ex.answer, ex.method, gold)
    if symbolic:
        from rewards.workers import shared_pool

        keys = list(symbolic)
        jobs = []
        for g, p in keys:
            sg, sp = symbolic_forms(g, p)
            jobs.append({"gold": sg, "pred": sp})
        outcomes = shared_pool(workers).run("rewards.math_symbolic:check", jobs, timeout=timeout)
        for key, out in zip(keys, outcomes):
            if out.ok:
                verdict = (out.value["equal"], out.value["how"])
                _cache_put(key, verdict)
            elif out.error.startswith("timeout"):
                verdict = (False, f"timeout: symbolic check over {timeout:g}s")
            else:
                verdict = (False, f"error: symbolic check failed ({out.error})")
            for i in symbolic[key]:
                answer, method, gold = methods[i]
                d = {"extracted": answer, "method": method, "gold": gold}
                results[i] = _verdict(verdict[0], verdict[1], answer, gold, d)  # worded as the fast path words it
    return results  # type: ignore[return-value]


_PLAIN_NUMBER_RE = re.compile(r"^\$?-?\d[\d,]*(?:\.\d+)?%?$")
_OPERATION_RE = re.compile(r"\d\s*(?:[-+*×÷·]|\\cdot|\\times|\\div)\s*\(?-?\d")
_SCIENTIFIC_RE = re.compile(r"(?:\\times|\\cdot|[×*·])\s*10\s*\^")


def unevaluated(gold: str, answer: str) -> bool:
    """A number was asked for and the answer is arithmetic still to do ("14 + 38" for 52):
    no grader credits a restated question, though sympy would call the two equal -- and
    under RL a policy that echoes the expression would be paid for it. Fractions (1/2,
    \\frac) and scientific notation (2 \\times 10^3) are numbers, not operations."""
    if not _PLAIN_NUMBER_RE.match(gold.strip().replace(" ", "")):
        return False
    text = answer.replace("\\!", "").rsplit("=", 1)[-1]  # "14 + 38 = 52" states its value
    return bool(_OPERATION_RE.search(text)) and not _SCIENTIFIC_RE.search(text)


def _verdict(equal: bool | None, how: str, answer: str, gold: str, details: dict) -> RewardResult:
    details = {**details, "how": how}
    a, g = answer[:60], gold[:60]
    if equal is None:
        return RewardResult(None, f"gold unparsable: {g!r}", details)
    rule = details.get("method") or ""
    shown = f"{a!r} ({rule})" if rule and rule != "boxed" else repr(a)
    if equal:
        return RewardResult(1.0, f"correct: {shown} = {g!r} ({how})", details)
    if how.startswith(("timeout", "error", "empty", "hedging")):
        return RewardResult(0.0, how, details)
    return RewardResult(0.0, f"wrong: {shown} != {g!r} ({how})", details)


@register("math", fields=("answer",), heavy=True, self_managed=True, pool=True)
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


def parse(text: str, *, lenient: bool = False) -> Extraction:
    """The answer a completion commits to, with the rule that found it (`answer`, `method`,
    and every final answer seen in `candidates`): the extraction half of the front door,
    as Math-Verify's `parse` is; `verify(gold, parse(text))` grades it."""
    return extract_answer(text, lenient=lenient)


def verify(gold: Any, answer: str | Extraction, *, timeout: float | None = 5.0, workers: int | None = None) -> bool:
    """Is `answer` -- a bare answer, a whole completion, or what `parse` found -- equal to
    `gold`? Gold goes first."""
    if isinstance(answer, Extraction):
        if not answer.answer or not answer.answer.strip():
            return False  # nothing committed to
        resolved, hedge = _resolve_parts(answer, extract_gold(gold))  # the reward's own reading of several answers
        if hedge:
            return False
        answer = resolved.answer
    text = answer if extract_answer(answer).answer is not None else f"\\boxed{{{answer}}}"
    res = score_math([text], [{"answer": gold}], timeout=timeout, workers=workers)[0]
    return res.score == 1.0
