"""lm-evaluation-harness's GSM8K scoring, reimplemented so assay's numbers are comparable.

The reference is lm-eval's `lm_eval/tasks/gsm8k/gsm8k.yaml` (version 3.0) with its regex
filter (`lm_eval/filters/extraction.py`) and `exact_match` metric:

- strict-match: the first match of ``#### (\\-?[0-9\\.\\,]+)`` (its capture group), or
  ``[invalid]``.
- flexible-extract: ``(-?[$0-9.,]{2,})|(-?[0-9]+)`` with ``group_select: -1``: the LAST
  match of the whole pattern, of which the first non-empty alternative is taken.
- both are stripped, then compared with exact_match against the gold *solution text*
  after removing, from both sides and in this order, the regexes ``,`` ``\\$``
  ``(?s).*#### `` and ``\\.$``, and lower-casing (``ignore_case: true``;
  punctuation is kept).

So ``"$1,000."`` matches a gold ``#### 1000`` but ``"1000.00"`` does not: that is the
harness's behaviour and assay keeps it, next to its own math-verified `accuracy`.
"""

from __future__ import annotations

import re

STRICT_PATTERN = re.compile(r"#### (\-?[0-9\.\,]+)")
FLEXIBLE_PATTERN = re.compile(r"(-?[$0-9.,]{2,})|(-?[0-9]+)")
FALLBACK = "[invalid]"
IGNORE_REGEXES = (re.compile(","), re.compile(r"\$"), re.compile(r"(?s).*#### "), re.compile(r"\.$"))
# lm-eval's generation settings for the task: greedy, stop at these strings.


def _first_group(match) -> str:
    if isinstance(match, tuple):
        return [m for m in match if m][0]
    return match


def strict_extract(completion: str) -> str:
    """What lm-eval's strict-match filter keeps from a completion."""
    found = STRICT_PATTERN.findall(completion)
    return _first_group(found[0]).strip() if found else FALLBACK


def flexible_extract(completion: str) -> str:
    """What lm-eval's flexible-extract filter keeps from a completion."""
    found = FLEXIBLE_PATTERN.findall(completion)
    return _first_group(found[-1]).strip() if found else FALLBACK


def _clean(text: str) -> str:
    for rx in IGNORE_REGEXES:
        text = rx.sub("", text)
    return text.lower()


def exact_match(extracted: str, gold_solution: str) -> float:
    """lm-eval's exact_match with gsm8k.yaml's options; the gold is the full solution."""
    return 1.0 if _clean(extracted) == _clean(str(gold_solution)) else 0.0


def gold_number(gold_solution: str) -> str:
    """The final answer of a GSM8K solution ("... #### 1,000" -> "1000")."""
    text = str(gold_solution)  # a bare number is its own answer
    _, sep, tail = text.rpartition("####")
    return (tail if sep else text).strip().replace(",", "")
