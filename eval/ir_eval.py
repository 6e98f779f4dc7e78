"""IR evaluation of assay retrieval on a BEIR-layout collection (the front door of
`assay eval retrieval` and of bench/retrieval.py).

    col = beir.load("shared/data/cranfield")
    index = corpus_index(col)                       # built once, then reused by content hash
    res = evaluate_system(index, col, mode="hybrid")
    res.metrics  # {"ndcg@10": ..., "recall@100": ..., "mrr@10": ..., "map@100": ...,
                 #  "qps": ..., "latency_p50_ms": ..., "latency_p95_ms": ..., "n_queries": ...}

How a run is made:
- Every query is searched on its own (one `index.search` call), and that call is timed:
  latency percentiles and queries/s are per-query figures, not batch throughput.
  `cpu_p50_ms` is the calling thread's CPU time per query (median): on a busy shared
  machine wall time includes waiting for a core, CPU time does not (it misses work done
  on other threads, so it is a floor, not a replacement).
- The index returns chunks; a document's rank is that of its best chunk (MaxP), so the
  run holds the top `k` distinct documents. Enough chunks are asked for to fill k
  documents (k times the chunks-per-document ratio, at least k).
- The run is the ranking the system returned (scores are made from ranks), so what is
  evaluated is exactly the order a user sees; the metrics then follow trec_eval's
  conventions (eval/ir_metrics.py).
- `"rank-bm25"` is the reference: rank_bm25.BM25Okapi over the same chunks with the
  index's own BM25 tokenizer, timed the same way.
- Before the clock starts, one untimed search loads the models (`warmup=True`), so model
  loading is not counted as query latency.
- HyDE with `hyde_batch=True` writes all hypothetical passages first in batches (much
  faster than one by one); its generation time is then shared out equally over the
  queries and added to each query's latency, so latency still counts the LM.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from eval import ir_metrics
from eval.beir import Collection, split_queries

METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")


@dataclass
class SystemResult:
    name: str
    metrics: dict[str, float]
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)
    run: dict[str, dict[str, float]] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.metrics, **self.extra}


def latency_stats(latencies_ms: Sequence[float], wall_seconds: float | None = None) -> dict[str, float]:
    lat = np.asarray(latencies_ms, dtype=np.float64)
    if lat.size == 0:
        return {"qps": 0.0, "latency_p50_ms": 0.0, "latency_p95_ms": 0.0}
    total = float(wall_seconds if wall_seconds is not None else lat.sum() / 1000.0)
    return {"qps": float(lat.size / total) if total > 0 else float("inf"),
            "latency_p50_ms": float(np.percentile(lat, 50)),
            "latency_p95_ms": float(np.percentile(lat, 95))}


# ---- the index of a collection ---------------------------------------------------------
def default_index_dir(col: Collection, config: Any = None) -> Path:
    """~/.cache/assay/eval/<collection>-<hash of its path and the index config>."""
    from core.config import to_dict
    from core.models import cache_dir

    key = {"root": str(Path(col.root).resolve())}
    if config is not None:
        cfg = to_dict(config)
        key["index"] = {k: cfg.get(k) for k in ("embedder", "encoder", "chunking", "dense", "bm25")}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:12]
    return cache_dir() / "eval" / f"{Path(col.root).resolve().name}-{digest}"


def corpus_index(col: Collection, directory: str | Path | None = None, config: Any = None, *,
                 progress: bool = True, title: str = "auto"):
    """An assay Index of the collection's corpus, reused when it exists: `Index.build` on
    an existing index is incremental (only new/changed documents are embedded, by content
    hash), so a second call on an unchanged corpus costs no model calls."""
    from rag import Index, IndexConfig

    config = config or IndexConfig()
    directory = Path(directory) if directory else default_index_dir(col, config)
    return Index.build(col.documents(title), directory, config, progress=progress)


# ---- runs ------------------------------------------------------------------------------
def _chunks_per_doc(index: Any) -> float:
    try:
        n_docs = len(index.doc_ids)
    except Exception:  # noqa: BLE001 - any index without doc_ids
        n_docs = 0
    return max(1.0, len(index) / n_docs) if n_docs else 1.0


def hits_to_docs(hits: Sequence[Any], k: int) -> list[str]:
    """Distinct doc ids in rank order (a document ranks by its best chunk)."""
    seen: dict[str, None] = {}
    for h in sorted(hits, key=lambda h: h.rank):
        seen.setdefault(h.chunk.doc_id, None)
        if len(seen) >= k:
            break
    return list(seen)


def run_queries(search: Callable[[str], Sequence[Any]], queries: Mapping[str, str], k: int, *,
                progress: bool = False, desc: str = "queries") -> tuple[dict[str, list[str]], list[float], list[float], float]:
    """Search each query alone, timed. Returns (ranked doc ids per query, latencies ms,
    CPU ms of the calling thread per query, wall s)."""
    ranked: dict[str, list[str]] = {}
    lat: list[float] = []
    cpu: list[float] = []
    items = list(queries.items())
    if progress:
        import sys

        from tqdm.auto import tqdm

        items = tqdm(items, desc=desc, file=sys.stderr, leave=False)
    t_all = time.perf_counter()
    for qid, text in items:
        t0, c0 = time.perf_counter(), time.thread_time()
        hits = search(text)
        lat.append((time.perf_counter() - t0) * 1000.0)
        cpu.append((time.thread_time() - c0) * 1000.0)
        ranked[qid] = hits_to_docs(hits, k)
    return ranked, lat, cpu, time.perf_counter() - t_all


def score_run(name: str, col: Collection, qids: Sequence[str], ranked: dict[str, list[str]],
              latencies_ms: list[float], wall: float, metrics: Sequence[str] = METRICS,
              extra: dict[str, Any] | None = None) -> SystemResult:
    qrels = {q: col.qrels[q] for q in qids}
    run = ir_metrics.run_from_ranked(ranked)
    per_q = ir_metrics.per_query(qrels, run, metrics)
    means = {m: (sum(v[m] for v in per_q.values()) / len(per_q) if per_q else 0.0) for m in metrics}
    stats = latency_stats(latencies_ms, wall)
    out = SystemResult(name, {**means, **stats, "n_queries": len(qids)}, per_q, run, latencies_ms)
    out.extra = dict(extra or {})
    return out


def select_queries(col: Collection, split: str = "all", *, seed: int = 0, fraction: float = 0.5,
                   limit: int | None = None) -> dict[str, str]:
    """Judged queries of the collection: all, or the seeded dev/test half; then the first `limit`."""
    judged = col.judged_queries()
    if split != "all":
        dev, test = split_queries(judged, fraction, seed)
        keep = set(dev if split == "dev" else test)
        judged = {q: t for q, t in judged.items() if q in keep}
    if limit is not None:
        judged = dict(list(judged.items())[:limit])
    return judged


def evaluate_system(index: Any, col: Collection, queries: Mapping[str, str] | None = None, *,
                    mode: str = "hybrid", k: int = 100, rerank: Any = None, hyde: Any = None,
                    fusion: Any = None, name: str | None = None, metrics: Sequence[str] = METRICS,
                    hyde_batch: bool = True, progress: bool = False, warmup: bool = True) -> SystemResult:
    """Evaluate one configuration of `index.search` on the collection's queries."""
    queries = dict(queries if queries is not None else col.judged_queries())
    n_chunks = max(k, int(math.ceil(k * _chunks_per_doc(index))))
    extra: dict[str, Any] = {}
    gen_ms_per_query = 0.0
    if warmup and queries:  # load models and touch the index before the clock starts
        index.search(next(iter(queries.values())), k=1, mode=mode, fusion=fusion)
        if hyde is not None and hasattr(hyde, "_load"):
            hyde._load()
    if hyde is not None and hyde_batch and hasattr(hyde, "generate"):
        before = getattr(hyde, "seconds", 0.0)
        hyde.generate(list(queries.values()))  # batched; query_vector then reuses the memo
        gen_s = getattr(hyde, "seconds", 0.0) - before
        gen_ms_per_query = gen_s * 1000.0 / max(1, len(queries))
        extra["hyde_generation_ms_per_query"] = gen_ms_per_query

    def search(text: str):
        return index.search(text, k=n_chunks, mode=mode, rerank=rerank, hyde=hyde, fusion=fusion)

    ranked, lat, cpu, wall = run_queries(search, queries, k, progress=progress, desc=name or mode)
    extra["cpu_p50_ms"] = _p50(cpu)
    if gen_ms_per_query:
        lat = [x + gen_ms_per_query for x in lat]
        wall += gen_ms_per_query * len(lat) / 1000.0
    if rerank is not None and hasattr(rerank, "depth"):
        extra["rerank_depth"] = int(rerank.depth)
    return score_run(name or mode, col, list(queries), ranked, lat, wall, metrics, extra)


def evaluate_rank_bm25(index: Any, col: Collection, queries: Mapping[str, str] | None = None, *,
                       k: int = 100, metrics: Sequence[str] = METRICS, progress: bool = False) -> SystemResult:
    """The reference: rank_bm25.BM25Okapi on the index's chunks and BM25 tokenizer."""
    from rank_bm25 import BM25Okapi

    queries = dict(queries if queries is not None else col.judged_queries())
    tokenizer = index.bm25.tokenizer
    cfg = index.bm25.config
    chunks = list(index.chunks)
    t0 = time.perf_counter()
    bm25 = BM25Okapi([tokenizer(c.text) for c in chunks], k1=cfg.k1, b=cfg.b, epsilon=cfg.epsilon)
    build_s = time.perf_counter() - t0
    n_chunks = max(k, int(math.ceil(k * _chunks_per_doc(index))))

    class _H:  # the minimal hit shape hits_to_docs reads
        __slots__ = ("chunk", "rank")

        def __init__(self, chunk, rank):
            self.chunk, self.rank = chunk, rank

    def search(text: str):
        scores = bm25.get_scores(tokenizer(text))
        top = np.argsort(-scores, kind="stable")[:n_chunks]
        return [_H(chunks[i], r) for r, i in enumerate(top, 1) if scores[i] > 0]

    ranked, lat, cpu, wall = run_queries(search, queries, k, progress=progress, desc="rank-bm25")
    return score_run("rank-bm25", col, list(queries), ranked, lat, wall, metrics,
                     {"build_s": build_s, "cpu_p50_ms": _p50(cpu)})


def _p50(xs: Sequence[float]) -> float:
    return float(np.percentile(np.asarray(xs, dtype=np.float64), 50)) if len(xs) else 0.0


def compare(index: Any, col: Collection, queries: Mapping[str, str] | None = None, *, k: int = 100,
            rerank: Any = None, hyde: Any = None, fusion: Any = None, reference: bool = True,
            progress: bool = False) -> dict[str, SystemResult]:
    """BM25, dense, hybrid and the rank-bm25 reference (and hybrid+rerank / hybrid+HyDE when
    given) side by side on the same queries."""
    queries = dict(queries if queries is not None else col.judged_queries())
    out: dict[str, SystemResult] = {}
    for mode in ("bm25", "dense", "hybrid"):
        out[mode] = evaluate_system(index, col, queries, mode=mode, k=k, fusion=fusion, progress=progress)
    if reference:
        out["rank-bm25"] = evaluate_rank_bm25(index, col, queries, k=k, progress=progress)
    if hyde is not None:
        out["hybrid+hyde"] = evaluate_system(index, col, queries, mode="hybrid", k=k, hyde=hyde, fusion=fusion,
                                             name="hybrid+hyde", progress=progress)
    if rerank is not None:
        out["hybrid+rerank"] = evaluate_system(index, col, queries, mode="hybrid", k=k, rerank=rerank,
                                               fusion=fusion, name="hybrid+rerank", progress=progress)
    return out


def format_table(results: Mapping[str, SystemResult | Mapping[str, Any]],
                 columns: Sequence[str] = ("ndcg@10", "recall@100", "mrr@10", "map@100", "qps",
                                           "latency_p50_ms", "latency_p95_ms", "n_queries")) -> str:
    """A plain-text table, one row per configuration."""
    rows = []
    for name, r in results.items():
        d = r.to_dict() if isinstance(r, SystemResult) else dict(r)
        cells = []
        for c in columns:
            v = d.get(c)
            if v is None:
                cells.append("-")
            elif c == "n_queries":
                cells.append(str(int(v)))
            elif c.startswith("latency") or c == "qps":
                cells.append(f"{v:.1f}")
            else:
                cells.append(f"{v:.4f}")
        rows.append([name, *cells])
    header = ["configuration", *columns]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(header), line(["-" * w for w in widths]), *(line(r) for r in rows)])
