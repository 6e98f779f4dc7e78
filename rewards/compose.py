"""Composing rewards: a spec of weighted names -> per-reward results and a weighted total;
the same composition as TRL reward functions.

A spec is ``"math,format:0.2"`` (weight 1 unless given), a list of names, a list of
``(name, weight)`` pairs, or a ``{name: weight}`` dict.

Running a reward never crashes the caller: a reward that raises (or returns the wrong
number of results — a bug, never broadcast) yields, for every item of that batch, a score
of None (``on_error="none"``, the default: TRL then ignores it) or 0.0 (``on_error="zero"``),
with the reason ``"error: ..."`` in the results and in the log. Missing row fields are the
caller's mistake and raise `RewardError` naming the row and field, before anything runs.

Where a reward runs (`rewards.base.score_local`, the one local path, which Ray reward
hosts call too; what it needs to know about a reward is in the registry, `RewardSpec`):
- ``self_managed`` rewards (math; also any heavy reward with a ``workers`` parameter, such
  as code) get ``workers=`` / ``timeout=`` and run their own killable worker processes;
- other ``heavy`` rewards are shipped item by item to the worker pool (`rewards.workers`),
  where the caller enforces ``timeout`` per item by killing the worker;
- light rewards (format, language, length) run in-process: microseconds per item.

The weighted total adds ``weight * score`` over the rewards that apply (None counts as
absent, like TRL's nansum); it is None only when no reward applies.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

from rewards.base import RewardError, RewardResult, get, score_local

Spec = str | Sequence[str] | Sequence[tuple[str, float]] | Mapping[str, float]


def parse_spec(spec: Spec) -> list[tuple[str, float]]:
    """Normalize a spec to ``[(name, weight), ...]``; unknown names are a `RewardError`."""
    pairs: list[tuple[str, float]] = []
    if isinstance(spec, str):
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, weight = part.partition(":")
            try:
                pairs.append((name.strip(), float(weight) if weight else 1.0))
            except ValueError:
                raise RewardError(f"bad weight {weight!r} for reward {name!r} in {spec!r} (use name:0.5)") from None
    elif isinstance(spec, Mapping):
        pairs = [(str(k), float(v)) for k, v in spec.items()]
    else:
        for item in spec:
            if isinstance(item, str):
                pairs.append((item, 1.0))
            else:
                name, weight = item
                pairs.append((str(name), float(weight)))
    if not pairs:
        raise RewardError("no rewards named (e.g. --rewards math,format:0.2)")
    seen = set()
    for name, weight in pairs:
        if not math.isfinite(weight):
            raise RewardError(f"reward {name!r}: weight {weight!r} is not a finite number (the total would be {weight})")
        get(name)  # raises with the list of known names
        if name in seen:
            raise RewardError(f"reward {name!r} named twice")
        seen.add(name)
    return pairs


def completion_text(completion: Any) -> str:
    """A plain string, or the assistant text of a chat-format completion."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        return str(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        parts = []
        for msg in completion:
            if isinstance(msg, Mapping):
                if msg.get("role", "assistant") == "assistant":
                    content = msg.get("content", "")
                    if isinstance(content, list):  # multimodal content blocks
                        content = "".join(c.get("text", "") for c in content if isinstance(c, Mapping))
                    parts.append(str(content))
            else:
                parts.append(str(msg))
        return "\n".join(parts)
    if completion is None:
        return ""
    return str(completion)


@dataclass
class ScoreReport:
    """Results of a composition over a batch."""

    weights: dict[str, float]
    results: dict[str, list[RewardResult]]
    totals: list[float | None]
    seconds: float
    reward_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.totals)

    @property
    def names(self) -> list[str]:
        return list(self.weights)

    def scores(self, name: str) -> list[float | None]:
        return [r.score for r in self.results[name]]

    def mean(self) -> dict[str, float | None]:
        """Mean score per reward over the rows where it applies (None if it never does)."""
        out = {}
        for name, res in self.results.items():
            vals = [r.score for r in res if r.score is not None]
            out[name] = sum(vals) / len(vals) if vals else None
        return out

    def mean_total(self) -> float | None:
        vals = [t for t in self.totals if t is not None]
        return sum(vals) / len(vals) if vals else None

    def reason_counts(self) -> dict[str, dict[str, int]]:
        """Per reward, how many rows got each kind of reason ("correct", "wrong", "timeout", ...)."""
        return {
            name: dict(Counter(reason_kind(r.reason) for r in res).most_common())
            for name, res in self.results.items()
        }

    def per_row(self) -> list[dict[str, Any]]:
        return [
            {
                "score": self.totals[i],
                "rewards": {name: res[i].score for name, res in self.results.items()},
                "reasons": {name: res[i].reason for name, res in self.results.items()},
            }
            for i in range(self.n)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean(),
            "per_row": self.per_row(),
            "mean_score": self.mean_total(),
            "weights": self.weights,
            "reason_counts": self.reason_counts(),
            "seconds": round(self.seconds, 4),
            "rows_per_second": round(self.n / self.seconds, 1) if self.seconds > 0 else None,
        }


def reason_kind(reason: str) -> str:
    """The leading word(s) of a reason, before any ':' ("wrong: '3' != '4'" -> "wrong")."""
    return reason.split(":", 1)[0].strip() or "(none)"


def check_fields(names: Iterable[str], rows: Sequence[Mapping], *, where: Callable[[int], str] | None = None) -> None:
    """Every row has every field its rewards need, or a `RewardError` names the row and field."""
    where = where or (lambda i: f"row {i}")
    for name in names:
        for fld in get(name).fields:
            for i, row in enumerate(rows):
                if fld not in row:
                    raise RewardError(f"{where(i)}: missing field {fld!r} (needed by reward {name!r})")
                value = row[fld]
                # A null or an object where a gold value belongs would score as a silent 0.
                if value is None or isinstance(value, Mapping):
                    kind = "null" if value is None else "an object"
                    raise RewardError(f"{where(i)}: field {fld!r} is {kind} (reward {name!r} needs a string, "
                                      f"number or list)")


def check_completions(completions: Sequence[Any], *, where: Callable[[int], str] | None = None) -> None:
    """Every completion is text or chat messages: a number or null is a mistake in the
    input, never "no answer"."""
    where = where or (lambda i: f"row {i}")
    for i, c in enumerate(completions):
        if not isinstance(c, (str, list, tuple, Mapping)):
            kind = "null" if c is None else type(c).__name__
            raise RewardError(f"{where(i)}: field 'completion' is {kind}; it must be a string or chat messages")


def score(
    spec: Spec,
    completions: Sequence[Any],
    rows: Sequence[Mapping],
    *,
    workers: int | None = None,
    timeout: float | None = None,
    on_error: str = "none",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    where: Callable[[int], str] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
    ray: Any = None,
) -> ScoreReport:
    """Score `completions` (strings or chat lists) with every reward in `spec`.

    ``options`` maps a reward name to keyword options for it (``{"overlong": {"max_len": 512}}``);
    ``where(i)`` names row i in error messages (the CLI passes "file:line").
    ``backend="ray"`` runs the batch on reward hosts of a Ray cluster (``ray_address``, or a
    full `rewards.ray_hosts.RayConfig` as ``ray``); results are the local path's, row for row.
    """
    if on_error not in ("none", "zero"):
        raise RewardError(f"on_error must be 'none' or 'zero', not {on_error!r}")
    if backend not in ("local", "ray"):
        raise RewardError(f"backend must be 'local' or 'ray', not {backend!r}")
    pairs = parse_spec(spec)
    if len(completions) != len(rows):
        raise RewardError(f"{len(completions)} completions but {len(rows)} rows")
    check_fields([n for n, _ in pairs], rows, where=where)
    check_completions(completions, where=where)
    texts = [completion_text(c) for c in completions]
    options = options or {}
    start = time.perf_counter()
    if backend == "ray" and texts:
        from rewards.ray_hosts import RayConfig, score_on_ray

        cfg = ray or RayConfig(address=ray_address)
        results, seconds, _ = score_on_ray(pairs, texts, rows, workers=workers, timeout=timeout, on_error=on_error,
                                           options=options, config=cfg)
    else:
        results, seconds = score_local(pairs, texts, rows, workers=workers, timeout=timeout, on_error=on_error,
                                       options=options)
    totals: list[float | None] = []
    for i in range(len(texts)):
        parts = [w * results[n][i].score for n, w in pairs if results[n][i].score is not None]
        totals.append(sum(parts) if parts else None)
    return ScoreReport(dict(pairs), results, totals, time.perf_counter() - start, seconds)


# ------------------------------------------------------------------------- TRL adapter
def trl_reward_funcs(
    spec: Spec,
    *,
    workers: int | None = None,
    timeout: float | None = None,
    on_error: str = "none",
    options: Mapping[str, Mapping[str, Any]] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> list[Callable[..., list[float | None]]]:
    """One TRL reward function per reward in `spec`, named after it (TRL logs
    ``rewards/<name>/mean``), returning raw scores; pass `reward_weights(spec)` as
    ``GRPOConfig.reward_weights`` for the weighting (each function also has ``.weight``).

    Each function takes TRL's call ``(prompts, completions, completion_ids=None, **columns)``:
    completions plain or conversational; dataset columns (lists, one value per completion)
    become the rows. Reasons go to TRL's completions table when it offers ``log_extra``.
    """
    pairs = parse_spec(spec)
    if backend == "ray":  # the reward hosts start (and warm) while the model loads
        from rewards.ray_hosts import RayConfig, warm_hosts

        warm_hosts([n for n, _ in pairs], RayConfig(address=ray_address))
    elif any(get(name).pool for name, _ in pairs):
        from rewards.workers import shared_pool

        shared_pool(workers).warm_in_background()  # sympy's start-up overlaps model loading
    funcs = []
    for name, weight in pairs:
        funcs.append(_make_trl_func(name, weight, workers, timeout, on_error, (options or {}).get(name),
                                    backend=backend, ray_address=ray_address))
    return funcs


def reward_weights(spec: Spec) -> list[float]:
    return [w for _, w in parse_spec(spec)]


def _make_trl_func(name, weight, workers, timeout, on_error, opts, backend="local", ray_address=None):
    def reward_func(prompts=None, completions=None, completion_ids=None, **columns) -> list[float | None]:
        if completions is None:
            raise RewardError(f"reward {name!r}: TRL passed no completions")
        n = len(completions)
        rows: list[dict[str, Any]] = [{} for _ in range(n)]
        for key, values in columns.items():
            if isinstance(values, (list, tuple)) and len(values) == n:
                for row, v in zip(rows, values):
                    row[key] = v
        for i, row in enumerate(rows):
            if prompts is not None and "prompt" not in row:
                row["prompt"] = prompts[i]
            if completion_ids is not None:
                row["completion_ids"] = completion_ids[i]
        report = score([(name, 1.0)], completions, rows, workers=workers, timeout=timeout, on_error=on_error,
                       options={name: opts} if opts else None, backend=backend, ray_address=ray_address)
        res = report.results[name]
        log_extra = columns.get("log_extra")
        if callable(log_extra):
            try:
                log_extra(f"{name}_reason", [r.reason for r in res])
            except Exception:  # noqa: BLE001 - logging must not break training
                pass
        return [r.score for r in res]

    reward_func.__name__ = name
    reward_func.__qualname__ = name
    reward_func.weight = weight  # type: ignore[attr-defined]
    return reward_func
