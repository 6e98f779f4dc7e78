"""assay's verifiers as a verl reward function.

verl calls a reward function once per response, with keywords (its NaiveRewardManager
and the newer reward loop)::

    compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)

and takes back a float, or a dict whose ``"score"`` is the reward (every other key is
logged as extra reward info). Point verl at this module with::

    custom_reward_function.path=<assay>/rewards/verl.py custom_reward_function.name=compute_score

(`compute_score_batch` is the same for verl's BatchRewardManager, which passes the plural
keywords ``data_sources=, solution_strs=, ground_truths=, extra_infos=``.)

Dispatch is on ``data_source``, with the names verl's own preprocessing scripts and
`default_compute_score` use:

- **math** -- ``openai/gsm8k``, ``lighteval/MATH``, ``DigitalLearningGmbH/MATH-lighteval``,
  ``HuggingFaceH4/MATH-500``, ``math_dapo``, the ``numina_*`` sources, and any name starting
  with ``aime`` or ``amc``: assay's `math` reward; ``ground_truth`` is the bare gold answer
  (``"72"``, ``"\\frac{1}{2}"``), as verl's gsm8k and MATH preprocessing store it (a boxed
  solution or GSM8K's ``#### 72`` also works).
- **code** -- ``humaneval``/``openai/openai_humaneval``/``evalplus/humanevalplus``, ``mbpp``,
  ``codecontests``/``apps``/``taco``/``codeforces``, ``code``: assay's sandboxed `code`
  reward. ``ground_truth`` carries the tests, as a dict or a JSON string, in one of the
  three shapes `rewards.code` reads: ``{"test": ..., "entry_point": ..., "prompt": ...}``
  (HumanEval: ``check(candidate)``; ``prompt`` optional, else ``extra_info["prompt"]`` when
  it is a string, so a body-only answer can continue it), ``{"test_list": [...]}`` (MBPP
  asserts; optional ``test_setup_code``, ``test_imports``) or ``{"inputs": [...],
  "outputs": [...]}`` (stdin/stdout -- the shape verl's prime_code ground truth has).
  The score is the fraction of tests passed (``binary=True`` in the reward kwargs for 0/1).

An unknown ``data_source`` raises `UnknownDataSource` (a `NotImplementedError`, as verl's
own default does) naming the known ones: a misconfigured run should stop, not train on
zeros.

**Not applicable is not zero, but verl needs a number.** Where assay's reward says None
(the gold answer cannot be read, the row has no tests, the ground truth is malformed), the
result is ``{"score": 0.0, "applicable": False, "reason": "not applicable: ..."}`` so the
step can go on and the log says why; ``strict=True`` (in ``reward_kwargs``) raises instead.
Every dict has the same keys -- ``score``, ``reason``, ``applicable`` -- because verl
collects each key into one list per batch. ``return_dict=False`` returns the bare float.

Imports nothing of verl and never torch.
"""

from __future__ import annotations

import json
from typing import Any, Sequence

from rewards.base import RewardError, RewardResult, get

MATH_SOURCES = ("openai/gsm8k", "gsm8k", "lighteval/MATH", "DigitalLearningGmbH/MATH-lighteval",
                "HuggingFaceH4/MATH-500", "math", "math_dapo", "numina_aops_forum", "numina_synthetic_math",
                "numina_amc_aime", "numina_synthetic_amc", "numina_cn_k12", "numina_olympiads")
MATH_PREFIXES = ("aime", "amc")
CODE_SOURCES = ("humaneval", "openai_humaneval", "openai/openai_humaneval", "evalplus/humanevalplus",
                "mbpp", "google-research-datasets/mbpp", "evalplus/mbppplus",
                "codecontests", "deepmind/code_contests", "apps", "codeparrot/apps", "taco", "BAAI/TACO",
                "codeforces", "code")
_MATH = {s.lower() for s in MATH_SOURCES}
_CODE = {s.lower() for s in CODE_SOURCES}


class UnknownDataSource(RewardError, NotImplementedError):
    """A data_source this module has no verifier for."""


def reward_kind(data_source: Any) -> str:
    """"math" or "code" for a verl data_source; `UnknownDataSource` otherwise."""
    name = str(data_source).strip().lower()
    if name in _MATH or name.startswith(MATH_PREFIXES):
        return "math"
    if name in _CODE:
        return "code"
    raise UnknownDataSource(
        f"no assay verifier for data_source {str(data_source)!r}; known: math -- "
        + ", ".join(MATH_SOURCES) + ", or a name starting with " + " / ".join(MATH_PREFIXES)
        + "; code -- " + ", ".join(CODE_SOURCES))


def _code_row(ground_truth: Any, extra_info: Any) -> dict:
    gt = ground_truth
    if isinstance(gt, (bytes, bytearray)):
        gt = gt.decode("utf-8")
    if isinstance(gt, str):
        try:
            gt = json.loads(gt)
        except ValueError as exc:
            raise RewardError(f"code ground_truth is not JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(gt, dict):
        raise RewardError(f"code ground_truth must be a dict or a JSON object, not {type(gt).__name__}")
    row = {k: (list(v) if hasattr(v, "tolist") and not isinstance(v, str) else v) for k, v in gt.items()}
    if "fn_name" in row:
        raise RewardError("call-based tests (fn_name) are not supported; use test_list asserts or test + entry_point")
    if "test" in row and "prompt" not in row and isinstance(extra_info, dict) and isinstance(extra_info.get("prompt"), str):
        row["prompt"] = extra_info["prompt"]
    return row


def _result(res: RewardResult, return_dict: bool, strict: bool) -> dict | float:
    if res.score is None:
        if strict:
            raise RewardError(f"not applicable: {res.reason}")
        out = {"score": 0.0, "reason": f"not applicable: {res.reason}", "applicable": False}
    else:
        out = {"score": float(res.score), "reason": res.reason, "applicable": True}
    return out if return_dict else out["score"]


def _score_all(kinds: list[str], solutions: list[str], truths: list[Any], extras: list[Any],
               options: dict) -> list[RewardResult]:
    """Score a batch, one reward call per kind (the code sandbox runs its programs at once)."""
    results: list[RewardResult | None] = [None] * len(kinds)
    for kind in ("math", "code"):
        idx, rows = [], []
        for i, k in enumerate(kinds):
            if k != kind:
                continue
            if kind == "math":
                gt = truths[i]
                if isinstance(gt, (list, tuple)) or hasattr(gt, "tolist"):
                    gt = list(gt)[0] if len(gt) else ""  # verl datasets sometimes wrap the answer
                idx.append(i)
                rows.append({"answer": "" if gt is None else str(gt)})
            else:
                try:
                    row = _code_row(truths[i], extras[i])
                except RewardError as exc:
                    results[i] = RewardResult(None, f"ground truth unreadable: {exc}")
                    continue
                idx.append(i)
                rows.append(row)
        if not idx:
            continue
        opts = {k: v for k, v in options.items() if k in _OPTIONS[kind]}
        fn = get(kind).fn
        try:
            scored = fn([solutions[i] for i in idx], rows, **opts)
        except RewardError:
            if len(idx) == 1:
                raise
            # one bad row (a missing field) must not sink the batch: score them one by one
            scored = []
            for i, row in zip(idx, rows):
                try:
                    scored += fn([solutions[i]], [row], **opts)
                except RewardError as exc:
                    scored.append(RewardResult(None, f"ground truth unreadable: {exc}"))
        for i, res in zip(idx, scored):
            results[i] = res
    return results  # type: ignore[return-value]


_OPTIONS = {"math": {"lenient", "timeout", "workers", "hedging_penalty"},
            "code": {"binary", "timeout", "workers", "sandbox"}}


def compute_score(data_source: Any, solution_str: str, ground_truth: Any, extra_info: Any = None,
                  *, return_dict: bool = True, strict: bool = False, **kwargs: Any) -> dict | float:
    """Score one response the way verl asks (see the module docstring).

    Returns ``{"score": float, "reason": str, "applicable": bool}`` (or the float with
    ``return_dict=False``). Other keywords are options of the reward chosen (math:
    ``lenient``, ``timeout``; code: ``binary``, ``timeout``); the rest, such as verl's
    ``sandbox_fusion_url`` or ``concurrent_semaphore``, are ignored."""
    kind = reward_kind(data_source)
    try:
        [res] = _score_all([kind], [str(solution_str)], [ground_truth], [extra_info], kwargs)
    except RewardError as exc:
        res = RewardResult(None, f"ground truth unreadable: {exc}")
    return _result(res, return_dict, strict)


def compute_score_batch(data_sources: Sequence[Any], solution_strs: Sequence[str], ground_truths: Sequence[Any],
                        extra_infos: Sequence[Any] | None = None, *, return_dict: bool = True,
                        strict: bool = False, **kwargs: Any) -> list[dict | float]:
    """`compute_score` over a batch, as verl's BatchRewardManager calls it (plural keywords);
    one reward call per kind, so the sandbox runs the batch's programs in parallel."""
    n = len(solution_strs)
    if not (len(data_sources) == len(ground_truths) == n):
        raise RewardError(f"batch of {n} solutions with {len(data_sources)} data_sources and {len(ground_truths)} ground_truths")
    extras = list(extra_infos) if extra_infos is not None else [None] * n
    kinds = [reward_kind(s) for s in data_sources]
    results = _score_all(kinds, [str(s) for s in solution_strs], list(ground_truths), extras, kwargs)
    return [_result(r, return_dict, strict) for r in results]
