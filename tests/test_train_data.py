"""Training data sources and formats (no model training here)."""

from __future__ import annotations

import json

import pytest

from train.config import DataConfig, ModelConfig
from train.data import (
    TrainingDataError,
    load_rows,
    split_rows,
    to_preferences,
    to_prompts,
    to_sft,
)


class PlainTok:
    chat_template = None


class ChatTok:
    chat_template = "{{ messages }}"


def test_reasoning_gym_rows_are_procedural_and_seeded():
    cfg = DataConfig(source="reasoning_gym:basic_arithmetic", options={"size": 20, "seed": 3, "max_terms": 2})
    a, b = load_rows(cfg), load_rows(cfg)
    assert a == b and len(a) == 20
    assert {"question", "answer", "rg_entry"} <= set(a[0])
    with pytest.raises(TrainingDataError, match="reasoning_gym:no_such_task"):
        load_rows(DataConfig(source="reasoning_gym:no_such_task"))


@pytest.mark.parametrize("task", ["basic_arithmetic", "chain_sum"])
def test_math_reward_agrees_with_reasoning_gyms_own_scorer(task):
    """assay's math reward and reasoning-gym's scorer agree on which answers are right."""
    import reasoning_gym

    import rewards

    rows = load_rows(DataConfig(source=f"reasoning_gym:{task}", options={"size": 40, "seed": 7}, shuffle=False))
    ds = reasoning_gym.create_dataset(task, size=40, seed=7)
    completions, golds, theirs = [], [], []
    for row in rows:
        entry = json.loads(row["rg_entry"])
        gold = entry["answer"]
        for answer in (gold, str(int(gold) + 1), str(int(gold) - 10)):
            completions.append(f"Let me compute. The answer is \\boxed{{{answer}}}.")
            golds.append(row)
            theirs.append(ds.score_answer(answer, entry) == 1.0)
    report = rewards.score("math", completions, golds)
    ours = [r.score == 1.0 for r in report.results["math"]]
    assert ours == theirs
    assert sum(ours) == len(rows)  # exactly the gold answers


def test_gsm8k_and_math500_from_the_shared_directory(shared_data):
    rows = load_rows(DataConfig(source="gsm8k", split="test", shared_dir=str(shared_data), shuffle=False))
    assert len(rows) == 1319 and rows[1]["answer"] == "3"  # "#### 3"
    assert "####" in rows[1]["solution"]
    rows = load_rows(DataConfig(source="math500", shared_dir=str(shared_data), shuffle=False))
    assert len(rows) == 500 and rows[0]["answer"].startswith("\\left( 3")
    with pytest.raises(TrainingDataError, match="not found"):
        load_rows(DataConfig(source="gsm8k", shared_dir="/nonexistent"))


def test_humaneval_rows_carry_the_code_reward_fields():
    rows = load_rows(DataConfig(source="humaneval", shuffle=False))
    assert len(rows) == 164
    assert {"test", "entry_point", "question"} <= set(rows[0])


def test_jsonl_file_errors_name_file_and_line(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"question": "q", "answer": "1"}\n{broken\n')
    with pytest.raises(TrainingDataError, match=r"d\.jsonl:2: invalid JSON"):
        load_rows(DataConfig(source=str(path)))
    with pytest.raises(TrainingDataError, match="no such file"):
        load_rows(DataConfig(source="missing.jsonl"))


def test_parquet_and_split(tmp_path):
    import datasets

    datasets.Dataset.from_list([{"problem": f"p{i}", "answer": str(i)} for i in range(10)]).to_parquet(tmp_path / "d.parquet")
    cfg = DataConfig(source=str(tmp_path / "d.parquet"), eval_size=3, limit=5)
    train, held = split_rows(load_rows(cfg), cfg)
    assert len(train) == 5 and len(held) == 3 and train[0]["question"].startswith("p")
    with pytest.raises(TrainingDataError, match="leaves no training rows"):
        split_rows(list(range(3)), DataConfig(source="x", eval_size=3))


def test_prompt_formats_plain_and_chat():
    rows = [{"question": "2+2?", "answer": "4"}]
    cfg = DataConfig(source="x", template="Q: {question}\nA:")
    assert to_prompts(rows, cfg, ModelConfig(), PlainTok())[0]["prompt"] == "Q: 2+2?\nA:"
    chat = to_prompts(rows, cfg, ModelConfig(system="Be brief."), ChatTok())[0]["prompt"]
    assert chat == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Q: 2+2?\nA:"}]
    assert to_prompts(rows, cfg, ModelConfig(chat=False), ChatTok())[0]["prompt"] == "Q: 2+2?\nA:"
    with pytest.raises(TrainingDataError, match="names field 'topic'"):
        to_prompts(rows, DataConfig(source="x", template="{topic}"), ModelConfig(), PlainTok())


def test_sft_and_preference_formats():
    rows = [{"question": "2+2?", "answer": "4", "solution": "2+2=4"}]
    sft = to_sft(rows, DataConfig(source="x", completion_template="{solution} #### {answer}"), ModelConfig(), ChatTok())
    assert sft[0]["completion"] == [{"role": "assistant", "content": "2+2=4 #### 4"}]
    prefs = to_preferences([{"question": "q", "chosen": "a", "rejected": "b"}], DataConfig(source="x"), ModelConfig(), PlainTok())
    assert prefs == [{"prompt": "q", "chosen": "a", "rejected": "b"}]
    with pytest.raises(TrainingDataError, match="no 'rejected'"):
        to_preferences([{"question": "q", "chosen": "a"}], DataConfig(source="x"), ModelConfig(), PlainTok())


def test_toy_task_rows():
    rows = load_rows(DataConfig(source="toy:lucky", options={"size": 10}))
    assert len(rows) == 10 and all(r["answer"] == "7" and r["chosen"] == " 7" and r["rejected"] != " 7" for r in rows)
    with pytest.raises(TrainingDataError, match="unknown toy task"):
        load_rows(DataConfig(source="toy:nope"))


def test_repeat_teaches_a_rare_kind_more_often(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}", "type": "rare" if i % 5 == 0 else "common"}) + "\n"
                            for i in range(20)))
    rows = load_rows(DataConfig(source=str(path), repeat={"type": {"rare": 3}}, shuffle=False))
    assert len(rows) == 16 + 3 * 4
    assert [r["question"] for r in rows[:4]] == ["q0", "q0", "q0", "q1"]  # each rare row three times, in place
    shuffled = load_rows(DataConfig(source=str(path), repeat={"type": {"rare": 3}}, seed=1))
    assert sorted(r["question"] for r in shuffled) == sorted(r["question"] for r in rows)


def test_repeat_counts_are_checked(tmp_path):
    from core.config import ConfigError
    from train.config import load_run_config

    cfg = {"model": {"name": "toy:lucky"}, "data": {"source": "toy:lucky", "repeat": {"type": {"rare": 0}}}}
    with pytest.raises(ConfigError, match=r"data.repeat.type.rare must be a whole number >= 1"):
        load_run_config("sft", cfg)


def test_skip_leaves_out_the_first_rows(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("".join(json.dumps({"question": f"q{i}"}) + "\n" for i in range(10)))
    rows = load_rows(DataConfig(source=str(path), skip=4, shuffle=False))
    assert [r["question"] for r in rows] == [f"q{i}" for i in range(4, 10)]
