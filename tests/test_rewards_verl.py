"""rewards/verl.py called the way verl calls a custom reward function.

verl loads the file by path (``custom_reward_function.path``) under its own module name,
then its NaiveRewardManager calls ``compute_score(data_source=, solution_str=,
ground_truth=, extra_info=)`` once per response, takes ``result["score"]`` when the result
is a dict and appends every key of it to one list per batch. `_naive_reward_manager`
below does exactly that (without torch)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

VERL_PY = Path(__file__).resolve().parents[1] / "rewards" / "verl.py"


@pytest.fixture(scope="module")
def compute_score():
    # As verl's get_custom_reward_fn does: spec_from_file_location("custom_module", path)
    spec = importlib.util.spec_from_file_location("custom_module", VERL_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules["custom_module"] = module
    spec.loader.exec_module(module)
    return getattr(module, "compute_score")


def _naive_reward_manager(compute_score, batch):
    """verl's NaiveRewardManager loop: keyword call, score from a dict, extra info per key."""
    rewards, extra = [], defaultdict(list)
    for item in batch:
        result = compute_score(
            data_source=item["data_source"],
            solution_str=item["response"],
            ground_truth=item["reward_model"]["ground_truth"],
            extra_info=item.get("extra_info", None),
        )
        if isinstance(result, dict):
            reward = result["score"]
            for key, value in result.items():
                extra[key].append(value)
        else:
            reward = result
        rewards.append(reward)
    return rewards, dict(extra)


HE_PROMPT = 'def add(a: int, b: int) -> int:\n    """Sum."""\n'
HE_TRUTH = {"test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n"
                    "    assert candidate(-1, 1) == 0\n    assert candidate(2, 2) == 4\n",
            "entry_point": "add", "prompt": HE_PROMPT}
CHAT_ADD = ("Here is the implementation:\n\n```python\ndef add(a, b):\n    return a + b\n\n\n"
            "if __name__ == '__main__':\n    print(add(2, 3))\n```\nIt adds the two numbers.")


def _item(source, response, truth, extra=None):
    return {"data_source": source, "response": response, "reward_model": {"ground_truth": truth}, "extra_info": extra}


def test_a_mixed_batch_through_the_naive_reward_manager(compute_score):
    batch = [
        _item("openai/gsm8k", "48 / 2 = 24, and 24 + 48 = 72.\n#### 72", "72", {"split": "train", "index": 0}),
        _item("openai/gsm8k", "The answer is 70.", "72"),
        _item("lighteval/MATH", "So the probability is $\\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        _item("DigitalLearningGmbH/MATH-lighteval", "\\boxed{0.5}", "\\frac12"),
        _item("HuggingFaceH4/MATH-500", "\\boxed{\\sqrt{2}}", "\\sqrt{3}"),
        _item("aime2024", "Therefore the answer is \\boxed{033}.", "33"),
        _item("amc23", "\\boxed{12}", "12"),
        _item("humaneval", CHAT_ADD, json.dumps(HE_TRUTH)),
        _item("humaneval", "```python\ndef add(a, b):\n    return a - b\n```", HE_TRUTH),
        _item("codecontests", "```python\na, b = map(int, input().split())\nprint(a + b)\n```",
              json.dumps({"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]})),
        _item("mbpp", "```python\ndef square(x):\n    return x * x\n\nprint(square(3))\n```",
              {"test_list": ["assert square(3) == 9", "assert square(-2) == 4"]}),
    ]
    rewards, extra = _naive_reward_manager(compute_score, batch)
    assert rewards == [1.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 0.25, 1.0, 1.0]
    assert all(type(r) is float for r in rewards)
    # every key once per item: verl's per-batch lists stay aligned
    assert set(extra) == {"score", "reason", "applicable"}
    assert all(len(v) == len(batch) for v in extra.values())
    assert all(extra["applicable"])
    assert "extracted: fenced block 1 of 1 (defines add); dropped: if __name__ block" in extra["reason"][7]


def test_body_only_answer_continues_the_prompt_from_extra_info(compute_score):
    truth = {k: v for k, v in HE_TRUTH.items() if k != "prompt"}
    out = compute_score(data_source="openai/openai_humaneval", solution_str="    return a + b\n",
                        ground_truth=json.dumps(truth), extra_info={"prompt": HE_PROMPT, "index": 3})
    assert out["score"] == 1.0, out


def test_not_applicable_is_zero_with_the_reason_not_a_silent_zero(compute_score):
    out = compute_score(data_source="HuggingFaceH4/MATH-500", solution_str="\\boxed{3}", ground_truth="", extra_info=None)
    assert out["score"] == 0.0 and out["applicable"] is False
    assert out["reason"].startswith("not applicable: ")
    bad = compute_score(data_source="humaneval", solution_str="x", ground_truth="{not json", extra_info=None)
    assert bad["applicable"] is False and "ground truth unreadable" in bad["reason"]
    no_tests = compute_score(data_source="mbpp", solution_str="def f(): pass", ground_truth={"test_list": []})
    assert no_tests == {"score": 0.0, "reason": "not applicable: the row has no tests", "applicable": False}
    with pytest.raises(ValueError, match="not applicable"):
        compute_score(data_source="HuggingFaceH4/MATH-500", solution_str="\\boxed{3}", ground_truth="", strict=True)


def test_unknown_data_source_is_a_clear_error(compute_score):
    with pytest.raises(NotImplementedError) as err:
        compute_score(data_source="hiyouga/geometry3k", solution_str="x", ground_truth="1", extra_info=None)
    msg = str(err.value)
    assert "hiyouga/geometry3k" in msg and "openai/gsm8k" in msg and "humaneval" in msg and "aime" in msg


def test_float_form_and_options(compute_score):
    assert compute_score(data_source="openai/gsm8k", solution_str="#### 72", ground_truth="72", return_dict=False) == 1.0
    partial = compute_score(data_source="humaneval", solution_str="    return a + b if a * b >= 0 else 99\n",
                            ground_truth=HE_TRUTH, extra_info=None)
    assert partial["score"] == pytest.approx(0.75)
    binary = compute_score(data_source="humaneval", solution_str="    return a + b if a * b >= 0 else 99\n",
                           ground_truth=HE_TRUTH, extra_info=None, binary=True)
    assert binary["score"] == 0.0
    # verl's default passes these to its own scorers; they are accepted and ignored
    out = compute_score(data_source="openai/gsm8k", solution_str="#### 72", ground_truth="72", extra_info=None,
                        sandbox_fusion_url=None, concurrent_semaphore=None)
    assert out["score"] == 1.0


def test_batch_form_as_the_batch_reward_manager_calls_it():
    from rewards.verl import compute_score_batch

    out = compute_score_batch(data_sources=["openai/gsm8k", "humaneval", "humaneval", "lighteval/MATH"],
                              solution_strs=["#### 72", CHAT_ADD, "no code at all", "\\boxed{}"],
                              ground_truths=["72", HE_TRUTH, json.dumps(HE_TRUTH), "5"],
                              extra_infos=[None] * 4)
    assert [o["score"] for o in out] == [1.0, 1.0, 0.0, 0.0]
    assert out[2]["reason"] == "no code found" and out[2]["applicable"] is True


def test_importing_it_pulls_in_no_torch():
    code = "import sys, rewards.verl; assert 'torch' not in sys.modules and 'verl' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=VERL_PY.parents[1])
