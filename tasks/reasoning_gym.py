"""reasoning-gym tasks by name, procedural and offline; reasoning-gym's own scorer grades
the <answer> tag."""

from __future__ import annotations

from rewards.conventions import answer_block
from tasks.base import Scored, Task, TaskError


class ReasoningGym(Task):
    """A reasoning-gym task by name (``TASK[:key=value...]``: the dataset's own settings and
    ``seed``); its own `score_answer` grades the <answer> tag."""

    default_size = 100
    metrics = ("accuracy",)
    max_new_tokens = 1024

    def __init__(self, task: str, data_root: str | None = None, *, seed: int = 42):
        super().__init__(data_root)
        import reasoning_gym

        spec = task
        task, *opts = task.split(":")
        self.options = _options(spec, opts)
        seed = int(self.options.pop("seed", seed))
        known = sorted(reasoning_gym.factory.DATASETS)
        if task not in known:
            close = [k for k in known if task in k or k in task][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(known)} tasks, e.g. {', '.join(known[:5])})"
            raise TaskError(f"unknown reasoning-gym task {task!r}{hint}")
        self.task = task
        self.seed = seed
        self.name = f"reasoning_gym:{spec}"
        self.description = f"reasoning-gym task {task!r} (procedural; scored by reasoning-gym)"
        self.fields = ("question", "answer")
        self._dataset = None

    def dataset(self, size: int):
        import reasoning_gym

        if self._dataset is None or len(self._dataset) < size:
            try:  # the task's own settings: reasoning-gym checks them and says which is wrong
                self._dataset = reasoning_gym.create_dataset(self.task, size=size, seed=self.seed, **self.options)
            except Exception as exc:  # noqa: BLE001
                raise TaskError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        return self._dataset

    def load(self, limit=None):
        ds = self.dataset(limit or self.default_size)
        return [dict(ds[i], id=f"{self.task}-{i}", _line=i + 1) for i in range(limit or self.default_size)]

    def source(self):
        return self.name

    def item_id(self, row, index):
        return str(row.get("id", index))

    def score_fields(self, row):
        return (row.get("question"), row.get("answer"), row.get("metadata"))

    def prompt(self, row):
        from reasoning_gym.utils import SYSTEM_PROMPTS

        return [{"role": "system", "content": SYSTEM_PROMPTS["default"]},
                {"role": "user", "content": row["question"]}]

    def score(self, completions, rows) -> list[Scored]:
        ds = self._dataset if self._dataset is not None else self.dataset(1)
        out = []
        for c, r in zip(completions, rows):
            block = answer_block(c)  # the output conventions' reading (reasoning-gym's own needs the closing tag)
            answer = None if block is None else block.strip()
            entry = {"question": r["question"], "answer": r["answer"], "metadata": r.get("metadata", {})}
            if answer is None:
                out.append(Scored(0.0, "no <answer>...</answer> tag", None))
                continue
            try:
                s = float(ds.score_answer(answer=answer, entry=entry))
            except Exception as exc:  # noqa: BLE001 - a scorer crash is a wrong answer, with the reason
                out.append(Scored(0.0, f"scorer failed: {type(exc).__name__}: {exc}", answer))
                continue
            reason = "correct" if s >= 1 else (f"partial credit {s:.2f}" if s > 0 else f"expected {r['answer']!r}")
            out.append(Scored(s, reason, answer))
        return out


def _options(spec: str, opts: list[str]) -> dict:
    """``key=value`` settings after the task's name (``reasoning_gym:basic_arithmetic:max_terms=2``);
    a value is read as JSON where it parses (``2``, ``false``, ``["+","-"]``), else as text."""
    import json

    out = {}
    for opt in opts:
        key, eq, value = opt.partition("=")
        if not eq or not key:
            raise TaskError(f"reasoning_gym:{spec}: option {opt!r} is not key=value")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out
