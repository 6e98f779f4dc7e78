"""Aggregate metrics over per-sample scores: accuracy, pass@k, maj@k, mean@k.

(SQuAD's EM and token F1 are `rewards.qa.exact_match` / `token_f1`: one definition for the
training reward and the evaluation metric.)

Every suite scores each completion of each item with a number in [0, 1] (1 = correct);
an item has n completions (`--samples n`). From those lists:

- ``pass@k``: the unbiased estimator of the Codex paper (Chen et al. 2021): the chance
  that at least one of k completions drawn without replacement from the n is correct,
  ``1 - C(n-c, k) / C(n, k)``, averaged over items. Computed as a running product so
  large n does not overflow.
- ``mean@k``: the mean score of the first k completions, averaged over items.
- ``maj@k``: majority vote over the extracted answers of the first k completions; the
  item counts as correct when a completion carrying the winning answer is correct. Ties
  go to the answer seen first, so the result does not depend on dict ordering.
- ``accuracy``: mean@n (with one sample per item, plain accuracy).

Every mean comes with a 95% bootstrap interval over items (`bootstrap_intervals`), so two
models are compared with their noise visible.
"""

from __future__ import annotations

import collections
from typing import Sequence


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k for one item with n completions of which c are correct."""
    if k <= 0 or n <= 0:
        raise ValueError(f"pass@k needs n >= 1 and k >= 1 (n={n}, k={k})")
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} completions per item, got {n}")
    if n - c < k:
        return 1.0
    # 1 - prod_{i=n-c+1}^{n} (1 - k/i), the numerically stable form of the ratio of binomials.
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def is_correct(score: float | None) -> bool:
    return score is not None and score >= 1.0 - 1e-9


def default_ks(n: int) -> list[int]:
    """1, 2, 4, ... up to n, plus n itself: the points of a pass@k curve."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    if n not in ks:
        ks.append(n)
    return ks


def per_item(scores: Sequence[Sequence[float | None]], answers: Sequence[Sequence[str | None]] | None = None,
             ks: Sequence[int] | None = None) -> dict[str, list[float]]:
    """accuracy, pass@k, mean@k (and maj@k when answers are given) of each item: the values
    a summary averages and `bootstrap_intervals` resamples.

    `scores[i][j]` is completion j of item i (None = not scorable, counted as wrong);
    every item must have the same number of completions.
    """
    if not scores:
        return {}
    n = len(scores[0])
    if any(len(s) != n for s in scores):
        raise ValueError("every item needs the same number of completions")
    ks = list(ks) if ks else default_ks(n)
    threshold = 1.0 - 1e-9
    vals = [[0.0 if s is None else float(s) for s in item] for item in scores]
    correct = [sum(1 for s in item if s >= threshold) for item in vals]  # counted once, reused for every k
    out: dict[str, list[float]] = {"accuracy": [sum(v) / n for v in vals]}
    for k in ks:
        if k > n:
            continue
        out[f"pass@{k}"] = [pass_at_k(n, c, k) for c in correct]
        if n > 1:
            out[f"mean@{k}"] = [sum(v[:k]) / k for v in vals]
            if answers is not None:
                out[f"maj@{k}"] = [majority_correct(a[:k], s[:k]) for a, s in zip(answers, scores)]
    return out


def bootstrap_intervals(values: dict[str, Sequence[float | None]], *, level: float = 0.95, rounds: int = 1000,
                        seed: int = 0) -> dict[str, list[float]]:
    """A percentile bootstrap interval of each metric's mean over items: the items are
    resampled with replacement (`rounds` times, seeded, so a rerun prints the same interval)
    -- the noise of having evaluated these items and not others. Items with None are left
    out of that metric; a metric with fewer than two items gets no interval."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out: dict[str, list[float]] = {}
    draws: dict[int, np.ndarray] = {}  # one set of resamples per item count: metrics of the same items move together
    for name, vals in values.items():
        x = np.array([v for v in vals if v is not None], dtype=float)
        if len(x) < 2:
            continue
        if len(x) not in draws:
            draws[len(x)] = rng.integers(0, len(x), size=(rounds, len(x)))
        lo, hi = _percentiles(x[draws[len(x)]].mean(axis=1), level)
        out[name] = [round(lo, 6), round(hi, 6)]
    return out


def _percentiles(means, level: float) -> tuple[float, float]:
    """The central `level` interval of resampled means."""
    import numpy as np

    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def majority_correct(answers: Sequence[str | None], scores: Sequence[float | None]) -> float:
    """1.0 if the most common extracted answer (ties: first seen) belongs to a correct completion."""
    votes = collections.Counter(a for a in answers if a is not None)
    if not votes:
        return 0.0
    best = max(votes.values())
    winner = next(a for a in answers if a is not None and votes[a] == best)
    return 1.0 if any(is_correct(s) for a, s in zip(answers, scores) if a == winner) else 0.0


def paired_difference(a: Sequence[float], b: Sequence[float], *, level: float = 0.95, rounds: int = 10000,
                      seed: int = 0) -> tuple[float, float, float]:
    """(mean of a - b, and its percentile bootstrap interval) over paired items: both models
    scored on the same items, resampled together -- much tighter than comparing two
    separate intervals, since an item's difficulty cancels out."""
    import numpy as np

    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    if len(d) < 2:
        raise ValueError("a paired difference needs at least two items")
    means = d[np.random.default_rng(seed).integers(0, len(d), size=(rounds, len(d)))].mean(axis=1)
    return (float(d.mean()), *_percentiles(means, level))

