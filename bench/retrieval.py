"""Retrieval quality and latency on Cranfield: BM25, dense, hybrid, the rank-bm25 reference,
LLM reranking, HyDE and a cross-encoder's cost — side by side in one run.

    assay bench retrieval                       # or: python bench/retrieval.py
    assay bench retrieval --quick               # fusion tuning + side by side, no LMs

Nothing is tuned on the reported queries. The judged queries are split by a seeded shuffle
into a dev half (tuning) and a test half (reporting); every choice below — chunking,
fusion method/k/weights/depth, the reranker's combination and weight, HyDE's query
weight — is made on dev, and the tables report the test half only.

1. Indexes: one per chunking in --chunkings (size:overlap in characters), built once into
   ~/.cache/assay/bench/ and reused (the index is incremental by content hash).
2. Dev tuning: BM25 and dense candidate lists are computed once per index; fusion settings
   are scored with rag.fusion.fuse itself, so the winner is a FusionConfig as-is.
3. Test, side by side: bm25, dense, hybrid with the default IndexConfig/FusionConfig,
   rank-bm25 (reference, same chunks and tokens), and hybrid with the dev-chosen
   chunking + fusion. Each query is searched alone and timed.
4. LLM reranker (SmolLM2-135M-Instruct yes/no judge) on the tuned hybrid: pair scores for
   the top --rerank-depth are computed once per query; "replace" (judge alone) and fusion
   with the first-stage rank (rrf / convex, weight chosen on dev) are compared on the
   same test queries. LM work is slow on 2 CPU cores, so it runs on the first
   --lm-queries queries of each half (the hybrid baseline is reported on the same ones).
5. HyDE on the dense side of the tuned hybrid: passages are generated once (batched; the
   generation time is added to each query's latency), the query weight is chosen on dev.
6. Cross-encoder: no trained cross-encoder ships offline, so only its cost is measured —
   a MiniLM-L6-sized BERT cross-encoder (the packaged all-MiniLM-L6-v2 encoder with an
   untrained head) scoring --rerank-depth pairs per query. Quality: not measurable here.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from core.files import shared_data_root  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="assay bench retrieval", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=str(shared_data_root() / "cranfield"))
    p.add_argument("--chunkings", default="1000:200,5000:0",
                   help="candidate chunkings size:overlap (chars); the first must be the IndexConfig default")
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--lm-queries", type=int, default=30, help="queries per half for the LLM reranker and HyDE")
    p.add_argument("--rerank-depth", type=int, default=10)
    p.add_argument("--rerank-passage-tokens", type=int, default=128)
    p.add_argument("--no-rerank", action="store_true")
    p.add_argument("--no-hyde", action="store_true")
    p.add_argument("--no-cross-encoder", action="store_true")
    p.add_argument("--quick", action="store_true", help="no LM stages (tuning + side by side only)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    p.add_argument("--json", default=None, metavar="FILE", help="write all figures as JSON")
    return p.parse_args(argv)


# ---- helpers ---------------------------------------------------------------------------
def docs_from_positions(items, chunks, k=100):
    seen = {}
    for item in items:
        seen.setdefault(chunks[item[0]].doc_id, None)
        if len(seen) >= k:
            break
    return list(seen)


def ndcg(col, ranked, metrics=("ndcg@10",)):
    from eval import ir_metrics

    qrels = {q: col.qrels[q] for q in ranked}
    return ir_metrics.evaluate(qrels, ir_metrics.run_from_ranked(ranked), metrics)


def fusion_grid():
    from rag.fusion import FusionConfig

    grid = [FusionConfig()]
    for k, wb, depth in itertools.product([10, 30, 60, 100], [0.5, 0.7, 1.0, 1.4, 2.0], [50, 100, 200]):
        grid.append(FusionConfig(method="rrf", rrf_k=k, weights={"bm25": wb, "dense": 1.0},
                                 depth={"bm25": depth, "dense": depth}))
    for norm, wb, depth in itertools.product(["minmax", "zscore"], [0.3, 0.4, 0.5, 0.6, 0.7], [50, 100, 200]):
        grid.append(FusionConfig(method="convex", normalization=norm, weights={"bm25": wb, "dense": round(1 - wb, 2)},
                                 depth={"bm25": depth, "dense": depth}))
    return grid


def describe_fusion(f):
    if f.method == "rrf":
        return f"rrf k={f.rrf_k} w_bm25={f.weights['bm25']} w_dense={f.weights['dense']} depth={f.depth['bm25']}"
    return f"convex {f.normalization} w_bm25={f.weights['bm25']} w_dense={f.weights['dense']} depth={f.depth['bm25']}"


def main(argv=None):
    args = parse_args(argv)
    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from core.models import cache_dir
    from eval import beir, ir_eval
    from rag import IndexConfig
    from rag.chunking import ChunkConfig
    from rag.fusion import FusionConfig, fuse

    out = {"command": "assay bench retrieval " + " ".join(argv if argv is not None else sys.argv[1:]),
           "load_average_start": os.getloadavg(), "torch_threads": torch.get_num_threads()}
    col = beir.load(args.data)
    dev = ir_eval.select_queries(col, "dev", seed=args.split_seed)
    test = ir_eval.select_queries(col, "test", seed=args.split_seed)
    out["split"] = {"seed": args.split_seed, "dev": len(dev), "test": len(test)}
    log(f"{len(col.corpus)} docs; dev {len(dev)} / test {len(test)} queries (seed {args.split_seed})")

    # 1. indexes -----------------------------------------------------------------------
    chunkings = [tuple(int(x) for x in c.split(":")) for c in args.chunkings.split(",")]
    indexes, build = {}, {}
    for size, ov in chunkings:
        cfg = IndexConfig(chunking=ChunkConfig(chunk_size=size, chunk_overlap=ov))
        t0 = time.perf_counter()
        idx = ir_eval.corpus_index(col, cache_dir() / "bench" / f"cranfield-c{size}-o{ov}", cfg, progress=False)
        build[f"{size}:{ov}"] = {"seconds": round(time.perf_counter() - t0, 1), "chunks": len(idx),
                                 "model_calls": idx.embedder.model_calls}
        indexes[(size, ov)] = idx
        log(f"index {size}:{ov}: {len(idx)} chunks ({build[f'{size}:{ov}']})")
    out["indexes"] = build
    default_key = chunkings[0]
    if default_key != (ChunkConfig().chunk_size, ChunkConfig().chunk_overlap):
        log("note: the first chunking is not the IndexConfig default")

    # 2. dev tuning of chunking x fusion ----------------------------------------------------
    grid = fusion_grid()
    tuning = []
    cand = {}
    for key, idx in indexes.items():
        qids = list(dev) + list(test)
        texts = [col.queries[q] for q in qids]
        bm = idx.bm25.search_many(texts, 400)
        de = idx.dense_search_vectors(idx.embedder.encode(texts, cache=False), 400)
        cand[key] = {q: (bm[i], de[i]) for i, q in enumerate(qids)}
        chunks = idx.chunks
        for f in grid:
            ranked = {q: docs_from_positions(fuse({"bm25": cand[key][q][0], "dense": cand[key][q][1]}, f, 30), chunks)
                      for q in dev}
            tuning.append((ndcg(col, ranked)["ndcg@10"], key, f))
    best_score, best_key, best_fusion = max(tuning, key=lambda t: t[0])
    default_dev = next(s for s, k, f in tuning if k == default_key and f == FusionConfig())
    out["dev_tuning"] = {
        "grid_size": len(grid) * len(indexes),
        "default": {"chunking": f"{default_key[0]}:{default_key[1]}", "fusion": describe_fusion(FusionConfig()),
                    "dev_ndcg@10": round(default_dev, 4)},
        "best": {"chunking": f"{best_key[0]}:{best_key[1]}", "fusion": describe_fusion(best_fusion),
                 "dev_ndcg@10": round(best_score, 4)},
        "top5": [{"chunking": f"{k[0]}:{k[1]}", "fusion": describe_fusion(f), "dev_ndcg@10": round(s, 4)}
                 for s, k, f in sorted(tuning, key=lambda t: -t[0])[:5]],
        "default_fusion_on_each_chunking": {f"{k[0]}:{k[1]}": round(s, 4) for s, k, f in tuning if f == FusionConfig()},
    }
    log("dev tuning:", json.dumps(out["dev_tuning"], indent=1))

    # 3. test, side by side --------------------------------------------------------------
    idx0, idxb = indexes[default_key], indexes[best_key]
    for i in (idx0, idxb):  # warm up: model load, first-call costs
        i.search("warm up query", k=10)
    side = {}
    side["bm25"] = ir_eval.evaluate_system(idx0, col, test, mode="bm25", name="bm25")
    side["dense"] = ir_eval.evaluate_system(idx0, col, test, mode="dense", name="dense")
    side["hybrid"] = ir_eval.evaluate_system(idx0, col, test, mode="hybrid", name="hybrid")
    side["rank-bm25"] = ir_eval.evaluate_rank_bm25(idx0, col, test)
    side["hybrid-tuned"] = ir_eval.evaluate_system(idxb, col, test, mode="hybrid", fusion=best_fusion,
                                                   name="hybrid-tuned")
    if best_key != default_key:
        side["bm25 (tuned chunks)"] = ir_eval.evaluate_system(idxb, col, test, mode="bm25")
        side["dense (tuned chunks)"] = ir_eval.evaluate_system(idxb, col, test, mode="dense")
    table = {n: {k: (round(v, 4) if isinstance(v, float) else v) for k, v in r.to_dict().items()}
             for n, r in side.items()}
    best_single = max(table["bm25"]["ndcg@10"], table["dense"]["ndcg@10"])
    out["test"] = table
    out["test_summary"] = {
        "hybrid_default_ndcg@10": table["hybrid"]["ndcg@10"],
        "gain_over_best_single": round(table["hybrid"]["ndcg@10"] / best_single - 1, 4),
        "hybrid_latency_p50_ms": table["hybrid"]["latency_p50_ms"],
        "hybrid_cpu_p50_ms": table["hybrid"].get("cpu_p50_ms"),
        "bm25_vs_rank_bm25_qps": round(table["bm25"]["qps"] / table["rank-bm25"]["qps"], 1),
        "bm25_same_ranking_as_rank_bm25": side["bm25"].run == side["rank-bm25"].run,
    }
    log(ir_eval.format_table(side))
    log(json.dumps(out["test_summary"]))

    if args.quick:
        args.no_rerank = args.no_hyde = args.no_cross_encoder = True
    n_lm = args.lm_queries
    dev_lm = dict(list(dev.items())[:n_lm])
    test_lm = dict(list(test.items())[:n_lm])
    k_chunks = int(np.ceil(100 * max(1.0, len(idxb) / len(idxb.doc_ids))))

    def first_stage(idx, queries, fusion, hyde=None):
        hits, lat = {}, {}
        for q, text in queries.items():
            t0 = time.perf_counter()
            hits[q] = idx.search(text, k=k_chunks, mode="hybrid", fusion=fusion, hyde=hyde)
            lat[q] = (time.perf_counter() - t0) * 1000
        return hits, lat

    def ranked_docs(hit_lists):
        return {q: ir_eval.hits_to_docs(h, 100) for q, h in hit_lists.items()}

    def metrics_of(ranked):
        return {k: round(v, 4) for k, v in ndcg(col, ranked, ir_eval.METRICS).items()}

    # 4. LLM reranker --------------------------------------------------------------------
    if not args.no_rerank:
        from rag.rerank import RerankConfig, make_reranker

        rr = make_reranker("llm", depth=args.rerank_depth, max_passage_tokens=args.rerank_passage_tokens)
        rr.score_pairs("warm up", ["warm up passage"])
        res = {}
        for split, queries in (("dev", dev_lm), ("test", test_lm)):
            hits, lat = first_stage(idxb, queries, best_fusion)
            raw, rr_ms = {}, {}
            for q, text in queries.items():
                t0 = time.perf_counter()
                raw[q] = rr.score_pairs(text, [h.chunk.text for h in hits[q][: rr.depth]])
                rr_ms[q] = (time.perf_counter() - t0) * 1000
            log(f"rerank {split}: {len(queries)} queries, {np.mean(list(rr_ms.values())):.0f} ms/query")
            res[split] = (hits, lat, raw, rr_ms)
        variants = [RerankConfig(combine="replace")]  # the judge alone
        variants += [RerankConfig(combine=c, weight=w) for c in ("rrf", "convex") for w in (0.2, 0.3, 0.5, 0.7)]

        def rerank_run(split, cfg):
            hits, _, raw, _ = res[split]
            return {q: ir_eval.hits_to_docs(rr.apply(hits[q], raw[q], config=cfg), 100) for q in hits}

        dev_scores = [(metrics_of(rerank_run("dev", v))["ndcg@10"], v) for v in variants]
        best_v = max(dev_scores[1:], key=lambda t: t[0])[1]  # best fused variant
        hits_t, lat_t, _, rr_ms_t = res["test"]
        lat_first = list(lat_t.values())
        lat_rr = [lat_t[q] + rr_ms_t[q] for q in lat_t]
        # check: the real search path (index.search(rerank=...)) gives the same order
        q0 = next(iter(test_lm))
        real = idxb.search(test_lm[q0], k=k_chunks, mode="hybrid", fusion=best_fusion,
                           rerank=make_reranker("llm", depth=args.rerank_depth,
                                                max_passage_tokens=args.rerank_passage_tokens,
                                                model_obj=rr.model, tokenizer=rr.tokenizer))
        same = [h.chunk.id for h in real[:20]] == [h.chunk.id for h in rr.apply(hits_t[q0], res["test"][2][q0])[:20]]
        out["llm_rerank"] = {
            "model": rr.config.model, "depth": rr.depth, "max_passage_tokens": rr.config.max_passage_tokens,
            "queries_per_half": len(test_lm),
            "dev_ndcg@10": {"no rerank": metrics_of(ranked_docs(res["dev"][0]))["ndcg@10"],
                            **{("replace" if v.combine == "replace" else f"{v.combine} w={v.weight}"): s
                               for s, v in dev_scores}},
            "chosen_on_dev": f"{best_v.combine} w={best_v.weight}",
            "real_search_path_matches": same,
            "test": {
                "hybrid-tuned": {**metrics_of(ranked_docs(hits_t)), **ir_eval.latency_stats(lat_first)},
                "+rerank (judge alone)": {**metrics_of(rerank_run("test", variants[0])),
                                          **ir_eval.latency_stats(lat_rr)},
                f"+rerank ({best_v.combine} w={best_v.weight}, chosen on dev)":
                    {**metrics_of(rerank_run("test", best_v)), **ir_eval.latency_stats(lat_rr)},
            },
        }
        log(json.dumps(out["llm_rerank"], indent=1))
        del rr

    # 5. HyDE ----------------------------------------------------------------------------
    if not args.no_hyde:
        from rag.hyde import HyDE, HyDEConfig

        hyde = HyDE(HyDEConfig())
        t0 = time.perf_counter()
        hyde.generate(list(dev_lm.values()) + list(test_lm.values()))
        gen_ms = (time.perf_counter() - t0) * 1000 / (len(dev_lm) + len(test_lm))
        log(f"hyde: {gen_ms:.0f} ms/query generation (batched {hyde.config.batch_size})")
        weights = [0.0, 0.3, 0.5, 0.7]
        base_dev, _ = first_stage(idxb, dev_lm, best_fusion)
        dense_dev = {q: docs_from_positions(idxb.dense_search_vectors(idxb.embedder.encode_query(t)[None], k_chunks)[0],
                                            idxb.chunks) for q, t in dev_lm.items()}
        dev_h = {"no hyde": {"hybrid": metrics_of(ranked_docs(base_dev))["ndcg@10"],
                             "dense": metrics_of(dense_dev)["ndcg@10"]}}
        for w in weights:
            h = hyde.with_config(query_weight=w, include_query=w > 0)
            hits, _ = first_stage(idxb, dev_lm, best_fusion, hyde=h)
            dense = {q: docs_from_positions(idxb.dense_search_vectors(h.query_vector(t, idxb.embedder)[None], k_chunks)[0],
                                            idxb.chunks) for q, t in dev_lm.items()}
            dev_h[w] = {"hybrid": metrics_of(ranked_docs(hits))["ndcg@10"], "dense": metrics_of(dense)["ndcg@10"]}
        best_w = max(weights, key=lambda w: dev_h[w]["hybrid"])
        h = hyde.with_config(query_weight=best_w, include_query=best_w > 0)
        base_hits, base_lat = first_stage(idxb, test_lm, best_fusion)
        hy_hits, hy_lat = first_stage(idxb, test_lm, best_fusion, hyde=h)
        dense_base = {q: docs_from_positions(idxb.dense_search_vectors(idxb.embedder.encode_query(t)[None], k_chunks)[0],
                                             idxb.chunks) for q, t in test_lm.items()}
        dense_hy = {q: docs_from_positions(idxb.dense_search_vectors(h.query_vector(t, idxb.embedder)[None], k_chunks)[0],
                                           idxb.chunks) for q, t in test_lm.items()}
        out["hyde"] = {
            "model": hyde.config.model, "max_new_tokens": hyde.config.max_new_tokens,
            "queries_per_half": len(test_lm), "generation_ms_per_query_batched": round(gen_ms, 1),
            "dev_ndcg@10_by_query_weight": dev_h, "query_weight_chosen_on_dev": best_w,
            "example": {"query": next(iter(test_lm.values())), "passage": hyde.generate([next(iter(test_lm.values()))])[0][0]},
            "test": {
                "dense": metrics_of(dense_base),
                "dense+hyde": metrics_of(dense_hy),
                "hybrid-tuned": {**metrics_of(ranked_docs(base_hits)), **ir_eval.latency_stats(list(base_lat.values()))},
                "hybrid-tuned+hyde": {**metrics_of(ranked_docs(hy_hits)),
                                      **ir_eval.latency_stats([x + gen_ms for x in hy_lat.values()])},
            },
        }
        log(json.dumps(out["hyde"], indent=1))

    # 6. cross-encoder cost ----------------------------------------------------------------
    if not args.no_cross_encoder:
        import tempfile

        from transformers import (
            AutoTokenizer,
            BertConfig,
            BertForSequenceClassification,
        )

        from core.models import resolve
        from rag.rerank import make_reranker

        with tempfile.TemporaryDirectory() as tmp:
            src = resolve("all-MiniLM-L6-v2")
            cfg = BertConfig.from_pretrained(src, num_labels=1)
            model = BertForSequenceClassification.from_pretrained(src, config=cfg)
            model.save_pretrained(tmp)
            AutoTokenizer.from_pretrained(src).save_pretrained(tmp)
            ce = make_reranker("cross-encoder", tmp, depth=args.rerank_depth, batch_size=32, max_length=256)
            ce.score_pairs("warm up", ["warm up"])
            hits, lat = first_stage(idxb, test_lm, best_fusion)
            ms = []
            for q, text in test_lm.items():
                t0 = time.perf_counter()
                ce.rerank(text, hits[q])
                ms.append((time.perf_counter() - t0) * 1000)
            out["cross_encoder_cost"] = {
                "model": "MiniLM-L6 BERT cross-encoder (untrained head: latency only)", "depth": args.rerank_depth,
                "rerank_ms_p50": round(float(np.percentile(ms, 50)), 1),
                "rerank_ms_p95": round(float(np.percentile(ms, 95)), 1),
                "ms_per_pair": round(float(np.mean(ms)) / args.rerank_depth, 2)}
            log(json.dumps(out["cross_encoder_cost"]))

    out["load_average_end"] = os.getloadavg()
    print(json.dumps(out, indent=2, default=str))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
