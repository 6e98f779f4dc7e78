"""Composition, error containment, the worker pool path, and the TRL adapter."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

import rewards
from rewards.base import RewardError, RewardResult, register
from rewards.compose import parse_spec, score, trl_reward_funcs


@register("_test_boom")
def _boom(completions, rows, **_):
    """Always raises (a buggy reward)."""
    raise ZeroDivisionError("bug in reward")


@register("_test_short")
def _short(completions, rows, **_):
    """Returns one result too few."""
    return [RewardResult(1.0, "ok")] * (len(completions) - 1)


@register("_test_len", fields=("need",))
def _len(completions, rows, **_):
    """Length of the completion."""
    return [RewardResult(float(len(c)), f"ok: {len(c)} chars") for c in completions]


def test_parse_spec_forms():
    assert parse_spec("math,format:0.2") == [("math", 1.0), ("format", 0.2)]
    assert parse_spec(["math", ("format", 0.5)]) == [("math", 1.0), ("format", 0.5)]
    assert parse_spec({"tag_count": 2}) == [("tag_count", 2.0)]
    with pytest.raises(RewardError, match="known rewards"):
        parse_spec("math,nope")
    with pytest.raises(RewardError, match="bad weight"):
        parse_spec("math:x")
    with pytest.raises(RewardError, match="twice"):
        parse_spec("math,math:2")


def test_weighted_total_and_chat_completions():
    chat = [{"role": "assistant", "content": "<think>a</think><answer>\\boxed{4}</answer>"}]
    rep = rewards.score("math,format:0.5", [chat, "\\boxed{5}"], [{"answer": "4"}, {"answer": "4"}])
    assert rep.scores("math") == [1.0, 0.0]
    assert rep.scores("format") == [1.0, 0.0]
    assert rep.totals == [1.5, 0.0]
    out = rep.to_json()
    assert out["n"] == 2 and out["mean"] == {"math": 0.5, "format": 0.5}
    assert set(out["per_row"][0]) >= {"score", "rewards", "reasons"}
    assert rep.reason_counts()["math"] == {"correct": 1, "wrong": 1}


def test_none_is_absent_from_the_total():
    rep = score("math,tag_count", ["\\boxed{1}"], [{"answer": ""}])
    assert rep.scores("math") == [None] and rep.totals == [0.0]


@pytest.mark.parametrize("on_error,expected", [("none", None), ("zero", 0.0)])
def test_a_raising_reward_never_crashes(on_error, expected, caplog):
    rep = score("_test_boom,tag_count", ["a", "b"], [{}, {}], on_error=on_error)
    assert rep.scores("_test_boom") == [expected, expected]
    assert rep.results["_test_boom"][0].reason.startswith("error: ZeroDivisionError: bug in reward")
    assert "bug in reward" in caplog.text
    assert rep.scores("tag_count") == [0.0, 0.0]  # the other rewards still ran


def test_wrong_length_is_an_error_never_broadcast():
    rep = score("_test_short", ["a", "b", "c"], [{}, {}, {}])
    assert rep.scores("_test_short") == [None, None, None]
    assert "returned 2 results for 3 completions" in rep.results["_test_short"][0].reason


def test_missing_field_names_row_and_field():
    with pytest.raises(RewardError, match=r"row 1: missing field 'need'"):
        score("_test_len", ["a", "b"], [{"need": 1}, {}])
    with pytest.raises(RewardError, match="completions but"):
        score("_test_len", ["a"], [])


def test_heavy_reward_runs_in_pool_with_timeout(tmp_path, monkeypatch):
    # A heavy reward defined outside `rewards`: the worker imports its module by name.
    (tmp_path / "slow_reward_mod.py").write_text(textwrap.dedent('''
        import os, time
        from rewards.base import RewardResult, register

        @register("_test_slow", heavy=True)
        def slow(completions, rows, **_):
            """Sleeps as long as the row says; reports its pid."""
            time.sleep(rows[0]["sleep"])
            return [RewardResult(1.0, f"ok: pid {os.getpid()}")]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    import importlib

    importlib.import_module("slow_reward_mod")
    rep = score("_test_slow", ["a", "b", "c"], [{"sleep": 0}, {"sleep": 60}, {"sleep": 0}], workers=3, timeout=1.0)
    assert rep.scores("_test_slow") == [1.0, None, 1.0]
    assert rep.results["_test_slow"][1].reason.startswith("timeout")
    import os

    assert str(os.getpid()) not in rep.results["_test_slow"][0].reason  # ran in a worker process
    assert rep.seconds < 40


def test_trl_adapter_call_shape():
    funcs = trl_reward_funcs("math,format:0.2")
    assert [f.__name__ for f in funcs] == ["math", "format"]
    assert [f.weight for f in funcs] == [1.0, 0.2]
    assert rewards.reward_weights("math,format:0.2") == [1.0, 0.2]
    logged = {}
    prompts = [[{"role": "user", "content": "2+2?"}]] * 2
    completions = [[{"role": "assistant", "content": "<think>x</think><answer>\\boxed{4}</answer>"}],
                   [{"role": "assistant", "content": "\\boxed{5}"}]]
    out = funcs[0](prompts=prompts, completions=completions, completion_ids=[[1, 2], [3]], answer=["4", "4"],
                   trainer_state=object(), log_extra=lambda col, vals: logged.setdefault(col, vals),
                   log_metric=lambda name, value: None)
    assert out == [1.0, 0.0]
    assert logged["math_reason"][0].startswith("correct")
    assert funcs[1](prompts=["p", "p"], completions=["<think>a</think><answer>b</answer>", "b"]) == [1.0, 0.0]


def test_trl_adapter_from_threads():
    f = trl_reward_funcs("math")[0]
    results = {}

    def run(i):
        results[i] = f(prompts=["p"] * 2, completions=[f"\\boxed{{\\sqrt{{{i * i}}}}}", "\\boxed{0}"], answer=[str(i), str(i)])

    threads = [threading.Thread(target=run, args=(i,)) for i in (2, 3, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert results == {2: [1.0, 0.0], 3: [1.0, 0.0], 5: [1.0, 0.0]}


def test_front_door_and_code_reward_compose():
    assert rewards.verify("\\frac{1}{2}", "0.5") and not rewards.verify("\\frac{1}{2^{99}}", "\\frac{1}{2^{98}}")
    assert rewards.verify("#### 1,000", "so the answer is 1000.")
    assert rewards.extract_answer("x \\boxed{\\frac{a}{\\sqrt{b}}} y") == "\\frac{a}{\\sqrt{b}}"
    assert "code" in rewards.names() and "math" in rewards.names()
    # W2's sandboxed `code` reward runs through the same composition (it manages its own workers).
    good = "```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    rep = score("code,format:0.1", [good, bad], [{"test_list": ["assert add(1, 2) == 3", "assert add(0, 0) == 0"]}] * 2,
                timeout=10)
    assert rep.scores("code") == [1.0, 0.5]
    assert rep.totals == [1.0, 0.5]


def test_code_fingerprint_covers_the_sandbox(tmp_path, monkeypatch):
    """A change anywhere in rewards/ (the sandbox server too) changes the fingerprint that
    score caches key on (issue 12: a stale cached code verdict)."""
    import shutil

    import rewards.base as base

    root = tmp_path / "rewards"
    shutil.copytree(Path(base.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(base, "__file__", str(root / "base.py"))
    monkeypatch.setattr(base, "_FINGERPRINT", None)
    before = base.code_fingerprint()
    server = root / "sandbox" / "server.py"
    server.write_text(server.read_text() + "\n# a change in the sandbox\n")
    monkeypatch.setattr(base, "_FINGERPRINT", None)
    assert base.code_fingerprint() != before
