"""tasks: one definition per task, trained on and evaluated on.

    import tasks
    task = tasks.get_task("gsm8k")                 # or math500, aime24, amc23, humaneval,
    rows = task.load(limit=50)                     # reasoning_gym:TASK, mbpp:FILE, stdio:FILE
    task.prompt(rows[0])                           # chat messages, the same in train and eval
    task.score(completions, rows)                  # -> [Scored(score, reason, extracted, extra)]

One module per task family: `tasks.math` (GSM8K, MATH-500, AIME24, AMC23), `tasks.code`
(HumanEval, MBPP-style and stdin/stdout files), `tasks.reasoning_gym`, and the retrieval
QA family (`tasks.knowledge_world`, the offline world generator; `tasks.rag_qa_metrics`;
`tasks.passages`, the one formatter of retrieved passages for every grounded prompt).
`tasks.data` is where rows come from (the shared data root, files, the hub).

Layer: below `train` and `eval`, above `core`, `rag` and `rewards`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:  # editors and type checkers see the names; nothing heavy loads at import
    from tasks.base import Scored as Scored
    from tasks.base import Task as Task
    from tasks.base import TaskError as TaskError


def _builtin() -> dict[str, type]:
    from tasks.code import HumanEval
    from tasks.math import AIME24, AMC23, GSM8K, Math500

    return {t.name: t for t in (GSM8K, Math500, AIME24, AMC23, HumanEval)}


PREFIXED = {
    "reasoning_gym": "a reasoning-gym task: reasoning_gym:<task> (e.g. reasoning_gym:basic_arithmetic)",
    "mbpp": "MBPP-style JSONL: mbpp:<file.jsonl> (text, test_list [, test_setup_code])",
    "stdio": "stdin/stdout JSONL: stdio:<file.jsonl> (question, inputs, outputs)",
    "world": "RAG QA over a knowledge world: world:<DIR>[:split][:closed_book|retrieve|search][:k=N] (tasks.rag_qa)",
    "flashrag": "RAG QA over a FlashRAG-layout benchmark: flashrag:<PATH or name>[:split][:mode][:index=DIR]",
}


def task_names() -> list[str]:
    """The built-in task names (prefixed families: `PREFIXED`)."""
    return sorted(_builtin())


def describe() -> list[tuple[str, str]]:
    rows = [(name, cls.description) for name, cls in sorted(_builtin().items())]
    return rows + [(f"{p}:...", d) for p, d in PREFIXED.items()]


def get_task(name: str, *, data_root: str | None = None, split: str | None = None, seed: int = 42) -> "Task":
    """A task by name or prefix (reasoning_gym:TASK, mbpp:FILE, stdio:FILE). `split`: the
    data split (benchmarks default to their test split); `seed`: procedural tasks'."""
    from tasks.base import TaskError

    builtin = _builtin()
    if name in builtin:
        return builtin[name](data_root, split)
    prefix, sep, rest = name.partition(":")
    if sep and prefix in ("reasoning_gym", "reasoning-gym", "rg"):
        from tasks.reasoning_gym import ReasoningGym

        return ReasoningGym(rest, data_root, seed=seed)
    if sep and prefix in ("mbpp", "stdio"):
        from tasks.code import JsonlCodeSuite

        if not Path(rest).exists():
            raise TaskError(f"{prefix} task file {rest!r} does not exist")
        return JsonlCodeSuite(rest, prefix, data_root)
    if sep and prefix in ("world", "flashrag"):
        from tasks.rag_qa import RagQA

        return RagQA(name, data_root, split)
    known = ", ".join([*task_names(), *(f"{p}:..." for p in PREFIXED)])
    raise TaskError(f"unknown task {name!r}; known: {known}")


def is_task(name: str) -> bool:
    prefix = name.partition(":")[0]
    return name in _builtin() or (":" in name and prefix in ("reasoning_gym", "reasoning-gym", "rg", "mbpp", "stdio", "world", "flashrag"))


__getattr__, __dir__ = lazy_exports(__name__, {"Scored": "tasks.base", "Task": "tasks.base", "TaskError": "tasks.base"})
