"""The math reward: extraction, normalization, the labeled equivalence set, hacking guards,
caller-enforced timeouts, threads."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.math import (
    exact_number,
    extract_answer,
    fast_compare,
    normalize,
    score_math,
)
from rewards.workers import WorkerPool


def _score(completion, gold, **kw):
    return score_math([completion], [{"answer": gold}], **kw)[0]


@pytest.mark.parametrize(
    "text,answer,method",
    [
        ("so \\boxed{\\frac{1}{\\sqrt{2}}} done", "\\frac{1}{\\sqrt{2}}", "boxed"),
        ("first \\boxed{3} then \\boxed{{4}}", "{4}", "boxed"),
        ("9 * 2 = 18\n#### 18", "18", "####"),
        ("Thus the final answer is $\\frac{9}{4}$.", "\\frac{9}{4}", "answer is"),
        ("<think>hmm</think><answer> 42 </answer>", "42", "<answer>"),
        ("<think>\\boxed{1}</think><answer>\\boxed{2}</answer>", "2", "boxed"),
        ("<think>\\boxed{1}</think><answer>2</answer>", "2", "<answer>"),
        ("\\boxed{}", "", "boxed"),
        ("no marked answer, maybe 7", None, "none"),
        ("truncated \\boxed{12", None, "none"),
    ],
)
def test_extraction(text, answer, method):
    ex = extract_answer(text)
    assert (ex.answer, ex.method) == (answer, method)


def test_lenient_mode_takes_the_last_number():
    assert extract_answer("maybe 7, no: 1,250", lenient=True).answer == "1,250"
    worked = "We add the parts first.\nThe shop's total comes to 1,250 after the discount"
    assert _score(worked, "1250", lenient=True).score == 1.0
    assert _score(worked, "1250").score == 1.0  # issue 21: an unmarked final statement of a result commits
    unstated = "We add the parts first.\nThe shop sold 1,250 after the discount"
    assert _score(unstated, "1250", lenient=True).score == 1.0
    assert _score(unstated, "1250").score == 0.0  # a number that states no result and no work: nothing committed
    assert _score("it is 1,250", "1250").score == 1.0  # one short line is its own answer


@pytest.mark.parametrize(
    "raw,norm",
    [
        ("$1,234$", "1234"), ("\\$20.00", "20"), ("12\\text{ cm}", "12"), ("90^\\circ", "90"), ("25\\%", "25"),
        ("x = \\dfrac{1}{2}", "\\frac{1}{2}"), ("\\tfrac12", "\\frac{1}{2}"), ("4.", "4"), ("1{,}000", "1000"),
        ("\\left( 3, \\frac{\\pi}{2} \\right)", "(3,\\frac{\\pi}{2})"), ("4 4", "4~4"),
    ],
)
def test_normalization(raw, norm):
    assert normalize(raw) == norm


def test_labeled_equivalence_set(repo_root):
    rows = [json.loads(line) for line in open(repo_root / "data/fixtures/math_equivalence.jsonl")]
    assert len(rows) >= 200
    assert sum(r["equivalent"] for r in rows) >= 80 and sum(not r["equivalent"] for r in rows) >= 80
    res = score_math([r["completion"] for r in rows], [{"answer": r["gold"]} for r in rows])
    wrong = [(r["id"], r["gold"], r["completion"], x.reason) for r, x in zip(rows, res) if (x.score == 1.0) != r["equivalent"]]
    accuracy = 1 - len(wrong) / len(rows)
    # Math-Verify scores 0.950 on this set (bench/rewards_math.py); the known misses are
    # `\ln 2` vs `\log 2` and `\sin 30^\circ`.
    assert accuracy >= 0.985, wrong
    # Every known Math-Verify false positive in the set is beaten.
    fps = [r for r in rows if "math-verify FP" in r["category"]]
    assert len(fps) >= 8
    assert all(x.score == 0.0 for r, x in zip(rows, res) if "math-verify FP" in r["category"])


@pytest.mark.parametrize(
    "completion,gold",
    [("\\boxed{\\frac{1}{2^{98}}}", "\\frac{1}{2^{99}}"), ("\\boxed{1+\\frac{1}{e}}", "1-\\frac{1}{e}"),
     ("The answer is 1+1/e", "1-1/e"), ("\\boxed{2}", "\\pm 2"), ("The answer is 2.", "\\pm 2")],
)
def test_known_math_verify_false_positives_score_zero(completion, gold):
    assert _score(completion, gold).score == 0.0


def test_hacking_guards():
    assert _score("\\boxed{3} or \\boxed{4}", "3").reason.startswith("hedging")
    assert _score("\\boxed{3 \\text{ or } 4}", "3").score == 0.0
    assert _score("\\boxed{}", "3").reason.startswith("empty answer")
    assert _score("\\boxed{3}. Check: \\boxed{3}", "3").score == 1.0  # repeating one answer is fine
    assert _score("\\boxed{1, 2, 3, 4}", "3").score == 0.0  # listing candidates
    assert _score("\\boxed{3}", "").score is None  # no gold: reward does not apply


def test_symbolic_path_order_matters_and_reasons():
    res = score_math(
        ["\\boxed{(2,1)}", "\\boxed{\\sqrt{8}}", "\\boxed{[1,2]}", "\\boxed{y=3+2x}"],
        [{"answer": "(1,2)"}, {"answer": "2\\sqrt{2}"}, {"answer": "[1,2)"}, {"answer": "y=2x+3"}],
    )
    assert [r.score for r in res] == [0.0, 1.0, 0.0, 1.0]
    assert "symbolic" in res[1].reason and res[1].details["extracted"] == "\\sqrt{8}"


@settings(max_examples=150, deadline=None)
@given(st.integers(-10**6, 10**6), st.integers(1, 10**4), st.integers(1, 50))
def test_fast_path_fractions_are_exact(p, q, k):
    frac = Fraction(p, q)
    assert exact_number(normalize(f"\\frac{{{p}}}{{{q}}}")) == frac
    assert fast_compare(f"\\frac{{{p}}}{{{q}}}", f"{p * k}/{q * k}") == (True, "equal numbers")
    assert fast_compare(f"\\frac{{{p}}}{{{q}}}", f"\\frac{{{p + 1}}}{{{q}}}")[0] is False


@settings(max_examples=100, deadline=None)
@given(st.integers(-10**9, 10**9), st.integers(-10**9, 10**9))
def test_fast_path_integers(a, b):
    assert fast_compare(str(a), f"{a:,}")[0] is True
    assert fast_compare(str(a), str(b))[0] is (a == b)


def test_works_from_a_thread_without_signals():
    out = {}

    def work():
        out["res"] = score_math(["\\boxed{\\frac{\\sqrt{3}}{3}}", "\\boxed{2}"], [{"answer": "\\frac{1}{\\sqrt{3}}"}, {"answer": "3"}])

    t = threading.Thread(target=work)
    t.start()
    t.join(120)
    assert [r.score for r in out["res"]] == [1.0, 0.0]


def test_caller_enforced_timeout_kills_and_recovers():
    pool = WorkerPool(1)
    try:
        assert pool.run("builtins:str", [None])[0].value == "None"  # warm: no start-up grace left
        t = time.monotonic()
        out = pool.run("time:sleep", [30, 0.01, 0.01], timeout=0.5)
        assert time.monotonic() - t < 10
        assert not out[0].ok and out[0].error.startswith("timeout")
        assert out[1].ok and out[2].ok  # requeued on a fresh worker
        died = pool.run("os:_exit", [3])[0]
        assert not died.ok and "worker died" in died.error
        assert pool.run("builtins:len", [[1, 2]])[0].value == 2
        assert pool.restarts == 2
    finally:
        pool.close()


def test_import_is_light():
    code = ("import sys, rewards; from rewards.math import score_math;"
            "r = score_math(['\\\\boxed{4}'], [{'answer': '4'}]);"
            "print(r[0].score, [m for m in ('torch', 'sympy', 'math_verify', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split(" ", 1)
    assert out[0] == "1.0" and out[1].strip() == "[]"


def test_retrieved_passages_are_not_the_models_answer():
    from rewards.math import score_math

    rows = [{"answer": "7"}] * 4
    completions = [
        # a retrieved GSM8K solution carries '#### 7'; the model itself answers 5
        "<search>janet eggs</search>\n<information>[1] ... so she makes #### 7\n</information>\nThe answer is 5",
        "<information>[1] ... #### 7</information>\nSo the answer is 7",
        "<information>[1] an unclosed block with \\boxed{7}",  # the policy wrote nothing of its own
        "<information>[1] ... 7 ...</information>\nno idea",
    ]
    assert [r.score for r in score_math(completions, rows)] == [0.0, 1.0, 0.0, 0.0]
    assert [r.score for r in score_math(completions, rows, lenient=True)] == [0.0, 1.0, 0.0, 0.0]
    # without the cut the passage's '#### 7' wins over the model's own "answer is 5"
    assert score_math(completions[:1], rows[:1], ignore_tags=())[0].score == 1.0


# Issue 13, item 5: a parser that reads only part of a deeply nested answer must not decide.
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st


def _nested_reciprocal(inner: str, depth: int) -> str:
    for _ in range(depth):
        inner = f"\\frac{{1}}{{{inner}}}"
    return inner


@settings(max_examples=25, deadline=None)
@given(depth=st.integers(1, 260), num=st.integers(1, 9), den=st.integers(2, 9))
def test_nesting_depth_never_turns_a_verdict_correct(depth, num, den):
    from fractions import Fraction

    inner = Fraction(num, den)
    value = inner if depth % 2 == 0 else 1 / inner
    pred = _nested_reciprocal(f"\\frac{{{num}}}{{{den}}}", depth)
    for gold in {inner, 1 / inner}:
        res = score_math([f"\\boxed{{{pred}}}"], [{"answer": f"{gold.numerator}/{gold.denominator}"}])[0]
        if res.score == 1.0:
            assert gold == value and depth <= 40, res.reason


def test_huge_numerals_are_compared_as_text_quickly():
    big = "9" * 200_000
    res = score_math([f"\\boxed{{{big}}}", f"\\boxed{{{big}8}}"], [{"answer": big}, {"answer": big}], timeout=5)
    assert [r.score for r in res] == [1.0, 0.0]
    assert "compared as text" in res[1].reason


def test_timeout_bounds_each_item_and_start_up_is_paid_once_per_worker():
    """Issue 13, item 6: every item that landed on a fresh worker used to get the 60 s
    start-up grace too (3 hanging rows at --timeout 1 took 183 s). Now start-up runs on
    its own budget, before any item's clock starts: the batch costs about rows x timeout
    plus one start-up per worker started, as a ratio of the measured start-up."""
    from rewards.workers import WorkerPool

    pool = WorkerPool(1)
    t0 = time.monotonic()
    pool.warm()  # one cold start, measured
    start_up = time.monotonic() - t0
    t0 = time.monotonic()
    outs = pool.run("time:sleep", [3600, 3600, 3600], timeout=1.0)
    elapsed = time.monotonic() - t0
    pool.close()
    assert [o.error for o in outs] == ["timeout after 1s"] * 3
    assert pool.restarts == 3
    # 3 items x 1 s, and a replacement start-up after each kill (3), with room for a slow VM.
    assert elapsed < 2 * (3 * 1.0 + 3 * start_up) + 2, (elapsed, start_up)


@pytest.mark.parametrize("gold,pred,expected", [
    ("3\\sqrt{13}", "4", False),  # different closed forms: rejected without sympy
    ("6 - 5i", "6+5i", False),
    ("-\\frac{\\pi}{6}", "-\\frac{\\pi}{6}", True),
    ("1\\frac{4}{5}", "1.8", True),  # a mixed number is never guessed at by the fast evaluator
    ("2\\sqrt{2}", "\\sqrt{8}", True),  # close values still go to the exact symbolic check
])
def test_closed_form_values_reject_cheaply_and_never_accept_alone(gold, pred, expected):
    res = score_math([f"\\boxed{{{pred}}}"], [{"answer": gold}])[0]
    assert (res.score == 1.0) is expected, res.reason
    if not expected and "i" not in gold:
        assert "different values" in res.reason


def test_an_expression_still_to_evaluate_is_not_the_number():
    """Found by GRPO on the calculator suite: the policy learned to echo "14 + 38", which
    sympy calls equal to 52. A number asked for needs a number; fractions and scientific
    notation are numbers."""
    from rewards.math import score_math

    rows = [{"answer": "52"}, {"answer": "-4"}, {"answer": "0.5"}, {"answer": "2000"}, {"answer": "52"}]
    outs = ["14 + 38", "8 - 12.", "The answer is $\\frac{1}{2}$.", "The answer is $2 \\times 10^3$.", "14 + 38 = 52"]
    got = score_math(outs, rows, lenient=True)
    assert [r.score for r in got] == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert got[0].reason.startswith("unevaluated")


def test_a_one_line_reply_offering_two_numbers_commits_to_neither():
    from rewards.math import parse, score_math, verify

    assert score_math(["It is either 41 or 42."], [{"answer": "42"}])[0].score == 0.0
    assert score_math(["It is 42."], [{"answer": "42"}])[0].score == 1.0
    assert verify("42", parse("so the answer is \\boxed{42}.")) and not verify("42", parse("It is either 41 or 42."))
    assert parse("so the answer is \\boxed{42}.").method == "boxed"
