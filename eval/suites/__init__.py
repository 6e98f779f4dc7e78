"""Benchmark suites: the tasks of `tasks`, plus custom suites from YAML specs.

    gsm8k              math reward on the final answer, plus lm-eval's strict-match and
                       flexible-extract (tasks.lm_eval_gsm8k)
    math500            math reward; accuracy by subject and by level
    aime24, amc23      math reward
    humaneval          code reward in assay's sandbox; pass@k
    mbpp:FILE.jsonl    MBPP-style rows (text, test_list [, test_setup_code]); code reward
    stdio:FILE.jsonl   stdin/stdout rows (question, inputs, outputs); code reward
    reasoning_gym:TASK a reasoning-gym task, scored by reasoning-gym's own scorer
    PATH.yaml          a custom suite (eval.suites.spec): data, prompt template, rewards as
                       metrics; `type: rag_qa` makes a retrieval-augmented QA suite

A built-in suite *is* its task (`tasks.get_task`): the same rows, prompt and scorer that
training uses. This package adds only what evaluation alone needs: the YAML spec suites
and the registry that resolves a suite name.
"""

from __future__ import annotations

import re
from pathlib import Path

from tasks.base import Scored, Task, TaskError, reward_scores, scorer_version

Suite = Task  # what the runner and reports call a task they evaluate
SuiteError = TaskError

__all__ = ["Scored", "Suite", "SuiteError", "Task", "describe", "load_suite", "reward_scores", "scorer_version",
           "suite_names"]


def suite_names() -> list[str]:
    from tasks import task_names

    return task_names()


def describe() -> list[tuple[str, str]]:
    from tasks import describe as task_rows

    return [*task_rows(), ("PATH.yaml", "a custom suite from a YAML task spec (see data/suites/); type: custom or rag_qa")]


def load_suite(name: str, *, data_root: str | None = None) -> Task:
    """A suite by name, prefix (reasoning_gym:TASK, mbpp:FILE, stdio:FILE) or YAML path."""
    if re.search(r"\.ya?ml$", name) or (name.endswith(".toml") and Path(name).exists()):
        from eval.suites.spec import load_spec_suite

        return load_spec_suite(name, data_root=data_root)
    from tasks import get_task

    try:
        return get_task(name, data_root=data_root)
    except TaskError as exc:
        if str(exc).startswith("unknown task"):
            raise TaskError(str(exc).replace("unknown task", "unknown suite", 1) + ", PATH.yaml") from None
        raise
