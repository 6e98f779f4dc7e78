"""The grounding reward: answers supported by (cited) retrieved contexts score high, others low, with reasons."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards.base import RewardError, get
from rewards.conventions import citations
from rewards.conventions import claim as answer_text
from rewards.grounding import score_grounding

CONTEXTS = [
    "The boundary layer separates from the wing when the adverse pressure gradient is too strong.",
    "Stall occurs at high angles of attack, when lift drops sharply.",
    "Cranfield is a collection of aeronautics abstracts.",
]


def test_registered_and_found_by_name():
    spec = get("grounding")
    assert spec.fields == ("contexts",)
    res = spec.fn(["<answer>Stall occurs at high angles of attack [2].</answer>"], [{"contexts": CONTEXTS}])
    assert res[0].score == 1.0
    assert "cited [2]" in res[0].reason


def test_verbatim_claim_in_the_cited_chunk_is_fully_supported():
    r = score_grounding("Lift drops sharply at high angles of attack [2].", CONTEXTS)
    assert r.score == 1.0
    assert r.details["citations"] == [2]


def test_citing_the_wrong_chunk_loses_support():
    right = score_grounding("The boundary layer separates under an adverse pressure gradient [1].", CONTEXTS)
    wrong = score_grounding("The boundary layer separates under an adverse pressure gradient [3].", CONTEXTS)
    assert right.score == 1.0
    assert wrong.score < 0.3
    assert "unsupported" in wrong.reason


def test_unsupported_answer_scores_low_and_says_which_words():
    r = score_grounding("<think>hmm</think><answer>Penguins migrate across Antarctica every winter.</answer>", CONTEXTS)
    assert r.score == 0.0
    assert "penguin" in r.reason


def test_nonexistent_citations_are_penalised():
    ok = score_grounding("Stall occurs at high angles of attack [2].", CONTEXTS)
    half = score_grounding("Stall occurs at high angles of attack [2][7].", CONTEXTS)
    only_bad = score_grounding("Stall occurs at high angles of attack [9].", CONTEXTS)
    assert ok.score == 1.0
    assert half.score == pytest.approx(0.5)
    assert only_bad.score == 0.0
    assert "non-existent [7]" in half.reason and "of 3 contexts" in half.reason


def test_partial_support_is_partial():
    # two sentences: one grounded in [2], one invented
    r = score_grounding("Stall occurs at high angles of attack [2]. Jet engines burn kerosene fuel [1].", CONTEXTS)
    assert 0.3 < r.score < 0.7


def test_uncited_answers_check_all_contexts_unless_citations_required():
    text = "Lift drops sharply at stall."
    assert score_grounding(text, CONTEXTS).score == 1.0
    required = score_grounding(text, CONTEXTS, require_citations=True)
    assert required.score == 0.0 and "citations required" in required.reason


def test_retrieved_information_blocks_do_not_support_themselves():
    text = "<search>penguins</search><information>Penguins migrate in winter.</information> Penguins migrate in winter."
    assert answer_text(text) == "Penguins migrate in winter."
    assert score_grounding(text, CONTEXTS).score == 0.0


def test_no_contexts_is_not_applicable_and_bad_rows_name_the_field():
    assert score_grounding("anything", []).score is None
    fn = get("grounding").fn
    with pytest.raises(RewardError, match="row 1: missing field 'contexts'"):
        fn(["a", "b"], [{"contexts": ["x"]}, {}])
    with pytest.raises(RewardError, match="must be a list"):
        fn(["a"], [{"contexts": "a single string"}])


def test_citation_parsing():
    assert citations("a [1][3] b [2, 4] c [x] [10]") == [1, 3, 2, 4, 10]


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=200), st.lists(st.text(max_size=80), min_size=1, max_size=5))
def test_score_is_in_unit_interval_with_a_reason(completion, contexts):
    r = score_grounding(completion, contexts)
    assert r.score is not None and 0.0 <= r.score <= 1.0
    assert r.reason


@settings(max_examples=40, deadline=None)
@given(st.lists(st.from_regex(r"[A-Za-z][a-z]{3,9}", fullmatch=True), min_size=3, max_size=12))
def test_copying_a_context_sentence_with_its_citation_scores_one(words):
    sentence = " ".join(words)
    contexts = ["Unrelated filler text about nothing.", sentence + "."]
    assert score_grounding(f"{sentence} [2].", contexts).score == 1.0
