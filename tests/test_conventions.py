"""The output conventions (rewards.conventions): one reading of a completion for the
training rewards and the evaluation metrics alike."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

import rewards
from rewards.conventions import (
    answer_block,
    blocks,
    citations,
    cited_passages,
    claim,
    information_block,
    information_passages,
    is_abstention,
    remove_citations,
    short_answer,
)
from tasks import rag_qa_metrics as M
from tasks.rag_qa import score_rag_qa


@pytest.mark.parametrize("text, expected", [
    ("[1]", [1]), ("[1][3]", [1, 3]), ("[1, 2]", [1, 2]), ("[1; 2]", [1, 2]), ("[1-3]", [1, 2, 3]),
    ("[2–4]", [2, 3, 4]), ("[ 1 , 3-4 ]", [1, 3, 4]), ("[1] and again [1]", [1, 1]), ("[x] [10]", [10]),
    ("[1-500]", [1, 500]),  # a range too wide to be one: its two ends
])
def test_citation_forms(text, expected):
    assert citations(text) == expected
    assert cited_passages(text) == list(dict.fromkeys(expected))


def test_blocks_are_case_insensitive_and_may_be_unclosed():
    assert answer_block("<ANSWER>42</Answer>") == "42"
    assert answer_block("<think>…</think><answer>17") == "17"  # cut at the token budget
    assert answer_block("<answer>1</answer> no wait <answer>2</answer>") == "2"  # the last answer counts
    assert answer_block("no block") is None
    assert blocks("<search>a</search><search>b</search>", "search") == ["a", "b"]
    with pytest.raises(ValueError, match="unknown block"):
        blocks("x", "answr")


def test_claim_and_short_answer_ignore_pasted_information():
    text = ("<search>who</search>\n<information>[1] It is unknown who built it.</information>\n"
            "Answer: Varno Keltis [1]")
    assert claim(text) == "Answer: Varno Keltis [1]"
    assert short_answer(text) == "Varno Keltis"
    assert not is_abstention(claim(text))  # "unknown" was in the search result, not in the answer


def test_information_block_round_trip():
    texts = ["First   passage\nwith lines.", "Second passage."]
    pasted = information_block(texts) + "<search>more</search>" + information_block(["Third."], start=3)
    assert information_passages(pasted) == ["First passage with lines.", "Second passage.", "Third."]
    assert information_passages(information_block([])) == []  # "No results." holds no passage


# ---- the property: reward and metric of the same rule give the same number --------------

_pieces = st.sampled_from([
    "Varno Keltis", "1845", "the Brehameth Conservatory", "The passages do not say.", "unknown", "I think",
    "[1]", "[2]", "[1, 2]", "[1; 3]", "[1-3]", "[2–3]", "[7]", "<answer>", "</answer>", "<ANSWER>", "<think>",
    "</think>", "<search>", "</search>", "\n<information>[1] Varno Keltis founded it in 1845.\n[2] Other.</information>\n",
    "Answer:", "Final answer:", "\n", " ", ".", "It was", "not stated",
])
completions = st.lists(_pieces, max_size=14).map("".join)
answer_lists = st.sampled_from([["Varno Keltis"], ["1845", "in 1845"], []])
CONTEXTS = ["Varno Keltis founded the Brehameth Conservatory in 1845.", "Other text.", "The conservatory is old."]


@given(completion=completions, answers=answer_lists)
@example(completion="<answer>1845 [1; 3]</answer>", answers=["1845"])
@example(completion="1845 [1-3]", answers=["1845"])
@example(completion="\n<information>[1] It is unknown.</information>\nVarno Keltis [1]", answers=["Varno Keltis"])
def test_training_reward_equals_evaluation_metric(completion, answers):
    row = {"answers": answers, "contexts": CONTEXTS, "retrieved": ["d1", "d2", "d3"], "gold_docs": ["d1"]}
    metric = score_rag_qa([completion], [row], "retrieve")[0]
    em = rewards.score("qa_em", [completion], [row]).results["qa_em"][0].score
    f1 = rewards.score("qa_f1", [completion], [row]).results["qa_f1"][0].score
    if answers:
        assert em == metric.extra["exact_match"] == metric.score
        assert f1 == pytest.approx(metric.extra["f1"])
    else:
        assert em == f1 == metric.extra["abstention"] == metric.score
    # One reading of citations: what the grounding reward checks is what citation precision counts.
    grounded = rewards.score("grounding", [completion], [row]).results["grounding"][0]
    cited_by_reward = list(dict.fromkeys(grounded.details.get("citations", [])))
    assert cited_by_reward == M.citation_scores(claim(completion), CONTEXTS)["cited"]


@given(completion=completions)
def test_removing_citations_leaves_none(completion):
    assert citations(remove_citations(completion)) == []
