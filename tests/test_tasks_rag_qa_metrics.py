"""RAG QA metrics (tasks/rag_qa_metrics.py): SQuAD v1.1 EM/F1 on hand-computed cases and
against the official evaluate-v1.1.py logic (restated below), citations, support,
abstention and recall@k."""

from __future__ import annotations

import collections
import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tasks import rag_qa_metrics as M
from tasks.rag_qa_metrics import (
    abstention_scores,
    answer_supported,
    citation_scores,
    cited_passages,
    exact_match,
    is_abstention,
    normalize_answer,
    recall_at_k,
    token_f1,
)

# (prediction, accepted answers, EM, F1), each worked out by hand from SQuAD v1.1's rules:
# lower-case -> drop punctuation -> drop a/an/the -> split on whitespace.
HAND_CASES = [
    ("The Cat!", ["cat"], 1.0, 1.0),                         # "the cat" -> "cat"
    ("Denver Broncos", ["Denver Broncos", "The Broncos"], 1.0, 1.0),
    ("Broncos won", ["The Denver Broncos"], 0.0, 0.5),       # 1 shared of 2 and 2: P=R=1/2
    ("the quick brown fox", ["quick fox jumps"], 0.0, 2 / 3),  # {quick, fox} shared: P=2/3, R=2/3
    ("cat cat dog", ["cat dog dog"], 0.0, 2 / 3),            # multiset overlap: 1 cat + 1 dog = 2 of 3
    ("Paris, France", ["Paris"], 0.0, 2 / 3),                # P=1/2, R=1 -> 2*(1/2)/(3/2) = 2/3
    ("U.S.", ["US"], 1.0, 1.0),                              # punctuation removed inside words
    ("An apple a day", ["apple   day"], 1.0, 1.0),           # articles and extra spaces go
    ("theater", ["the ater"], 0.0, 0.0),                     # "the" only as a whole word: "ater"
    ("1,843", ["1843"], 1.0, 1.0),                           # thousands separators are punctuation
    ("", ["Lima"], 0.0, 0.0),                                # empty prediction: F1 0
    ("", [""], 1.0, 0.0),                                    # v1.1: EM compares strings, F1 needs a shared token
    ("Lima", ["Peru", "lima."], 1.0, 1.0),                   # max over the accepted answers
    ("in 1901 in Prague", ["1901"], 0.0, 0.4),               # P=1/4, R=1 -> 0.5/1.25 = 0.4
    ("Lima", [], 0.0, 0.0),                                  # no accepted answers: 0 (abstention is scored apart)
]


@pytest.mark.parametrize("pred,golds,em,f1", HAND_CASES)
def test_squad_em_f1_hand_computed(pred, golds, em, f1):
    assert exact_match(pred, golds) == em
    assert token_f1(pred, golds) == pytest.approx(f1)


# The official SQuAD v1.1 evaluation logic (evaluate-v1.1.py), restated for the cross-check.
def _official_normalize(s):
    s = s.lower()
    s = "".join(ch for ch in s if ch not in set(string.punctuation))
    s = re.sub(r"\b(a|an|the)\b", " ", s)
    return " ".join(s.split())


def _official_f1(prediction, ground_truth):
    p, g = _official_normalize(prediction).split(), _official_normalize(ground_truth).split()
    num_same = sum((collections.Counter(p) & collections.Counter(g)).values())
    if num_same == 0:
        return 0
    precision, recall = num_same / len(p), num_same / len(g)
    return 2 * precision * recall / (precision + recall)


def _official_em(prediction, ground_truth):
    return _official_normalize(prediction) == _official_normalize(ground_truth)


_words = st.lists(st.sampled_from(["the", "a", "an", "The", "cat", "Cat.", "dog,", "1,843", "1843", "U.S.", "an-d",
                                   "théâtre", "  ", "!", "Lima", "lima"]), max_size=6).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(pred=_words, golds=st.lists(_words, min_size=1, max_size=3))
def test_em_f1_match_the_official_script(pred, golds):
    assert normalize_answer(pred) == _official_normalize(pred)
    assert exact_match(pred, golds) == float(max(_official_em(pred, g) for g in golds))
    assert token_f1(pred, golds) == pytest.approx(max(_official_f1(pred, g) for g in golds))


def test_cited_passages_forms():
    assert cited_passages("Lima [2]. Also Peru [1][2], see [3, 4] and [5-7].") == [2, 1, 3, 4, 5, 6, 7]
    assert cited_passages("no citations here, just [a] and [ ]") == []


PASSAGES = [
    {"id": "d1", "text": "The Orvane Guild was founded by Varno Keltis."},
    {"id": "d2", "text": "Varno Keltis was born in Kubiar."},
    {"id": "d3", "text": "Kubiar is a town on the river Sorn."},        # contains the answer, not gold
    {"id": "d4", "text": "The Orvine Guild was founded by Varno Keltin."},  # a distractor
]


def test_citation_precision_and_recall():
    gold, answers = ["d1", "d2"], ["Kubiar"]
    s = citation_scores("Kubiar [1][2].", PASSAGES, gold, answers)
    assert s["precision"] == 1.0 and s["recall"] == pytest.approx(2 / 3)  # evidence: d1, d2 (gold), d3 (answer)
    s = citation_scores("Kubiar [2][4].", PASSAGES, gold, answers)
    assert s["precision"] == 0.5 and s["recall"] == pytest.approx(1 / 3)
    s = citation_scores("Kubiar [3] [9].", PASSAGES, gold, answers)   # [9] was never shown: a wrong citation
    assert s["precision"] == 0.5 and s["correct"] == [3]
    s = citation_scores("Kubiar.", PASSAGES, gold, answers)
    assert s["precision"] == 0.0 and s["recall"] == 0.0
    s = citation_scores("It is not stated [4].", PASSAGES[3:], [], [])
    assert s["precision"] == 0.0 and s["recall"] is None                  # no evidence shown
    # plain-string passages: correct only by containing the answer
    s = citation_scores("Kubiar [1]", ["Varno Keltis was born in Kubiar."], [], ["Kubiar"])
    assert s["precision"] == 1.0 and s["recall"] == 1.0


def test_answer_supported_by_retrieved_text():
    assert answer_supported("kubiar", PASSAGES)
    assert answer_supported("The Orvane Guild", PASSAGES)
    assert not answer_supported("Kubia", PASSAGES)          # token boundaries, not substrings
    assert not answer_supported("", PASSAGES)
    assert answer_supported("1,843", ["born in 1843."])


@pytest.mark.parametrize("text", [
    "The answer is not stated in the documents.",
    "The documents do not say where she was born.",
    "This cannot be determined from the provided passages.",
    "Unanswerable.",
    "I don't know.",
    "I don’t know",
    "There is no information about the Orvane Guild's founding year.",
    "The passages don't mention a birth year.",
    "The context does not specify the population.",
    "It is not mentioned.",
    "Not in the provided context.",
    "The corpus is silent on this.",
])
def test_abstention_phrasings(text):
    assert is_abstention(text)


@pytest.mark.parametrize("text", ["Kubiar", "She was born in 1843 [2].", "The Orvane Guild, founded in 1680.",
                                  "It is known for its slate roofs."])
def test_answers_are_not_abstentions(text):
    assert not is_abstention(text)


def test_abstention_accuracy_and_the_task_score():
    from tasks.rag_qa import score_rag_qa

    preds = ["Not stated in the documents.", "Kubiar", "I don't know", "1843"]
    answers = [[], [], ["Kubiar"], ["1843"]]
    s = abstention_scores(preds, answers)
    assert s == {"abstention_accuracy": 0.5, "false_abstention_rate": 0.5, "n_unanswerable": 2, "n_answerable": 2}
    # the task's score: EM on answerable questions, abstaining on unanswerable ones
    assert [s.score for s in score_rag_qa(preds, [{"answers": a} for a in answers], "closed_book")] == [1.0, 0.0, 0.0, 1.0]
    assert abstention_scores(["x"], [["x"]])["abstention_accuracy"] is None


def test_recall_at_k():
    assert recall_at_k(["d3", "d1", "d9"], ["d1", "d2"], 2) == 0.5
    assert M.hit_at_k(["d3", "d1", "d9"], ["d1", "d2"], 2) == 1.0  # any gold doc: the other name, the other number
    assert M.hit_at_k(["d3"], ["d1"], 1) == 0.0 and M.hit_at_k(["d3"], [], 1) is None
    assert recall_at_k(["d3", "d1", "d2"], ["d1", "d2"], 3) == 1.0
    assert recall_at_k(["d3"], [], 10) is None
    with pytest.raises(ValueError):
        recall_at_k([], ["d1"], 0)


def test_contains_answer_is_flashrags_lenient_accuracy():
    from tasks.rag_qa_metrics import contains_answer

    assert contains_answer("The Brehameth Conservatory was founded in 1736.", ["1736"]) == 1.0
    assert contains_answer("Founded in 17360.", ["1736"]) == 0.0  # token boundaries
    assert contains_answer("See [1].", ["1"]) == 0.0  # a citation marker is not the answer
    assert contains_answer("It is The Grojam Press", ["Grojam Press"]) == 1.0  # SQuAD normalisation
    assert contains_answer("anything", []) == 0.0
