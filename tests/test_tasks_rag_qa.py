"""tasks.rag_qa: a knowledge world as a task -- rows of one split, the three prompt modes,
scoring of hand-written completions (EM/F1, citations, support, abstention, recall@k)."""

from __future__ import annotations

import pytest

import tasks
from tasks.base import TaskError
from tasks.passages import GROUNDED_INSTRUCTION, SEARCH_INSTRUCTIONS
from tasks.rag_qa import ABSTAIN_TEXT, RagQA

pytestmark = pytest.mark.slow  # builds a real MiniLM index over a generated world (25-50 s here)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tasks.knowledge_world import WorldConfig, generate, write_world

    out = tmp_path_factory.mktemp("kw") / "world"
    write_world(generate(WorldConfig(seed=3, docs=150, questions=120)), out)
    return out


@pytest.fixture(scope="module")
def retrieve_rows(world):
    task = tasks.get_task(f"world:{world}:test:retrieve:k=3:retriever=bm25")
    return task, task.load()


def test_name_options_and_errors(world):
    t = tasks.get_task(f"world:{world}")
    assert (t.split, t.mode, t.k) == ("test", "retrieve", 3) and tasks.is_task(f"world:{world}")
    t = tasks.get_task(f"world:{world}:closed_book:train:k=5:types=single,two_hop")
    assert (t.split, t.mode, t.k, t.types) == ("train", "closed_book", 5, ("single", "two_hop"))
    assert {r["type"] for r in t.load()} <= {"single", "two_hop"}
    assert all(r["split"] == "train" for r in t.load())
    assert tasks.get_task(f"world:{world}", split="dev").split == "dev"
    with pytest.raises(TaskError, match="unknown option 'bogus'"):
        tasks.get_task(f"world:{world}:bogus")
    with pytest.raises(TaskError, match="not a knowledge-world directory"):
        tasks.get_task(f"world:{world}/nope")


def test_prompts_per_mode(world, retrieve_rows):
    task, rows = retrieve_rows
    row = rows[0]
    text = task.prompt(row)[0]["content"]
    assert text.startswith(GROUNDED_INSTRUCTION) and text.endswith(f"Question: {row['question']}")
    assert "[1] " in text and len(row["contexts"]) == len(row["retrieved"]) == len(row["citations"]) == 3
    closed = tasks.get_task(f"world:{world}:closed_book")
    crow = closed.load()[0]
    assert "[1]" not in closed.prompt(crow)[0]["content"] and "contexts" not in crow
    search = tasks.get_task(f"world:{world}:search")
    srow = search.load()[0]
    assert search.prompt(srow)[0]["content"] == f"{SEARCH_INSTRUCTIONS}\n\nQuestion: {srow['question']}"
    assert search.max_new_tokens > closed.max_new_tokens


def test_sft_targets_cite_the_passage_that_holds_the_answer(retrieve_rows):
    task, rows = retrieve_rows
    for row in rows:
        target = task.train_row(row)["completion"]
        if not row["answers"]:
            assert target == ABSTAIN_TEXT
        elif task.evidence(row):
            assert target.startswith(row["answers"][0] + " [")
            n = int(target.rsplit("[", 1)[1].rstrip("]"))
            if row["type"] != "comparison":
                assert row["answers"][0].lower() in row["contexts"][n - 1].lower()


def test_scoring_hand_written_completions(retrieve_rows):
    task, rows = retrieve_rows
    single = next(r for r in rows if r["type"] == "single" and task.evidence(r))
    unans = next(r for r in rows if r["type"] == "unanswerable")
    n = task.evidence(single)[0]
    wrong_n = next(i for i in (1, 2, 3) if i not in task.evidence(single))
    good, wrong_cite, wrong, abstain = (f"{single['answers'][0]} [{n}]", f"{single['answers'][0]} [{wrong_n}]",
                                        "Zorblat Quux [1]", ABSTAIN_TEXT)
    s = task.score([good, wrong_cite, wrong, abstain, abstain, good], [single] * 4 + [unans, unans])
    assert s[0].score == 1.0 and s[0].extra["f1"] == 1.0 and s[0].extra["citation_precision"] == 1.0
    assert s[0].extra["supported"] == 1.0 and s[0].extra["false_abstention"] == 0.0 and s[0].extracted == single["answers"][0]
    assert s[1].score == 1.0 and s[1].extra["citation_precision"] == 0.0
    assert s[2].score == 0.0 and s[2].extra["supported"] == 0.0
    assert s[3].score == 0.0 and s[3].extra["false_abstention"] == 1.0 and s[3].extra["citation_precision"] is None
    assert s[4].score == 1.0 and s[4].extra["abstention"] == 1.0 and s[4].extra["exact_match"] is None
    assert s[5].score == 0.0 and s[5].extra["abstention"] == 0.0
    gold = set(single["gold_docs"])
    assert s[0].extra["recall@k"] == (1.0 if gold & set(single["retrieved"]) else 0.0)


def test_search_mode_reads_retrieved_passages_back_from_the_completion(world):
    import json

    task = tasks.get_task(f"world:{world}:search")
    row = next(r for r in task.load() if r["type"] == "single")
    corpus = {d["_id"]: d["text"] for d in map(json.loads, (world / "corpus.jsonl").read_text().splitlines())}
    gold = row["gold_docs"][0]
    other = next(d for d in corpus if d != gold)
    completion = (f"<search>{row['question']}</search>\n<information>[1] {corpus[other]}\n[2] {corpus[gold]}"
                  f"</information>\n<answer>{row['answers'][0]} [2]</answer>")
    s = task.score([completion], [row])[0]
    assert s.score == 1.0 and s.extra["search_calls"] == 1.0
    assert s.extra["citation_precision"] == 1.0 and s.extra["recall@k"] == 1.0 and s.extra["supported"] == 1.0


def test_flashrag_files_load_through_the_flashrag_loader(repo_root):
    path = repo_root / "data" / "fixtures" / "flashrag" / "hotpotqa"
    task = RagQA(f"flashrag:{path}:dev:closed_book")
    rows = task.load()
    assert rows and all(r["source"] == "flashrag/hotpotqa" for r in rows)
    assert task.score([rows[0]["answers"][0]], rows[:1])[0].score == 1.0
