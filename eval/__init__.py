"""eval: benchmark suites (math, code, retrieval, RAG QA), generation, metrics and
reports. Builds on `rag` and `rewards`.

Front door (lazy, so `import eval` stays cheap):

    import eval
    summary = eval.run("gsm8k", "SmolLM2-135M-Instruct", limit=50, out="runs/eval/smol")
    summary = eval.score("humaneval", "predictions.jsonl")     # generations made elsewhere
    eval.compare("runs/eval/before", "runs/eval/after")         # metrics side by side + flips
    eval.load_suite("reasoning_gym:basic_arithmetic"); eval.suite_names()
    eval.pass_at_k(n=10, c=3, k=1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:  # what editors and type checkers see; nothing loads at run time
    from eval.generation import GenerationConfig, Generator  # noqa: F401
    from eval.metrics import pass_at_k  # noqa: F401
    from eval.report import compare  # noqa: F401
    from eval.runner import run, score  # noqa: F401
    from eval.suites import load_suite, suite_names  # noqa: F401

_LAZY = {
    "run": ("eval.runner", "run"),
    "score": ("eval.runner", "score"),
    "compare": ("eval.report", "compare"),
    "load_suite": ("eval.suites", "load_suite"),
    "suite_names": ("eval.suites", "suite_names"),
    "pass_at_k": ("eval.metrics", "pass_at_k"),
    "GenerationConfig": ("eval.generation", "GenerationConfig"),
    "Generator": ("eval.generation", "Generator"),
}

__all__ = list(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
