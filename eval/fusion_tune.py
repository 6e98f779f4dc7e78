"""Choosing hybrid fusion settings on a collection's labelled dev queries
(`assay eval retrieval --data DIR --tune`).

    lists = CandidateLists(index, col, dev + test)      # BM25 and dense lists, computed once
    result = tune(lists, dev, test)                     # grid on dev; dev and test figures
    index.set_fusion(result.chosen, record=result.record())   # the index's default from now on

How: the BM25 and dense candidate lists of every query are computed once, as deep as
`Index.search` asks for when a run is evaluated at `k` documents, and every setting of
the grid is scored with rag.fusion.fuse itself, so the chosen setting does in
`Index.search` exactly what it did here. The choice is made on the dev queries only; test
figures are reported, never used. The grid includes convex weights 0 and 1 (BM25 alone,
dense alone), so on dev the choice is never below the better single retriever; it
replaces the index's current setting only when it is better on dev by more than
`TuneConfig.min_gain` (small dev sets are noisy).
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

from rag.fusion import FusionConfig, fuse


@dataclass
class TuneConfig:
    rrf_k: tuple[int, ...] = (10, 30, 60, 100)
    """RRF constants tried."""
    rrf_bm25_weights: tuple[float, ...] = (0.25, 0.5, 0.7, 1.0, 1.4, 2.0, 4.0)
    """RRF: BM25 weights tried (the dense weight is 1)."""
    convex_bm25_weights: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
    """Convex: BM25 weights w tried (dense 1 - w; w = 0 or 1 is one retriever alone)."""
    normalizations: tuple[str, ...] = ("minmax", "zscore")
    """Convex: score normalizations tried."""
    weightings: tuple[str, ...] = ("fixed", "confidence")
    """Per-query weighting modes tried (rag.fusion.FusionConfig.weighting)."""
    min_gain: float = 0.002
    """Keep the index's current setting unless the best one beats it on dev by more than this (nDCG@10)."""
    k_docs: int = 100
    """Documents per query in a run (as `assay eval retrieval --k`)."""

    def grid(self, base: FusionConfig) -> list[FusionConfig]:
        out = []
        for k, wb, how in itertools.product(self.rrf_k, self.rrf_bm25_weights, self.weightings):
            out.append(FusionConfig(method="rrf", rrf_k=k, weights={"bm25": wb, "dense": 1.0}, weighting=how,
                                    depth=dict(base.depth)))
        for norm, wb, how in itertools.product(self.normalizations, self.convex_bm25_weights, self.weightings):
            out.append(FusionConfig(method="convex", normalization=norm, weighting=how, depth=dict(base.depth),
                                    weights={"bm25": wb, "dense": round(1.0 - wb, 4)}))
        return out


def describe(f: FusionConfig) -> str:
    """One line: `rrf k=60 bm25=1 dense=1` / `convex zscore bm25=0.7 dense=0.3 confidence`."""
    w = " ".join(f"{n}={v:g}" for n, v in sorted(f.weights.items()))
    head = f"rrf k={f.rrf_k}" if f.method == "rrf" else f"convex {f.normalization}"
    return f"{head} {w}" + (" confidence" if f.weighting == "confidence" else "")


class CandidateLists:
    """BM25 and dense candidate lists (chunk position, score) of each query of a collection,
    computed once and deep enough for `Index.search` at `k_docs` documents."""

    def __init__(self, index: Any, col: Any, qids: Sequence[str], k_docs: int = 100, depth: int = 400) -> None:
        from eval import ir_eval

        self.index, self.col, self.k_docs = index, col, k_docs
        self.n_chunks = max(k_docs, int(math.ceil(k_docs * ir_eval._chunks_per_doc(index))))
        depth = max(depth, self.n_chunks)
        qids = list(qids)
        texts = [col.queries[q] for q in qids]
        self.bm25 = dict(zip(qids, index.bm25.search_many(texts, depth))) if texts else {}
        vecs = index.embedder.encode(texts, cache=False) if texts else None
        self.dense = dict(zip(qids, index.dense_search_vectors(vecs, depth))) if texts else {}

    def ranked(self, qids: Sequence[str], fusion: FusionConfig | None = None,
               mode: str = "hybrid") -> dict[str, list[str]]:
        """Doc ids per query in rank order (a document ranks by its best chunk)."""
        chunks = self.index.chunks
        out = {}
        for q in qids:
            if mode == "hybrid":
                items = fuse({"bm25": self.bm25[q], "dense": self.dense[q]}, fusion, self.n_chunks)
            else:
                items = (self.bm25 if mode == "bm25" else self.dense)[q][: self.n_chunks]
            seen: dict[str, None] = {}
            for pos, *_ in items:
                seen.setdefault(chunks[pos].doc_id, None)
                if len(seen) >= self.k_docs:
                    break
            out[q] = list(seen)
        return out

    def ndcg10(self, qids: Sequence[str], fusion: FusionConfig | None = None, mode: str = "hybrid") -> float:
        from eval import ir_metrics

        qids = list(qids)
        if not qids:
            return 0.0
        ranked = self.ranked(qids, fusion, mode)
        qrels = {q: self.col.qrels[q] for q in qids}
        return ir_metrics.evaluate(qrels, ir_metrics.run_from_ranked(ranked), ("ndcg@10",))["ndcg@10"]


@dataclass
class TuneResult:
    chosen: FusionConfig
    before: FusionConfig
    figures: dict[str, dict[str, float]]  # {"dev"|"test": {"bm25", "dense", "hybrid (before)", "hybrid (tuned)"}}
    top: list[tuple[float, str]] = field(default_factory=list)  # best dev settings
    grid_size: int = 0
    n_dev: int = 0
    n_test: int = 0
    seconds: float = 0.0

    def record(self, **extra: Any) -> dict[str, Any]:
        """What the index manifest keeps about the choice."""
        return {"setting": describe(self.chosen), "dev_queries": self.n_dev, "test_queries": self.n_test,
                "ndcg@10": {s: {k: round(v, 4) for k, v in r.items()} for s, r in self.figures.items()},
                "tuned_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **extra}


def tune(lists: CandidateLists, dev: Sequence[str], test: Sequence[str], before: FusionConfig | None = None,
         config: TuneConfig | None = None) -> TuneResult:
    """Choose the fusion setting with the best dev nDCG@10 (keeping `before`, the index's
    current one, unless beaten by more than `min_gain`); report dev and test figures."""
    cfg = config or TuneConfig()
    before = before or FusionConfig()
    t0 = time.perf_counter()
    grid = cfg.grid(before)
    scored = [(lists.ndcg10(dev, f), i, f) for i, f in enumerate(grid)]
    base_dev = lists.ndcg10(dev, before)
    best_dev, _, best = max(scored, key=lambda t: (t[0], -t[1]))  # ties: the earlier in the grid
    chosen = best if best_dev > base_dev + cfg.min_gain else before
    figures = {}
    for split, qids in (("dev", dev), ("test", test)):
        figures[split] = {"bm25": lists.ndcg10(qids, mode="bm25"), "dense": lists.ndcg10(qids, mode="dense"),
                          "hybrid (before)": lists.ndcg10(qids, before),
                          "hybrid (tuned)": lists.ndcg10(qids, chosen)}
    top = [(round(s, 4), describe(f)) for s, _, f in sorted(scored, key=lambda t: (-t[0], t[1]))[:5]]
    return TuneResult(chosen, before, figures, top, len(grid), len(dev), len(test),
                      round(time.perf_counter() - t0, 2))


def tune_index(index: Any, col: Any, *, seed: int = 0, limit: int | None = None, base: FusionConfig | None = None,
               config: TuneConfig | None = None, record: bool = True) -> TuneResult:
    """Tune on the collection's seeded dev half, report dev and test, and (`record`) make
    the choice the index's default fusion in its manifest."""
    from eval import ir_eval

    cfg = config or TuneConfig()
    dev = list(ir_eval.select_queries(col, "dev", seed=seed, limit=limit))
    test = list(ir_eval.select_queries(col, "test", seed=seed, limit=limit))
    if not dev:
        from core.errors import UserError

        raise UserError(f"{col.root}: no judged dev queries to tune on (qrels/{col.split}.tsv)")
    lists = CandidateLists(index, col, dev + test, k_docs=cfg.k_docs)
    result = tune(lists, dev, test, before=base or index.config.fusion, config=cfg)
    if record:
        index.set_fusion(result.chosen, record=result.record(collection=str(col.root), qrels=col.split,
                                                             split_seed=seed))
    return result


def format_result(result: TuneResult) -> str:
    rows = ["bm25", "dense", "hybrid (before)", "hybrid (tuned)"]
    lines = [f"tuned on {result.n_dev} dev queries ({result.grid_size} settings, {result.seconds:.1f}s); "
             f"test: {result.n_test} queries, not used for the choice",
             f"before: {describe(result.before)}", f"chosen: {describe(result.chosen)}",
             "", f"{'nDCG@10':<18}{'dev':>8}{'test':>8}"]
    for r in rows:
        lines.append(f"{r:<18}{result.figures['dev'][r]:>8.4f}{result.figures['test'][r]:>8.4f}")
    return "\n".join(lines)
