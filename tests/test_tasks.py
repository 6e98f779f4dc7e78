"""One task layer for train and eval: the prompt a model is trained on is, byte for byte,
the prompt it is evaluated on, for every task; and there is one loader per data set."""

from __future__ import annotations

import pytest

from eval.suites import load_suite
from train.config import DataConfig, ModelConfig
from train.data import load_rows, to_prompts

TASKS = ["gsm8k", "math500", "aime24", "amc23", "humaneval", "reasoning_gym:basic_arithmetic"]


@pytest.mark.parametrize("name", TASKS)
@pytest.mark.parametrize("chat", [True, False], ids=["chat", "plain"])
def test_train_prompts_are_the_eval_prompts(name, chat, shared_data):
    data = DataConfig(source=name, split="test", shared_dir=str(shared_data), shuffle=False,
                      options={"size": 20, "seed": 42} if name.startswith("reasoning_gym") else {})
    train_rows = to_prompts(load_rows(data)[:20], data, ModelConfig(chat=chat), tokenizer=None)
    suite = load_suite(name, data_root=str(shared_data))
    eval_rows = suite.load(limit=20)
    assert len(train_rows) == len(eval_rows) > 0
    for tr, ev in zip(train_rows, eval_rows):
        expected = suite.prompt(ev)
        if not chat:  # a model without a chat template gets the messages' text, in order
            expected = "\n\n".join(m["content"] for m in expected)
        assert tr["prompt"] == expected


def test_a_custom_template_is_still_honoured(shared_data):
    data = DataConfig(source="gsm8k", split="test", shared_dir=str(shared_data), shuffle=False, template="Q: {question}\nA:")
    row = to_prompts(load_rows(data)[:1], data, ModelConfig(chat=False), tokenizer=None)[0]
    assert row["prompt"].startswith("Q: ") and row["prompt"].endswith("\nA:")


def test_one_loader_per_data_set():
    """The data sets are loaded in tasks/ only: train and eval hold no loaders of their own."""
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for pkg in ("train", "eval"):
        for path in (root / pkg).rglob("*.py"):
            text = path.read_text()
            for needle in ("gsm8k/test.jsonl", "math500/test.jsonl", "read_problems(", "reasoning_gym.create_dataset"):
                if needle == "reasoning_gym.create_dataset" and path.name == "data.py" and pkg == "train":
                    continue  # the task's own settings are passed through to reasoning-gym
                assert needle not in text, f"{path.relative_to(root)} loads a data set itself ({needle})"


def test_one_passage_format_for_grounded_training_rollouts_and_rag_eval():
    """Grounded training prompts, search rollouts and RAG QA evaluation number passages
    with the one formatter (tasks.passages), so they cannot drift apart."""
    from rewards.conventions import format_passages
    from tasks.passages import grounded_prompt
    from train.grounding import DEFAULT_TEMPLATE

    assert format_passages(["a  b", "c\nd"]) == "[1] a b\n\n[2] c d"
    assert format_passages(["x" * 10], start=3, max_chars=4, sep="\n") == "[3] xxxx"
    assert grounded_prompt("Q?", ["p"]) == grounded_prompt("Q?", ["p"], DEFAULT_TEMPLATE)
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    for path in [*(root / "train").rglob("*.py"), *(root / "eval").rglob("*.py")]:
        assert 'f"[{' not in path.read_text(), f"{path.name} numbers passages itself"


@pytest.mark.parametrize("mode", [pytest.param("retrieve", marks=pytest.mark.slow), "closed_book", "search"])
def test_rag_qa_train_prompts_are_the_eval_prompts(mode, tmp_path_factory):
    """A knowledge world as training data (`source: world:DIR:MODE`, split from data.split)
    gives, byte for byte, the prompts `assay eval run world:DIR:train:MODE` asks."""
    from tasks.knowledge_world import WorldConfig, generate, write_world

    world = tmp_path_factory.getbasetemp() / "rag-qa-identity-world"
    if not (world / "questions.jsonl").exists():
        write_world(generate(WorldConfig(seed=1, docs=150, questions=100)), world, force=True)
    opts = f":{mode}:k=2:retriever=bm25"
    data = DataConfig(source=f"world:{world}{opts}", split="train", shuffle=False)
    train_rows = to_prompts(load_rows(data)[:20], data, ModelConfig(chat=True), tokenizer=None)
    suite = load_suite(f"world:{world}:train{opts}")
    eval_rows = suite.load(limit=20)
    assert len(train_rows) == len(eval_rows) == 20
    for tr, ev in zip(train_rows, eval_rows):
        assert tr["prompt"] == suite.prompt(ev)
        assert tr["answers"] == ev["answers"] and tr["completion"] == suite.target(ev)
