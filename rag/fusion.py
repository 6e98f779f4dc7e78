"""Hybrid retrieval: fusing ranked lists from BM25 and dense search.

- `rrf`: reciprocal rank fusion, score(d) = sum_r w_r / (k + rank_r(d)). Uses only
  ranks, so the retrievers' incomparable score scales never matter (Cormack et al. 2009).
- `convex`: score(d) = sum_r w_r * norm_r(score_r(d)), with scores normalized per query
  and retriever by `minmax` (to [0, 1]) or `zscore` (mean 0, sd 1). A document missing
  from a retriever's top `depth` gets that retriever's lowest normalized value in the
  list (min-max: 0), the natural "worse than anything retrieved" default.

Weights are fixed (`weighting="fixed"`), or scaled per query by each retriever's confidence
(`weighting="confidence"`): the z-score of its best score within its own candidate list,
(s1 - mean) / sd. A retriever whose top hit stands far out of its list (a rare name or
number matched; a near-duplicate passage embedded) counts more for that query than one
whose scores are flat; the weights are rescaled to keep their mean.

Each retriever contributes its top `depth` candidates. Ties are broken by the best rank
the document had in any list, then by position, so results are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from core.errors import UserError


class FusionError(UserError, ValueError):
    pass


@dataclass
class FusionConfig:
    method: Literal["rrf", "convex"] = "convex"
    """`rrf` (reciprocal rank fusion) or `convex` (weighted sum of normalized scores). The
    default, convex z-score fusion with confidence weighting, was chosen on the dev halves
    of four collections (bench/fusion_robustness.py): it holds up where one retriever is far
    stronger than the other, where RRF k=60 (the default before) fell 0.04-0.06 nDCG@10
    below it."""
    rrf_k: int = 60
    """RRF constant k: larger flattens the advantage of top ranks."""
    normalization: Literal["minmax", "zscore"] = "zscore"
    """Convex combination: per-query score normalization."""
    weights: dict[str, float] = field(default_factory=lambda: {"bm25": 1.0, "dense": 1.0})
    """Per-retriever weight (RRF and convex)."""
    weighting: Literal["fixed", "confidence"] = "confidence"
    """`fixed`: the weights as given. `confidence`: per query, each retriever's weight is
    scaled by how far its best score stands out of its own candidate list (see module docstring)."""
    depth: dict[str, int] = field(default_factory=lambda: {"bm25": 100, "dense": 100})
    """Per-retriever number of candidates fed into the fusion."""

    def __post_init__(self) -> None:
        if self.method not in ("rrf", "convex"):
            raise FusionError(f"fusion method must be rrf or convex, got {self.method!r}")
        if self.normalization not in ("minmax", "zscore"):
            raise FusionError(f"normalization must be minmax or zscore, got {self.normalization!r}")
        if self.weighting not in ("fixed", "confidence"):
            raise FusionError(f"weighting must be fixed or confidence, got {self.weighting!r}")
        if self.rrf_k < 0:
            raise FusionError(f"rrf_k must be >= 0, got {self.rrf_k}")

    @classmethod
    def from_manifest(cls, data: dict) -> "FusionConfig":
        """The fusion an index manifest records. One written before `weighting` existed
        meant fixed weights; if it was the default of then (RRF k=60, unit weights, depth
        100) -- never chosen, only defaulted -- it becomes today's default."""
        if "weighting" not in data:
            if data == OLD_DEFAULT:
                return cls()
            data = {**data, "weighting": "fixed"}
        from core.config import from_dict

        return from_dict(cls, data, "fusion config")

    def depth_for(self, name: str, k: int) -> int:
        return max(k, int(self.depth.get(name, 100)))


OLD_DEFAULT = {"method": "rrf", "rrf_k": 60, "normalization": "minmax", "weights": {"bm25": 1.0, "dense": 1.0},
               "depth": {"bm25": 100, "dense": 100}}
"""FusionConfig() as written into index manifests before the `weighting` field (and the new default)."""


def _normalize(scores: np.ndarray, how: str) -> np.ndarray:
    if len(scores) == 0:
        return scores
    if how == "minmax":
        lo, hi = scores.min(), scores.max()
        return np.ones_like(scores) if hi - lo <= 1e-12 else (scores - lo) / (hi - lo)
    sd = scores.std()
    return np.zeros_like(scores) if sd <= 1e-12 else (scores - scores.mean()) / sd


def confidence(scores: Sequence[float]) -> float:
    """How far a retriever's best score stands out of its candidate list: the z-score of
    the top score, (s1 - mean) / sd, over the list (0 when it has under 2 distinct scores)."""
    a = np.asarray(scores, dtype=np.float64)
    if len(a) < 2:
        return 0.0
    sd = a.std()
    return 0.0 if sd <= 1e-12 else float((a.max() - a.mean()) / sd)


def _weights(cut: dict[str, list[tuple[int, float]]], cfg: FusionConfig) -> dict[str, float]:
    """Each retriever's weight for this query (see `FusionConfig.weighting`)."""
    base = {name: float(cfg.weights.get(name, 1.0)) for name in cut}
    if cfg.weighting == "fixed" or len(cut) < 2:
        return base
    conf = {name: confidence([s for _, s in hits]) for name, hits in cut.items()}
    mean = sum(conf.values()) / len(conf)
    if mean <= 1e-12:
        return base
    return {name: base[name] * conf[name] / mean for name in cut}


def fuse(lists: dict[str, list[tuple[int, float]]], config: FusionConfig | None = None,
         k: int = 10) -> list[tuple[int, float, dict[str, float]]]:
    """Fuse {retriever: [(position, score), ...] best first} into the top k
    (position, fused score, {retriever: original score}) tuples."""
    cfg = config or FusionConfig()
    cut = {name: hits[: cfg.depth_for(name, k)] for name, hits in lists.items()}
    raw: dict[int, dict[str, float]] = {}
    best_rank: dict[int, int] = {}
    for name, hits in cut.items():
        for rank, (pos, score) in enumerate(hits, 1):
            raw.setdefault(pos, {})[name] = score
            best_rank[pos] = min(best_rank.get(pos, rank), rank)
    fused = dict.fromkeys(raw, 0.0)
    weights = _weights(cut, cfg)
    for name, hits in cut.items():
        w = weights[name]
        if cfg.method == "rrf":
            for rank, (pos, _) in enumerate(hits, 1):
                fused[pos] += w / (cfg.rrf_k + rank)
            continue
        norm = _normalize(np.asarray([s for _, s in hits], dtype=np.float64), cfg.normalization)
        values = {pos: float(v) for (pos, _), v in zip(hits, norm)}
        floor = float(norm.min()) if len(norm) else 0.0
        for pos in fused:
            fused[pos] += w * values.get(pos, floor)
    order = sorted(fused, key=lambda p: (-fused[p], best_rank[p], p))[:k]
    return [(p, fused[p], raw[p]) for p in order]
