"""Grounded prompts: top-k chunks from a real assay index, numbered, with contexts and exact citations."""

from __future__ import annotations

import pytest

from rewards.base import get
from train.grounding import DEFAULT_TEMPLATE, GroundingError, build_grounded_prompts

DOCS = {
    "stall": "Stall. A wing stalls when the angle of attack exceeds the critical angle and the airflow separates "
             "from the upper surface, so lift drops sharply.",
    "penguin": "Penguins. Penguins are flightless seabirds of the southern hemisphere; their wings became flippers.",
    "turbofan": "Turbofans. A turbofan engine passes most of its air around the core through a large fan: the bypass.",
}


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory):
    from rag.documents import Document
    from rag.index import Index

    directory = tmp_path_factory.mktemp("idx") / "aero"
    Index.build([Document(i, t, "test") for i, t in DOCS.items()], directory, progress=False)
    return str(directory)


def test_string_chat_and_question_rows(index_dir):
    rows = [
        {"prompt": "Why does a wing stall?", "answer": "separation"},
        {"prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is a turbofan bypass?"}]},
        {"question": "Can penguins fly?"},
    ]
    out = build_grounded_prompts(rows, index_dir, k=2, mode="bm25")
    assert rows[0]["prompt"] == "Why does a wing stall?"  # input rows untouched
    assert isinstance(out[0]["prompt"], str) and out[0]["answer"] == "separation"
    assert out[0]["prompt"].endswith("Question: Why does a wing stall?")
    assert f"[1] {DOCS['stall']}" in out[0]["prompt"] and "[2] " in out[0]["prompt"]
    assert out[0]["contexts"][0] == DOCS["stall"] and len(out[0]["contexts"]) == 2
    assert out[1]["prompt"][0] == {"role": "system", "content": "Be brief."}
    assert "[1] " + DOCS["turbofan"] in out[1]["prompt"][1]["content"]
    assert out[2]["prompt"][0]["role"] == "user" and "Can penguins fly?" in out[2]["prompt"][0]["content"]
    assert out[2]["citations"][0]["doc_id"] == "penguin"


def test_citations_point_at_exact_document_offsets(index_dir):
    out = build_grounded_prompts([{"question": "angle of attack and lift"}], index_dir, k=3)
    cites = out[0]["citations"]
    assert [c["n"] for c in cites] == [1, 2, 3]
    for c, text in zip(cites, out[0]["contexts"]):
        assert DOCS[c["doc_id"]][c["start"] : c["end"]] == text
    assert cites[0]["doc_id"] == "stall"


def test_grounded_prompt_and_grounding_reward_fit_together(index_dir):
    row = build_grounded_prompts([{"question": "Why does a wing stall?"}], index_dir, k=2)[0]
    good = "<answer>The airflow separates from the upper surface, so lift drops sharply [1].</answer>"
    bad = "<answer>Penguins have flippers [5].</answer>"
    res = get("grounding").fn([good, bad], [row, row])
    assert res[0].score == 1.0
    assert res[1].score == 0.0 and "non-existent [5]" in res[1].reason


def test_bad_template_and_missing_question_are_user_errors(index_dir):
    with pytest.raises(GroundingError, match=r"\{context\}"):
        build_grounded_prompts([{"question": "x"}], index_dir, k=1, template="Question: {question}")
    with pytest.raises(GroundingError, match="row 1: no question"):
        build_grounded_prompts([{"question": "x"}, {"answer": "7"}], index_dir, k=1)
    custom = "Sources:\n{context}\nQ: {question}\nA:"
    out = build_grounded_prompts([{"prompt": "penguins"}], index_dir, k=1, template=custom)
    assert out[0]["prompt"].startswith("Sources:\n[1] ") and out[0]["prompt"].endswith("Q: penguins\nA:")
    assert "{passages}" in DEFAULT_TEMPLATE and "{question}" in DEFAULT_TEMPLATE
