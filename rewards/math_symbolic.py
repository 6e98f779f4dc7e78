"""The symbolic half of the math check: runs inside a worker process (`rewards.workers`).

Math-Verify does the parsing and comparison, called with its own timeouts switched off
(`parsing_timeout=None`, `timeout_seconds=None`): the caller enforces the time limit by
killing this process, which works from any thread, unlike Math-Verify's `signal.alarm`.

On top of Math-Verify's verdict sits one guard against its known false positives: when it
says "equal" for two closed-form numbers, they are evaluated to 40 significant digits and
must agree to a relative 1e-12. Math-Verify rounds numbers to 6 decimals, so it calls
``1/2^99`` and ``1/2^98`` equal (both round to 0). Answers written with a decimal point are
left to Math-Verify's rounding: there, 0.333333 for 1/3 is meant to pass.
"""

from __future__ import annotations

import logging
from functools import lru_cache

# Math-Verify warns once that its timeout is off; that is deliberate here.
logging.getLogger("math_verify").setLevel(logging.ERROR)

from math_verify import parse, verify  # noqa: E402  (after the logging tweak)
from math_verify.parser import ExprExtractionConfig, LatexExtractionConfig  # noqa: E402

_CONFIG = (LatexExtractionConfig(), ExprExtractionConfig())


@lru_cache(maxsize=4096)
def _parse(text: str):
    # Golds repeat across a GRPO group, so parsing them once pays.
    return parse(text, extraction_config=_CONFIG, parsing_timeout=None)


def _closed_form_disagrees(gold, pred) -> bool:
    """True when both are plain numbers whose high-precision values differ."""
    import sympy

    try:
        if not (isinstance(gold, sympy.Expr) and isinstance(pred, sympy.Expr)):
            return False
        if gold.free_symbols or pred.free_symbols or not (gold.is_number and pred.is_number):
            return False
        g = sympy.N(gold, 40)
        p = sympy.N(pred, 40)
        scale = max(abs(g), abs(p))
        if scale == 0:
            return False
        return bool(abs(g - p) > sympy.Float("1e-12", 40) * scale)
    except Exception:  # noqa: BLE001 - no guard verdict when evaluation itself fails
        return False


def check(item: dict) -> dict:
    """``{"gold", "pred"}`` (LaTeX answers) -> ``{"equal": bool | None, "how": str}``.

    ``equal`` is None when the gold cannot be parsed (the reward does not apply).
    """
    gold_text, pred_text = item["gold"], item["pred"]
    gold = _parse(f"\\boxed{{{gold_text}}}")
    if not gold:
        return {"equal": None, "how": "gold unparsable"}
    pred = _parse(f"\\boxed{{{pred_text}}}")
    if not pred:
        return {"equal": False, "how": "answer unparsable"}
    if not verify(gold, pred, timeout_seconds=None):
        return {"equal": False, "how": "symbolic: not equal"}
    if "." not in gold_text and "." not in pred_text and _closed_form_disagrees(gold[0], pred[0]):
        return {"equal": False, "how": "symbolic: equal only after rounding"}
    return {"equal": True, "how": "symbolic: equal"}


def clear_cache(_item=None) -> bool:
    """Forget parsed answers (benchmarks time cold parses)."""
    from math_verify.parser import parse_expr_cached, parse_latex_cached

    _parse.cache_clear()
    parse_latex_cached.cache_clear()
    parse_expr_cached.cache_clear()
    return True
