"""rewards: verifiers and rewards — math answer checking, sandboxed code tests, format,
language consistency, length and repetition; composable and usable as TRL reward
functions.

Front door (names load lazily, so `import rewards` costs nothing)::

    import rewards
    report = rewards.score("math,format:0.2", completions, rows)   # -> ScoreReport
    funcs = rewards.trl_reward_funcs("math,format:0.2")            # GRPOTrainer(reward_funcs=funcs)
    rewards.verify("\\frac{1}{2}", "0.5")                          # -> True
    rewards.verify("42", rewards.parse("... so the answer is \\boxed{42}."))  # parse: the answer and its rule
    rewards.extract_answer("... so the answer is \\boxed{42}.")     # -> "42"
    rewards.extract_program(chat_text, ["has_close_elements"])     # -> Extraction(code, method)
    rewards.verl_compute_score(data_source=..., solution_str=..., ground_truth=...)  # verl

Imports nothing else of assay and never imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any  # noqa: F401

from core.lazy import lazy_exports

if TYPE_CHECKING:  # what editors and type checkers see; nothing loads at run time
    from rewards.base import (  # noqa: F401
        RewardError,
        RewardResult,
        get,
        import_modules,
        names,
        register,
    )
    from rewards.code_extraction import extract_program  # noqa: F401
    from rewards.compose import (  # noqa: F401
        ScoreReport,
        completion_text,
        parse_spec,
        reward_weights,
        score,
        trl_reward_funcs,
    )
    from rewards.math import parse, verify  # noqa: F401
    from rewards.verl import compute_score as verl_compute_score  # noqa: F401

_LAZY = {
    "score": ("rewards.compose", "score"),
    "ScoreReport": ("rewards.compose", "ScoreReport"),
    "trl_reward_funcs": ("rewards.compose", "trl_reward_funcs"),
    "reward_weights": ("rewards.compose", "reward_weights"),
    "parse_spec": ("rewards.compose", "parse_spec"),
    "completion_text": ("rewards.compose", "completion_text"),
    "verify": ("rewards.math", "verify"),
    "parse": ("rewards.math", "parse"),
    "RewardResult": ("rewards.base", "RewardResult"),
    "RewardError": ("rewards.base", "RewardError"),
    "register": ("rewards.base", "register"),
    "get": ("rewards.base", "get"),
    "names": ("rewards.base", "names"),
    "import_modules": ("rewards.base", "import_modules"),
    "extract_program": ("rewards.code_extraction", "extract_program"),
    "verl_compute_score": ("rewards.verl", "compute_score"),
}

__all__ = sorted([*_LAZY, "extract_answer"])


def extract_answer(text: str, lenient: bool = False) -> str | None:
    """The final answer a completion commits to (last box, ####, "the answer is", <answer>)."""
    from rewards.math import extract_answer as _extract

    return _extract(text, lenient=lenient).answer


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
