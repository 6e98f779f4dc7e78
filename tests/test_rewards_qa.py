"""qa_em / qa_f1: SQuAD EM and F1 against `answers`, abstention on unanswerable questions."""

from __future__ import annotations

import pytest

import rewards
from rewards.base import RewardError
from rewards.conventions import is_abstention, short_answer
from rewards.qa import exact_match, normalize_answer, token_f1


def test_squad_normalisation_em_and_f1():
    assert normalize_answer("The  Orvane Guild!") == "orvane guild"
    assert exact_match("the Orvane guild", ["Orvane Guild"]) == 1.0
    assert exact_match("Orvane", ["Orvane Guild"]) == 0.0
    assert token_f1("Orvane", ["Orvane Guild"]) == pytest.approx(2 / 3)
    assert token_f1("", ["x"]) == 0.0 and token_f1("x", []) == 0.0


def test_short_answer_drops_citations_tags_and_information():
    assert short_answer("Varno Keltis [2]") == "Varno Keltis"
    assert short_answer("Answer: 1696 [1][3]\nBecause ...") == "1696"
    assert short_answer("<search>q</search>\n<information>[1] 1700 is here</information>\n<answer>1696 [1]</answer>") == "1696"
    assert short_answer("<search>q</search>\n<information>[1] x</information>\nKestur [1]") == "Kestur"


def test_qa_rewards_score_answers_and_abstentions():
    rows = [{"answers": ["Varno Keltis"]}, {"answers": ["2,100", "2100"]}, {"answers": []}, {"answers": []},
            {"answers": ["1696"]}]
    completions = ["Varno Keltis [2]", "2100 people [1]", "The passages do not say.", "1696 [1]",
                   "The passages do not say."]
    em = rewards.score("qa_em", completions, rows).results["qa_em"]
    assert [r.score for r in em] == [1.0, 0.0, 1.0, 0.0, 0.0]
    f1 = rewards.score("qa_f1", completions, rows).results["qa_f1"]
    assert f1[1].score == pytest.approx(2 / 3) and f1[2].score == 1.0 and f1[4].score == 0.0
    assert is_abstention("The passages do not say.") and not is_abstention("Varno Keltis [2]")


def test_a_string_answer_is_one_answer_and_a_missing_field_is_named():
    res = rewards.score("qa_em", ["Kestur"], [{"answers": "Kestur"}]).results["qa_em"]
    assert res[0].score == 1.0
    with pytest.raises(RewardError, match="answers"):
        rewards.get("qa_em").fn(["x"], [{"answer": "x"}])


def test_metrics_and_rewards_share_one_definition():
    from tasks import rag_qa_metrics

    assert rag_qa_metrics.exact_match is exact_match and rag_qa_metrics.token_f1 is token_f1
    assert rag_qa_metrics.is_abstention is is_abstention
