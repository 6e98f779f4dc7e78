"""Embedding throughput: sentence-transformers' encode vs assay's ONNX fp32 and ONNX int8.

    python bench/embedding.py [--docs 1400] [--json]
    assay bench embedding

Side by side in one run, on the same Cranfield chunks (assay's default chunking of the
documents `assay eval retrieval --data cranfield` indexes), all on the CPU:
  1. torch: `SentenceTransformer.encode(texts, batch_size=32, normalize_embeddings=True)`, the
     reference (it sorts texts by length itself, so its batches are already lightly padded);
  2. onnx: assay's `Embedder(encoder="onnx")`, the model exported to ONNX, fp32;
  3. onnx-int8: `Embedder(encoder="onnx-int8")`, the same graph after dynamic int8
     quantization (the default on CPU).
The chunks are split into two halves (even and odd positions); the first half runs in the
order torch, onnx, onnx-int8 and the second in the reverse order, so no variant gets the
quieter or the warmer machine (two other engineers share it). Model loading, the one-off
export (cached) and a warm-up call are excluded. Throughput is chunks per second over both
halves; the ratio is against torch. Quality: each vector's cosine to torch's, and the dense
nDCG@10 on all Cranfield queries of an index built from each variant's vectors, its queries
encoded by the same variant (and, for int8, also by torch: int8 documents + exact queries).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.files import shared_data_root  # noqa: E402

VARIANTS = ("torch", "onnx", "onnx-int8")


def log(*a) -> None:
    print(*a, file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data_root() / "cranfield"))
    ap.add_argument("--docs", type=int, default=1400, help="number of Cranfield documents (default 1400 = all)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--no-ndcg", action="store_true", help="skip the retrieval quality part")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import numpy as np

    from core.models import load_sentence_transformer, resolve
    from eval import beir
    from rag.chunking import Chunker
    from rag.embeddings import Embedder, EmbeddingCache
    from rag.index import IndexConfig
    from rag.onnx_encoder import default_threads, export_dir

    col = beir.load(args.data)
    docs = list(col.documents("auto"))[: args.docs]
    chunker = Chunker(IndexConfig().chunking)
    texts = [c.text for d in docs for c in chunker.chunk(d)]
    log(f"{len(docs)} documents -> {len(texts)} chunks; {default_threads()} threads")

    t = time.perf_counter()
    export_dir(resolve(IndexConfig().embedder))
    export_s = time.perf_counter() - t
    st = load_sentence_transformer(IndexConfig().embedder, device="cpu")
    onnx = {v: Embedder(IndexConfig().embedder, encoder=v, use_cache=False, batch_size=args.batch_size)
            for v in ("onnx", "onnx-int8")}

    def run(variant: str, part: list[str]):
        if variant == "torch":
            return st.encode(part, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True,
                             show_progress_bar=False)
        return onnx[variant].encode(part)

    for v in VARIANTS:
        run(v, texts[:8])  # warm-up (first-call allocations, session start)
    halves = [list(range(0, len(texts), 2)), list(range(1, len(texts), 2))]
    seconds = {v: 0.0 for v in VARIANTS}
    vecs = {v: np.zeros((len(texts), 384), np.float32) for v in VARIANTS}
    for h, order in ((0, VARIANTS), (1, VARIANTS[::-1])):
        part = [texts[i] for i in halves[h]]
        for v in order:
            t = time.perf_counter()
            got = run(v, part)
            seconds[v] += time.perf_counter() - t
            vecs[v][halves[h]] = got
            log(f"half {h + 1}: {v} {len(part) / (time.perf_counter() - t):.1f} chunks/s")

    rows = {}
    for v in VARIANTS:
        cos = (vecs[v] * vecs["torch"]).sum(1)
        rows[v] = {"seconds": round(seconds[v], 2), "chunks_per_s": round(len(texts) / seconds[v], 2),
                   "ratio": round(seconds["torch"] / seconds[v], 3),
                   "cos_min": round(float(cos.min()), 5), "cos_mean": round(float(cos.mean()), 5)}

    if not args.no_ndcg and args.docs >= len(col.corpus):
        from eval.ir_eval import evaluate_system
        from rag.index import Index

        with tempfile.TemporaryDirectory(prefix="assay-bench-embedding-") as work:
            cache = Path(work) / "cache"
            queries = col.judged_queries()
            for v in VARIANTS:  # the vectors measured above, through the cache: no model calls
                EmbeddingCache(cache, IndexConfig().embedder, v).put_many(texts, vecs[v])
                cfg = IndexConfig(encoder=v, embedding_cache=str(cache))
                index = Index.build(docs, Path(work) / v, cfg, progress=False)
                rows[v]["index_model_calls"] = index.last_update["model_calls"]  # chunks not among `texts`
                res = evaluate_system(index, col, queries, mode="dense")
                rows[v]["ndcg@10"] = round(res.metrics["ndcg@10"], 4)
                rows[v]["query_p50_ms"] = round(res.metrics["latency_p50_ms"], 1)
                log(f"{v}: dense nDCG@10 {res.metrics['ndcg@10']:.4f}")
                if v == "onnx-int8":  # int8 documents, queries by the exact (torch) encoder
                    index._embedder = Embedder(IndexConfig().embedder, encoder="torch", use_cache=False)
                    res = evaluate_system(index, col, queries, mode="dense")
                    rows[v]["ndcg@10_torch_queries"] = round(res.metrics["ndcg@10"], 4)
                    rows[v]["query_p50_ms_torch_queries"] = round(res.metrics["latency_p50_ms"], 1)

    result = {"documents": len(docs), "chunks": len(texts), "batch_size": args.batch_size,
              "threads": default_threads(), "export_s_first_call": round(export_s, 2), "variants": rows,
              "targets": {"ratio": 2.5, "cos_min": 0.99, "ndcg_delta": 0.005}}
    int8 = rows["onnx-int8"]
    result["meets_target"] = bool(int8["ratio"] >= 2.5 and int8["cos_min"] >= 0.99 and (
        "ndcg@10" not in int8 or abs(int8["ndcg@10"] - rows["torch"]["ndcg@10"]) <= 0.005))
    if args.json:
        print(json.dumps(result))
        return result
    print(f"Embedding {len(docs)} Cranfield documents = {len(texts)} chunks, batch {args.batch_size}, "
          f"{default_threads()} threads (model load and export excluded)")
    print(f"{'variant':<28}{'seconds':>9}{'chunks/s':>10}{'ratio':>8}{'cos min':>9}{'cos mean':>10}"
          f"{'nDCG@10':>9}{'q p50 ms':>10}")
    names = {"torch": "sentence-transformers", "onnx": "assay onnx (fp32)", "onnx-int8": "assay onnx-int8"}
    for v in VARIANTS:
        r = rows[v]
        print(f"{names[v]:<28}{r['seconds']:>9.2f}{r['chunks_per_s']:>10.1f}{r['ratio']:>7.2f}x{r['cos_min']:>9.4f}"
              f"{r['cos_mean']:>10.4f}{r.get('ndcg@10', float('nan')):>9.4f}{r.get('query_p50_ms', float('nan')):>10.1f}")
    if "ndcg@10_torch_queries" in int8:
        print(f"{'  int8 docs, torch queries':<28}{'':>9}{'':>10}{'':>8}{'':>9}{'':>10}"
              f"{int8['ndcg@10_torch_queries']:>9.4f}{int8['query_p50_ms_torch_queries']:>10.1f}")
    print(f"targets (onnx-int8): ratio >= 2.5x, every cosine >= 0.99, nDCG@10 within 0.005 of torch: "
          f"{'MET' if result['meets_target'] else 'NOT MET'}")
    return result


if __name__ == "__main__":
    main()
