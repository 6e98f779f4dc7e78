"""FlashRAG-layout loaders (tasks/flashrag.py) on the team's small fixtures
(data/fixtures/flashrag: written by hand in FlashRAG's layout, see its README); the hub
path is only checked to fail in one line offline, never to download."""

from __future__ import annotations

import json

import pytest

from tasks.flashrag import FlashRAGError, load_flashrag

SCHEMA = {"id", "question", "answers", "type", "split", "gold_docs", "entities", "source", "metadata"}


@pytest.fixture()
def fixtures(repo_root):
    return repo_root / "data" / "fixtures" / "flashrag"


@pytest.mark.parametrize("name,split", [("nq", "test"), ("triviaqa", "test"), ("popqa", "test")])
def test_single_hop_benchmarks(fixtures, name, split):
    rows = load_flashrag(fixtures / name, split)
    assert len(rows) == 5
    for r in rows:
        assert SCHEMA <= set(r)
        assert r["type"] == "single" and r["split"] == split and r["source"] == f"flashrag/{name}"
        assert r["answers"] and all(isinstance(a, str) for a in r["answers"])
        assert r["gold_docs"] == []
    assert rows[0]["id"] == "test_0"
    if name == "nq":
        assert rows[0]["answers"] == ["George Orwell", "Eric Arthur Blair"]
    if name == "popqa":
        assert rows[1]["entities"] == ["Kyoto"] and rows[1]["metadata"]["prop"] == "country"


def test_hotpotqa_fullwiki_and_distractor(fixtures):
    full = load_flashrag(fixtures / "hotpotqa", "dev")
    assert [r["type"] for r in full] == ["two_hop", "comparison", "two_hop", "comparison", "two_hop"]
    assert full[0]["gold_docs"] == ["Rusalka (opera)", "Antonín Dvořák"]  # hop order
    assert full[1]["gold_docs"] == ["Arthur's Magazine", "First for Women"]  # de-duplicated
    assert full[2]["gold_docs"] == ["Louvre", "Paris"]  # the original JSON's list-of-pairs form
    assert full[0]["level"] == "medium"
    assert all("passages" not in r for r in full)
    dis = load_flashrag(fixtures / "hotpotqa" / "dev.jsonl", "dev", setting="distractor")
    assert [r["question"] for r in dis] == [r["question"] for r in full]
    p = dis[0]["passages"]
    assert [x["title"] for x in p] == ["Rusalka (opera)", "Antonín Dvořák", "Rusalka (mythology)"]
    assert p[0]["text"] == "Rusalka is an opera by Antonín Dvořák. It premiered in Prague in 1901."
    assert dis[2]["passages"][1]["text"] == "Paris is the capital of France. The Seine flows through the city."
    assert set(dis[0]["gold_docs"]) <= {x["id"] for x in p}


def test_names_read_a_local_copy_under_the_data_root(fixtures, tmp_path):
    root = tmp_path / "shared"
    (root / "flashrag").mkdir(parents=True)
    (root / "flashrag" / "hotpotqa").symlink_to(fixtures / "hotpotqa")
    rows = load_flashrag("hotpotqa_distractor", "validation", data_root=root, limit=2)
    assert len(rows) == 2 and rows[0]["split"] == "dev" and rows[0]["passages"]
    assert "passages" not in load_flashrag("hotpotqa_fullwiki", "dev", data_root=root)[0]


def test_hub_path_exists_and_fails_in_one_line_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    calls = []
    import datasets

    def fake(*args, **kwargs):
        calls.append((args, kwargs))
        raise ConnectionError("offline\nmore detail")

    monkeypatch.setattr(datasets, "load_dataset", fake)
    with pytest.raises(FlashRAGError, match=r"cannot load hub dataset 'RUC-NLPIR/FlashRAG_datasets' \(split 'test'\): offline \(FlashRAG config 'nq'\)$"):
        load_flashrag("nq", "test", data_root=tmp_path)
    assert calls == [(("RUC-NLPIR/FlashRAG_datasets", "nq"), {"split": "test"})]


def test_mistakes_are_one_line_errors(fixtures, tmp_path):
    with pytest.raises(FlashRAGError, match=r"missing\.jsonl: no such file"):
        load_flashrag(tmp_path / "missing.jsonl")
    with pytest.raises(FlashRAGError, match=r"nq/dev\.jsonl: no such file"):
        load_flashrag(fixtures / "nq", "dev")
    with pytest.raises(FlashRAGError, match="unknown FlashRAG dataset 'squadd'"):
        load_flashrag("squadd")
    bad = tmp_path / "nq" / "test.jsonl"
    bad.parent.mkdir()
    bad.write_text(json.dumps({"id": "1", "question": "q?", "golden_answers": ["a"]}) + "\n"
                   + json.dumps({"id": "2", "question": "q2?"}) + "\n")
    with pytest.raises(FlashRAGError, match=r"test\.jsonl:2: missing field 'golden_answers'"):
        load_flashrag(bad)
    bad.write_text("{not json\n")
    with pytest.raises(FlashRAGError, match=r"test\.jsonl:1: invalid JSON"):
        load_flashrag(bad)
    with pytest.raises(FlashRAGError, match="distractor setting needs metadata.context"):
        hp = tmp_path / "hotpotqa" / "dev.jsonl"
        hp.parent.mkdir()
        hp.write_text(json.dumps({"id": "1", "question": "q?", "golden_answers": ["a"], "metadata": {"type": "bridge"}}) + "\n")
        load_flashrag(hp, "dev", setting="distractor")
