"""A run's weighted rewards, as TRL reward functions and as a plain scorer.

Names are assay rewards (`rewards.trl_reward_funcs` / `rewards.score` do the work), or
`package.module:function` for a custom TRL-style reward
(`fn(prompts=..., completions=..., **columns) -> list[float | None]`).
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Sequence

from core.config import ConfigError
from train.config import RewardConfig


def _custom(name: str) -> Callable | None:
    if ":" not in name:
        return None
    module, _, attr = name.partition(":")
    try:
        fn = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"rewards: cannot import {name!r}: {exc}") from None
    if not callable(fn):
        raise ConfigError(f"rewards: {name!r} is not callable")
    return fn


class RewardSet:
    def __init__(self, entries: Sequence[RewardConfig], backend: Any = None):
        self.entries = list(entries)
        # train.config.RewardsBackendConfig (None: local): where the assay rewards run
        self.backend = {"backend": getattr(backend, "backend", "local"), "ray_address": getattr(backend, "address", None)}
        import rewards

        for e in self.entries:
            if _custom(e.name) is None:
                rewards.get(e.name)  # an unknown name is a RewardError listing the known ones

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    @property
    def weights(self) -> list[float]:
        return [e.weight for e in self.entries]

    def trl_funcs(self) -> list[Callable]:
        """One TRL reward function per entry (raw scores; weights go to `reward_weights`)."""
        import rewards

        funcs = []
        for e in self.entries:
            fn = _custom(e.name)
            if fn is None:
                fn = rewards.trl_reward_funcs([(e.name, 1.0)], options={e.name: e.options} if e.options else None,
                                              **self.backend)[0]
            funcs.append(fn)
        return funcs

    def score(self, completions: Sequence[Any], rows: Sequence[dict]) -> tuple[list[float], dict[str, float | None]]:
        """(weighted totals with None counted as 0, mean of each reward over the rows it applies to)."""
        totals = [0.0] * len(completions)
        means: dict[str, float | None] = {}
        builtin = [e for e in self.entries if _custom(e.name) is None]
        if builtin:
            import rewards

            report = rewards.score([(e.name, e.weight) for e in builtin], completions, rows,
                                   options={e.name: e.options for e in builtin if e.options}, **self.backend)
            totals = [t or 0.0 for t in report.totals]
            means.update(report.mean())
        for e in self.entries:
            fn = _custom(e.name)
            if fn is None:
                continue
            columns = {k: [r.get(k) for r in rows] for k in (rows[0] if rows else {}) if k not in ("prompt", "completion")}
            vals = fn(prompts=[r.get("prompt") for r in rows], completions=list(completions), **columns)
            got = [v for v in vals if v is not None]
            means[e.name] = sum(got) / len(got) if got else None
            totals = [t + e.weight * (v or 0.0) for t, v in zip(totals, vals)]
        return totals, means

    def reward_fn(self) -> Callable[[list[str], list[dict]], list[float]]:
        """`reward_fn(completions, rows) -> list[float]` as train.ppo expects."""
        return lambda completions, rows: self.score(completions, rows)[0]
