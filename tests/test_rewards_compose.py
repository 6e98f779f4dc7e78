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


# ------------------------------------------------------------ the registry knows its rewards
def test_the_registry_carries_what_scaling_code_needs():
    from rewards.base import get, prompt_group

    math_, length, cosine, code, fmt = (get(n) for n in ("math", "length", "cosine_length", "code", "format"))
    assert math_.pool and math_.self_managed and not math_.sandbox and math_.group_key is None
    assert length.pool and length.group_key is prompt_group and cosine.pool and cosine.group_key is None
    assert code.sandbox and code.self_managed and not code.pool
    assert not (fmt.pool or fmt.sandbox or fmt.heavy) and fmt.group_key is None


def test_register_derives_and_takes_the_facts():
    from rewards.base import get

    @register("_test_heavy_plain", heavy=True)
    def plain(completions, rows, **_):
        """Heavy, no workers: the harness ships it to the pool."""
        return [RewardResult(1.0, "ok")] * len(completions)

    @register("_test_heavy_own", heavy=True)
    def own(completions, rows, *, workers=None):
        """Heavy with its own workers: self-managed, never nested in the pool."""
        return [RewardResult(1.0, "ok")] * len(completions)

    @register("_test_grouped", group_key=lambda row: row["q"], sandbox=True)
    def grouped(completions, rows, **_):
        """Declares its facts."""
        return [RewardResult(1.0, "ok")] * len(completions)

    assert get("_test_heavy_plain").pool and not get("_test_heavy_plain").self_managed
    assert get("_test_heavy_own").self_managed and not get("_test_heavy_own").pool
    g = get("_test_grouped")
    assert g.sandbox and g.group_key({"q": "a"}) == "a" and not g.pool


def test_length_groups_rows_as_its_registered_group_key():
    """`length`'s own grouping (its reasons name the group's size) is the partition its
    registered group key makes: the Ray backend keeps exactly those rows together."""
    from rewards.base import get

    rows = [{"prompt": f"q{i % 3}", "answer": "1"} for i in range(9)] + [{"question": {"a": 1}, "answer": "1"}] * 2 \
        + [{"answer": "1", "x": 1}, {"answer": "1", "x": 1, "completion_ids": [1]}, {"answer": "2"}]
    comps = [f"{'so ' * i}\\boxed{{1}}" for i in range(len(rows))]
    key = get("length").group_key
    sizes = {}
    for row in rows:
        sizes[key(row)] = sizes.get(key(row), 0) + 1
    rep = score("length", comps, rows)
    for row, r in zip(rows, rep.results["length"]):
        assert f"(group of {sizes[key(row)]}:" in r.reason, (row, r.reason)


def test_score_local_is_what_score_runs():
    from rewards.base import score_local
    from rewards.compose import completion_text

    comps = ["<think>a</think><answer>\\boxed{4}</answer>", "\\boxed{5}", "so so \\boxed{4}", "x", "\\boxed{\\frac12}"]
    rows = [{"answer": "4", "prompt": "p"}, {"answer": "4", "prompt": "p"}, {"answer": "4", "prompt": "p"},
            {"answer": "", "prompt": "q"}, {"answer": "0.5", "prompt": "q"}]
    pairs = [("math", 1.0), ("format", 0.2), ("length", 0.5), ("_test_boom", 1.0)]
    rep = score(pairs, comps, rows, on_error="zero")
    results, seconds = score_local(pairs, [completion_text(c) for c in comps], rows, on_error="zero")
    assert results == rep.results and set(seconds) == {n for n, _ in pairs}
    assert [r.reason for r in results["math"]] == [r.reason for r in rep.results["math"]]


def test_one_sizing_rule_for_workers():
    from rewards import workers

    assert [workers.pool_workers(c) for c in (1, 2, 8, 64)] == [1, 2, 8, 8]
    assert [workers.sandbox_slots(c) for c in (1, 2, 16)] == [2, 3, 17]
    assert workers.default_workers() == workers.pool_workers() == min(workers.usable_cores(), 8)
    assert workers.sandbox_slots() == workers.usable_cores() + 1


def _rewards_imports() -> dict[str, set[str]]:
    """Module -> the `rewards` modules it imports (lazy imports inside functions too; not
    the ones only type checkers see)."""
    import ast

    root = Path(rewards.__file__).parent
    graph = {}
    for path in root.glob("*.py"):
        mod = "rewards" if path.stem == "__init__" else f"rewards.{path.stem}"
        deps = set()
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
                node.body = []
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("rewards"):
                deps.add(node.module)
                deps.update(f"{node.module}.{a.name}" for a in node.names)  # `from rewards import x`
            elif isinstance(node, ast.Import):
                deps.update(a.name for a in node.names if a.name.startswith("rewards"))
        graph[mod] = deps
    return graph


def test_no_import_circle_between_compose_and_ray_hosts():
    graph = _rewards_imports()

    def reaches(src: str, dst: str) -> bool:
        seen, todo = set(), [src]
        while todo:
            m = todo.pop()
            if m == dst:
                return True
            if m not in seen:
                seen.add(m)
                todo += [d for d in graph.get(m, ()) if d in graph]
        return False

    assert reaches("rewards.compose", "rewards.ray_hosts")  # the front door dispatches to Ray
    assert not reaches("rewards.ray_hosts", "rewards.compose")


def test_no_private_names_across_modules():
    """No `from rewards.x import _private`, and no "module:_private" reached by string."""
    import ast
    import re

    wrong = []
    for path in Path(rewards.__file__).parent.glob("*.py"):
        text = path.read_text()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rewards"):
                wrong += [f"{path.name}: {a.name}" for a in node.names if a.name.startswith("_")]
        wrong += [f"{path.name}: {m}" for m in re.findall(r"rewards\.\w+[\"']?\s*[:,]\s*[\"']_\w+", text)]
    assert not wrong
