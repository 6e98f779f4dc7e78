"""Programmatic search traces (Search-R1's SFT warm start): what tasks.rag_qa writes and how
train.data turns it into one tokenized example -- the tokens the rollout would build, with
the loss on the model's own steps only."""

from __future__ import annotations

import json

import pytest

import tasks
from rewards.conventions import information_block
from tasks.rag_qa import ABSTAIN_TEXT
from tasks.search_loop import Passage, SearchConfig, SearchRollout
from train.data import search_turns


@pytest.fixture
def world_task(tmp_path, hash_embedder):
    from tasks.knowledge_world import WorldConfig, generate, write_world

    world = tmp_path / "world"
    write_world(generate(WorldConfig(seed=5, docs=200, questions=240)), world)
    return tasks.get_task(f"world:{world}:train:search")


def test_traces_search_each_entity_and_cite_what_holds_the_answer(world_task):
    rows = world_task.load()
    by_type: dict[str, list] = {}
    for row in rows:
        by_type.setdefault(row["type"], []).append(row)
    assert set(by_type) == {"single", "two_hop", "comparison", "unanswerable"}
    answered = {t: 0 for t in by_type}
    for row in rows:
        trace = world_task.search_trace(row)
        searches, final = trace[:-1], trace[-1]
        assert [s["action"] for s in searches] == [f"<search>{q}</search>" for q in world_task.search_queries(row)]
        # BM25 returns only documents that share a word with the name: up to k (none for an
        # invented name no document has)
        assert all(len(s["passages"]) <= world_task.k for s in searches) and "passages" not in final
        if row["type"] != "unanswerable":
            assert all(s["passages"] for s in searches)
        if row["type"] == "two_hop":  # the question's entity, then the bridge only the first document names
            assert world_task.search_queries(row) == [row["entities"][0], row["bridge"]]
            assert row["bridge"] not in row["question"]
        shown = [p for s in searches for p in s["passages"]]
        answer = final["action"].removeprefix("<answer>").removesuffix("</answer>")
        if not row["answers"]:
            assert answer == ABSTAIN_TEXT
            continue
        if answer == ABSTAIN_TEXT:
            continue
        answered[row["type"]] += 1
        text, cites = answer.rsplit(" ", 1)
        assert text == row["answers"][0]
        numbers = [int(n) for n in cites.strip("[]").split("][")]
        # a cited passage holds the answer, numbered as the rollout numbers them (on across searches)
        assert any(row["answers"][0] in shown[n - 1] for n in numbers)
    # searching names finds invented entities: nearly every answerable trace answers
    for t in ("single", "two_hop", "comparison"):
        assert answered[t] >= 0.9 * len(by_type[t]), (t, answered[t], len(by_type[t]))
    # the SFT column and the task's target agree (one source for the answer)
    row = by_type["two_hop"][0]
    assert world_task.train_row(row)["completion"] == world_task.target(row) == world_task.search_trace(row)[-1]["action"]


def test_a_trace_is_tokenized_as_the_rollout_builds_it(world_task, smollm2):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    rows = world_task.load()
    two_hop = next(r for r in rows if r["type"] == "two_hop")
    nothing = next(r for r in rows if r["type"] == "unanswerable" and not world_task.search_trace(r)[0]["passages"])
    for row in (two_hop, nothing):
        _check_tokens(world_task, row, tok)


def _check_tokens(world_task, row, tok):
    trace = world_task.search_trace(row)
    example = search_turns(world_task.prompt(row), trace, tok)
    ids, labels = example["input_ids"], example["labels"]
    assert len(ids) == len(labels)

    # the prompt is the chat-templated task prompt, tokenized alone (as the rollout does)
    prompt = tok.apply_chat_template(world_task.prompt(row), tokenize=False, add_generation_prompt=True)
    p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
    assert ids[: len(p_ids)] == p_ids and set(labels[: len(p_ids)]) == {-100}

    # then, per step: the action's tokens (trained on), then the pasted block (not trained on),
    # which is exactly what SearchRollout.information pastes for that query
    by_query = {s["action"][len("<search>"):-len("</search>")]: s["passages"] for s in trace[:-1]}
    # a search that finds nothing is pasted too ("No results."), as the rollout pastes it
    rollout = SearchRollout(lambda q, k: [Passage(t, "", 0, 0) for t in by_query[q]], SearchConfig(top_k=world_task.k))
    at, shown = len(p_ids), 0
    for n, step in enumerate(trace, 1):
        action = tok(step["action"], add_special_tokens=False)["input_ids"] + ([tok.eos_token_id] if n == len(trace) else [])
        assert ids[at: at + len(action)] == action and labels[at: at + len(action)] == action
        at += len(action)
        if "passages" in step:
            text, _ = rollout.information(step["action"][len("<search>"):-len("</search>")], shown + 1)
            assert text == information_block(step["passages"], start=shown + 1)
            info = tok(text, add_special_tokens=False)["input_ids"][: SearchConfig().max_information_tokens]
            assert ids[at: at + len(info)] == info and set(labels[at: at + len(info)]) == {-100}
            at += len(info)
            shown += len(step["passages"])
    assert at == len(ids)
    # what the model is taught to write, read back from the labels
    taught = tok.decode([t for t in labels if t != -100])
    assert taught == "".join(s["action"] for s in trace) + tok.eos_token


def test_sft_rows_of_search_mode_are_traces(world_task, smollm2, tmp_path):
    """train.data end to end: a search-mode world source gives one tokenized trace per question."""
    import yaml

    from train.config import load_run_config
    from train.data import load_rows, to_sft

    cfg_path = tmp_path / "c.yaml"
    cfg_path.write_text(yaml.safe_dump({"model": {"name": "SmolLM2-135M-Instruct"},
                                        "data": {"source": f"{world_task.name}:types=two_hop", "split": "train"}}))
    cfg = load_run_config("sft", cfg_path)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2)
    rows = load_rows(cfg.data)[:5]
    examples = to_sft(rows, cfg.data, cfg.model, tok)
    assert len(examples) == len(rows) and all(set(e) == {"input_ids", "labels"} for e in examples)
    for row, ex in zip(rows, examples):
        taught = tok.decode([t for t in ex["labels"] if t != -100])
        assert taught.count("<search>") == 2 and taught.endswith("</answer>" + tok.eos_token)
        assert json.loads(row["search_trace"])[-1]["action"] in taught
