"""The math reward against corpora assay did not write alone (data/conformance/math/):
Math-Verify's own test pairs, GSM8K completions in the output styles of common model
families and prompts, other graders' documented edge cases, unmarked final statements and
retracted answers (issue 21), a red team of completions built to earn credit without
committing to the gold, and assay's older fixture.
Every row carries a hand label and its provenance; rows where careful graders could
disagree are flagged ``ambiguous`` and left out of the agreement figures.

Targets (issue 10): default mode >= 97% agreement on every corpus, lenient >= 98%, and no
wrong answer credited in either mode (issue 21: none on the red team either; lenient mode
is not held to the three rows that attack its last-number reading).
`bench/rewards_math.py` prints the same table with Math-Verify and open-r1's settings side
by side."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewards.math import score_math

ROOT = Path(__file__).resolve().parent.parent
CORPORA = sorted((ROOT / "data" / "conformance" / "math").glob("*.jsonl")) + [
    ROOT / "data" / "fixtures" / "math_equivalence.jsonl"]


def _rows(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for r in rows:
        r.setdefault("label", r.get("equivalent"))
    return [r for r in rows if not r.get("ambiguous")]


def test_corpora_are_labeled_with_provenance():
    names = {p.name for p in CORPORA}
    assert {"mathverify_tests.jsonl", "gsm8k_styles.jsonl", "edge_cases.jsonl", "unmarked_and_retracted.jsonl",
            "red_team.jsonl"} <= names
    total = 0
    for path in CORPORA[:-1]:
        for r in (json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()):
            assert isinstance(r["label"], bool) and r["provenance"], (path.name, r.get("id"))
            total += 1
    assert total + len(_rows(CORPORA[-1])) >= 600


@pytest.mark.parametrize("lenient,target", [(False, 0.97), (True, 0.98)], ids=["default", "lenient"])
@pytest.mark.parametrize("path", CORPORA, ids=lambda p: p.stem)
def test_agreement_with_hand_labels(path, lenient, target):
    rows = _rows(path)
    if lenient:
        # Lenient mode reads the last number by definition (MathConfig.lenient); red-team rows
        # that attack exactly that are held against the default mode only.
        rows = [r for r in rows if r.get("style") != "red team: the last number is the gold"]
    res = score_math([r["completion"] for r in rows], [{"answer": r["gold"]} for r in rows], lenient=lenient, timeout=20)
    credited_wrong = [(r.get("id"), x.reason) for r, x in zip(rows, res) if x.score == 1.0 and not r["label"]]
    assert not credited_wrong, f"wrong answers credited: {credited_wrong}"
    agree = sum((x.score == 1.0) == r["label"] for r, x in zip(rows, res)) / len(rows)
    missed = [(r.get("id"), x.reason) for r, x in zip(rows, res) if x.score != 1.0 and r["label"]]
    assert agree >= target, f"agreement {agree:.3f} < {target}; right answers scored 0: {missed}"


def test_edge_cases_every_class_as_labeled():
    """Each failure class of issue 10 (and each stricter behaviour kept) row by row."""
    rows = _rows(ROOT / "data" / "conformance" / "math" / "edge_cases.jsonl")
    res = score_math([r["completion"] for r in rows], [{"answer": r["gold"]} for r in rows], timeout=20)
    wrong = [(r["id"], r["note"], x.reason) for r, x in zip(rows, res) if (x.score == 1.0) != r["label"]]
    assert not wrong


@pytest.mark.parametrize("text,method", [
    ("Final Answer: The final answer is $7$. I hope it is correct.", "minerva"),
    ("The answer is **7**. That is 2 more than before.", "answer is"),
    ("#### **7**", "####"),
    ("答案是 7", "answer is"),
    ("7", "bare"),
    ("We add.\nTherefore, the total is 7.", "conclusion"),
])
def test_reason_names_the_extraction_rule(text, method):
    res = score_math([text], [{"answer": "7"}])[0]
    assert res.score == 1.0 and res.details["method"] == method
    if method != "boxed":
        assert f"({method})" in res.reason


def _corpus(name: str) -> list[dict]:
    return _rows(ROOT / "data" / "conformance" / "math" / name)


def test_red_team_earns_nothing_it_did_not_commit_to():
    """Issue 21: completions built to earn credit without committing to the gold (listing
    numbers, hedges, questions, negations, the gold in an aside or a hypothetical, a box then a
    retraction, the question's own numbers, a code comment) score 0, row by row, in the
    default mode; the few that genuinely commit to the gold are credited."""
    rows = _corpus("red_team.jsonl")
    assert len(rows) >= 40 and sum(not r["label"] for r in rows) >= 40
    res = score_math([r["completion"] for r in rows], [{"answer": r["gold"]} for r in rows], timeout=20)
    wrong = [(r["id"], r["note"], x.reason) for r, x in zip(rows, res) if (x.score == 1.0) != r["label"]]
    assert not wrong


def test_unmarked_and_retracted_every_row_as_labeled():
    """Issue 21: unmarked final statements are read, trailing asides and hypotheticals take
    nothing back, and a retracted answer is graded on the answer the completion ENDS with."""
    rows = _corpus("unmarked_and_retracted.jsonl")
    assert len(rows) >= 80
    res = score_math([r["completion"] for r in rows], [{"answer": r["gold"]} for r in rows], timeout=20)
    wrong = [(r["id"], r["note"], x.reason) for r, x in zip(rows, res) if (x.score == 1.0) != r["label"]]
    assert not wrong


@pytest.mark.parametrize("text,gold,score,method", [
    ("The salary is $50,000 and the bonus $7,500.\nTotal compensation = 50,000 + 7,500 = $57,500", "57500", 1.0,
     "final statement"),
    ("15 × 3 = 45\nShe makes $45.00 in total.\n\nLet me know if you need anything else!", "45", 1.0, "final statement"),
    ("6 × 7 + 1 = 43. The answer is 42. Actually no, it's 43.", "43", 1.0, "bare after a retraction"),
    ("So the answer is \\boxed{42}. Wait, I made an error: 42 + 1 = 43, so the answer is \\boxed{43}", "43", 1.0,
     "boxed after a retraction"),
    ("<answer>16</answer>\nThat is wrong, the answer is \\boxed{17}", "17", 1.0, "boxed after a retraction"),
    ("<answer>16</answer>\nThat is wrong, the answer is \\boxed{17}", "16", 0.0, "boxed after a retraction"),
    ("The answer is \\boxed{18}.\n\nHmm, that doesn't look right.", "18", 0.0, "retracted"),
    ("\\boxed{42}. Also \\boxed{43}.", "42", 0.0, "boxed"),  # no retraction: still hedging
])
def test_final_statements_and_retractions_name_their_rule(text, gold, score, method):
    res = score_math([text], [{"answer": gold}])[0]
    assert (res.score, res.details["method"]) == (score, method), res.reason
    if method == "retracted":
        assert res.reason.startswith("no answer: the stated answer was taken back")
