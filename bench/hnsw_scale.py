"""HNSW at scale: recall@10 against exact search, per-query latency, memory per vector.

    python bench/hnsw_scale.py                 # 1M x 384 (takes a while on 2 cores)
    python bench/hnsw_scale.py --n 100000      # quick run
    assay bench hnsw_scale --n 200000 --json

Data: synthetic 384-d unit vectors with the structure of real sentence embeddings — a
low intrinsic dimension (a random 48-d latent space mapped into 384-d), grouped in
clusters, plus small isotropic noise. (Uniform random 384-d Gaussians are a worst case no
real embedding model produces; they are reported with --iid for comparison.) Queries are
fresh draws from the same distribution, not copies of indexed vectors.

Side by side in one run: exact search (`IndexFlatIP`, the reference and ground truth)
and `rag.dense.DenseIndex(kind="hnsw")` — the same code path `assay index --faiss hnsw`
uses — across efSearch values. Latency is per query (one query per call, as a server
sees them), p50/p95 over the query set.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic(n: int, d: int, seed: int, iid: bool = False, latent: int = 48, clusters: int = 2000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.empty((n, d), dtype=np.float32)
    if iid:
        for lo in range(0, n, 100_000):
            hi = min(n, lo + 100_000)
            out[lo:hi] = rng.standard_normal((hi - lo, d), dtype=np.float32)
    else:
        proj = np.random.default_rng(12345).standard_normal((latent, d)).astype(np.float32)
        centers = np.random.default_rng(54321).standard_normal((clusters, latent)).astype(np.float32)
        for lo in range(0, n, 100_000):
            hi = min(n, lo + 100_000)
            z = centers[rng.integers(0, clusters, hi - lo)] + 0.6 * rng.standard_normal((hi - lo, latent), dtype=np.float32)
            out[lo:hi] = z @ proj + 0.5 * rng.standard_normal((hi - lo, d), dtype=np.float32)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def per_query(index_search, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    ids, lat = [], []
    for q in queries:
        t = time.perf_counter()
        ids.append(index_search(q[None, :], k))
        lat.append((time.perf_counter() - t) * 1000)
    return np.array(ids), np.array(lat)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000, help="indexed vectors (default 1,000,000)")
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--m", type=int, default=32, help="HNSW M")
    ap.add_argument("--ef-construction", type=int, default=100)
    ap.add_argument("--ef-search", default="16,32,64,128,256", help="comma-separated efSearch values")
    ap.add_argument("--iid", action="store_true", help="i.i.d. Gaussian vectors (worst case) instead")
    ap.add_argument("--threads", type=int, default=0, help="FAISS threads for building (0 = all)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args(argv)

    import faiss

    from rag.dense import DenseConfig, DenseIndex

    if args.threads:
        faiss.omp_set_num_threads(args.threads)
    log = (lambda *a: print(*a, file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    base = synthetic(args.n, args.dim, seed=1, iid=args.iid)
    queries = synthetic(args.queries, args.dim, seed=2, iid=args.iid)
    log(f"data: {args.n:,} x {args.dim} in {time.perf_counter() - t0:.1f}s")

    # reference: exact inner product (ground truth), batched for the truth, per query for latency
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(base)
    t = time.perf_counter()
    _, truth = flat.search(queries, args.k)
    log(f"exact ground truth: {time.perf_counter() - t:.1f}s")
    nq_lat = min(200, args.queries)  # exact per-query latency on a subset (it is slow by design)
    _, exact_lat = per_query(lambda q, k: flat.search(q, k)[1][0], queries[:nq_lat], args.k)  # noqa: F821 (runs before the del)
    del flat

    rss0 = rss_mb()
    cfg = DenseConfig(kind="hnsw", hnsw_m=args.m, hnsw_ef_construction=args.ef_construction)
    t = time.perf_counter()
    dense = DenseIndex(cfg).build(base)
    build_s = time.perf_counter() - t
    rss1 = rss_mb()
    log(f"hnsw build: {build_s:.1f}s")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "dense.faiss")
        dense.save(path)
        file_bytes = os.path.getsize(path)
    raw_bytes = args.dim * 4

    faiss.omp_set_num_threads(1)  # per-query search: one thread, as under concurrent load
    rows = []
    for ef in [int(x) for x in args.ef_search.split(",")]:
        dense.index.hnsw.efSearch = ef
        ids, lat = per_query(lambda q, k: [p for p, _ in dense.search(q, k)[0]], queries, args.k)
        recall = float(np.mean([len(set(a) & set(b)) / args.k for a, b in zip(ids, truth)]))
        rows.append({"ef_search": ef, "recall@10": round(recall, 4), "p50_ms": round(float(np.percentile(lat, 50)), 3),
                     "p95_ms": round(float(np.percentile(lat, 95)), 3), "qps": round(1000 / float(np.mean(lat)), 1)})
        log(f"ef={ef}: recall@10 {recall:.4f} p50 {rows[-1]['p50_ms']} ms")

    ok = [r for r in rows if r["recall@10"] >= 0.95 and r["p50_ms"] <= 5.0]
    result = {
        "n": args.n, "dim": args.dim, "queries": args.queries, "k": args.k, "data": "iid" if args.iid else "clustered-lowrank",
        "hnsw": {"M": args.m, "ef_construction": args.ef_construction, "build_s": round(build_s, 1)},
        "exact": {"p50_ms": round(float(np.percentile(exact_lat, 50)), 3),
                  "p95_ms": round(float(np.percentile(exact_lat, 95)), 3)},
        "rows": rows,
        "memory": {"bytes_per_vector_file": round(file_bytes / args.n, 1),
                   "bytes_per_vector_rss": round((rss1 - rss0) * 2**20 / args.n, 1),
                   "raw_float32_bytes_per_vector": raw_bytes,
                   "graph_overhead_bytes_per_vector": round(file_bytes / args.n - raw_bytes, 1)},
        "target": {"recall@10": 0.95, "p50_ms": 5.0},
        "meets_target": bool(ok),
        "best": ok[0] if ok else None,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(f"HNSW vs exact — {args.n:,} x {args.dim} ({result['data']}), {args.queries} queries, k={args.k}, "
              f"M={args.m}, efConstruction={args.ef_construction}, build {build_s:.0f}s")
        print(f"{'config':<18}{'recall@10':>10}{'p50 ms':>10}{'p95 ms':>10}{'speed-up p50':>14}")
        print(f"{'exact (flat)':<18}{1.0:>10.4f}{result['exact']['p50_ms']:>10.3f}{result['exact']['p95_ms']:>10.3f}{1.0:>14.1f}")
        for r in rows:
            print(f"{'hnsw ef=' + str(r['ef_search']):<18}{r['recall@10']:>10.4f}{r['p50_ms']:>10.3f}{r['p95_ms']:>10.3f}"
                  f"{result['exact']['p50_ms'] / max(r['p50_ms'], 1e-9):>14.1f}")
        mem = result["memory"]
        print(f"memory per vector: {mem['bytes_per_vector_file']} B in the FAISS file "
              f"({mem['raw_float32_bytes_per_vector']} B float32 + {mem['graph_overhead_bytes_per_vector']} B graph); "
              f"RSS growth {mem['bytes_per_vector_rss']} B/vector")
        print(f"target recall@10 >= 0.95 at p50 <= 5 ms: {'MET' if ok else 'NOT MET'}"
              + (f" (efSearch={ok[0]['ef_search']})" if ok else ""))
    return result


if __name__ == "__main__":
    main()
