"""Qdrant backend (local mode) vs the FAISS directory index: ingestion and query latency.

    python bench/qdrant.py [--docs 1400] [--queries 100] [--json]

Side by side in one run, on the same Cranfield documents, chunks and embedder:
  1. build: `Index.build(...)` into a new directory, FAISS+BM25 files vs a Qdrant local-mode
     collection. The embeddings come from the embedding cache for both (warmed once before,
     untimed), so this is ingestion proper: chunking, BM25 statistics, FAISS / upserts, writes.
  2. update: one document changed, `index.update(...)` on both (Qdrant rewrites every point's
     sparse vector into the other slot: avgdl moved).
  3. queries: each query searched on its own (`index.search`, k=10) per mode, p50 / p95 ms;
     the query embedding is cached by both sides' first pass, so this is the search itself.
Ratios are Qdrant / FAISS. Local mode is qdrant-client's pure-Python implementation
(numpy brute force, a Python loop over sparse vectors): it measures the cost of the same
API calls, not a Qdrant server's speed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.files import shared_data_root  # noqa: E402


def _lat(index, queries, mode) -> list[float]:
    out = []
    for q in queries:
        t0 = time.perf_counter()
        index.search(q, 10, mode)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data_root() / "cranfield"))
    ap.add_argument("--docs", type=int, default=1400, help="Cranfield documents (default all 1400)")
    ap.add_argument("--queries", type=int, default=100, help="queries per mode (default 100)")
    ap.add_argument("--embedder", default="all-MiniLM-L6-v2")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from eval import beir
    from rag import Document, Index, IndexConfig
    from rag.embeddings import Embedder
    from rag.qdrant_store import QdrantConfig, close_clients

    col = beir.load(args.data)
    docs = col.documents()[: args.docs]
    queries = list(col.judged_queries().values())[: args.queries]
    tmp = Path(tempfile.mkdtemp(prefix="assay-bench-qdrant-"))
    emb = Embedder(args.embedder)  # the user's embedding cache: warm after the first run
    cf = IndexConfig(embedder=args.embedder)
    cq = IndexConfig(embedder=args.embedder, backend="qdrant",
                     qdrant=QdrantConfig(path=str(tmp / "qdrant"), collection="bench"))
    Index.build(docs, tmp / "warm", cf, progress=False, embedder=emb)  # embeddings into the cache, untimed
    for q in queries:
        emb.encode_query(q)

    res: dict = {"docs": len(docs), "queries": len(queries)}
    t0 = time.perf_counter()
    f = Index.build(docs, tmp / "faiss", cf, progress=False, embedder=emb)
    tf = time.perf_counter() - t0
    t0 = time.perf_counter()
    q = Index.build(docs, tmp / "q", cq, progress=False, embedder=emb)
    tq = time.perf_counter() - t0
    res["chunks"] = len(f)
    res["build_s"] = {"faiss": round(tf, 3), "qdrant": round(tq, 3), "ratio": round(tq / tf, 2)}

    changed = list(docs)
    changed[0] = Document(id=docs[0].id, text=docs[0].text + " (revised)", source=docs[0].source, meta=docs[0].meta)
    Index.build(changed, tmp / "warm", cf, progress=False, embedder=emb)
    t0 = time.perf_counter()
    f.update(changed, progress=False)
    uf = time.perf_counter() - t0
    t0 = time.perf_counter()
    q.update(changed, progress=False)
    uq = time.perf_counter() - t0
    res["update_one_doc_s"] = {"faiss": round(uf, 3), "qdrant": round(uq, 3), "ratio": round(uq / uf, 2)}

    res["query_ms"] = {}
    for mode in ("bm25", "dense", "hybrid"):
        _lat(f, queries[:5], mode), _lat(q, queries[:5], mode)  # warm
        lf, lq = _lat(f, queries, mode), _lat(q, queries, mode)
        p50f, p50q = float(np.percentile(lf, 50)), float(np.percentile(lq, 50))
        res["query_ms"][mode] = {"faiss_p50": round(p50f, 2), "qdrant_p50": round(p50q, 2),
                                 "faiss_p95": round(float(np.percentile(lf, 95)), 2),
                                 "qdrant_p95": round(float(np.percentile(lq, 95)), 2), "ratio_p50": round(p50q / p50f, 1)}
    close_clients()
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(f"{res['docs']} Cranfield documents, {res['chunks']} chunks, {res['queries']} queries per mode "
              "(Qdrant local mode vs FAISS+BM25 directory index; ratio = qdrant / faiss)")
        for key in ("build_s", "update_one_doc_s"):
            r = res[key]
            print(f"  {key:18s} faiss {r['faiss']:8.3f}  qdrant {r['qdrant']:8.3f}  x{r['ratio']}")
        for mode, r in res["query_ms"].items():
            print(f"  query {mode:7s} p50 ms  faiss {r['faiss_p50']:7.2f}  qdrant {r['qdrant_p50']:7.2f}  "
                  f"x{r['ratio_p50']}   (p95 {r['faiss_p95']:.2f} / {r['qdrant_p95']:.2f})")
    return res


if __name__ == "__main__":
    main()
