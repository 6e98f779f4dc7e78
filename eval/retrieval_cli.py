"""`assay eval retrieval`: IR evaluation of assay retrieval on a BEIR-layout collection.

    assay eval retrieval --data DIR [--index DIR] [--mode bm25|dense|hybrid] [--rerank [llm|cross-encoder]]
                         [--hyde] [--k 100] [--limit N] [--split all|dev|test] [--compare] [--tune] [--json]

Imports nothing heavy until it runs; the work is done by eval/ir_eval.py.
"""

from __future__ import annotations

import argparse
import json
import sys

from core.errors import UserError
from core.options import NON_NEGATIVE_INT, POSITIVE_INT


def register(esub: argparse._SubParsersAction) -> None:
    p = esub.add_parser(
        "retrieval",
        help="IR evaluation (nDCG@10, Recall@100, MRR@10, MAP@100, latency) on a BEIR-layout collection",
        description="Evaluate assay retrieval on DIR/corpus.jsonl, DIR/queries.jsonl and DIR/qrels/<qrels>.tsv. "
        "The corpus is indexed once into --index (default: a cache directory keyed by the collection and the "
        "index settings) and reused later; an existing index is updated incrementally by content hash. "
        "Metrics follow trec_eval's conventions; latency is per query, each query searched on its own.",
    )
    p.add_argument("--data", required=True, metavar="DIR|NAME",
                   help="BEIR collection directory, or a built-in collection's name (%s), "
                   "read from $ASSAY_SHARED_DATA (else shared/data beside the checkout)" % ", ".join(BUILTIN_COLLECTIONS))
    p.add_argument("--qrels", default="test", metavar="SPLIT", help="qrels file DIR/qrels/SPLIT.tsv (default: test)")
    p.add_argument("--index", default=None, metavar="DIR", help="index directory to build or reuse")
    p.add_argument("--mode", choices=("bm25", "dense", "hybrid"), default="hybrid", help="retrieval mode (default: hybrid)")
    p.add_argument("--rerank", nargs="?", const="llm", default=None, choices=("llm", "cross-encoder"),
                   help="rerank the top candidates (default kind: llm, SmolLM2-135M-Instruct)")
    p.add_argument("--rerank-model", default=None, metavar="M", help="reranker model name, path or hub id")
    p.add_argument("--rerank-depth", type=int, default=None, metavar="N", help="candidates reranked per query")
    p.add_argument("--rerank-combine", choices=("replace", "rrf", "convex"), default=None,
                   help="how the reranker's score meets the first-stage ranking (default: rerank config default)")
    p.add_argument("--rerank-weight", type=float, default=None, metavar="W",
                   help="reranker weight for --rerank-combine rrf/convex")
    p.add_argument("--hyde", action="store_true", help="HyDE for the dense side (SmolLM2-135M-Instruct by default)")
    p.add_argument("--hyde-model", default=None, metavar="M", help="HyDE model name, path or hub id")
    p.add_argument("--k", type=POSITIVE_INT, default=100, help="documents retrieved per query (default: 100)")
    p.add_argument("--limit", type=POSITIVE_INT, default=None, metavar="N", help="evaluate only the first N judged queries")
    p.add_argument("--split", choices=("all", "dev", "test"), default="all",
                   help="all judged queries, or the seeded dev/test half (see --split-seed)")
    p.add_argument("--split-seed", type=int, default=0, help="seed of the dev/test split (default: 0)")
    p.add_argument("--embedder", default=None, help="embedder for a new index (default: all-MiniLM-L6-v2)")
    p.add_argument("--chunk-size", type=POSITIVE_INT, default=None, help="chunk size for a new index")
    p.add_argument("--chunk-overlap", type=NON_NEGATIVE_INT, default=None, help="chunk overlap for a new index")
    p.add_argument("--fusion", choices=("rrf", "convex"), default=None, help="hybrid fusion method (default: the index's)")
    p.add_argument("--rrf-k", type=int, default=None, help="RRF constant k")
    p.add_argument("--normalization", choices=("minmax", "zscore"), default=None,
                   help="score normalization for --fusion convex")
    p.add_argument("--weights", default=None, metavar="bm25=W,dense=W", help="hybrid fusion weights")
    p.add_argument("--depth", type=int, default=None, metavar="N", help="candidates per retriever fed into fusion")
    p.add_argument("--compare", action="store_true",
                   help="run BM25, dense, hybrid and the rank-bm25 reference (and rerank/HyDE when asked) side by side")
    p.add_argument("--tune", action="store_true",
                   help="choose hybrid fusion (method, k, weights) on the seeded dev half of the judged queries, "
                   "report dev and test, and record the choice in the index manifest as its default fusion")
    p.add_argument("--per-query", metavar="FILE", default=None, help="also write per-query metrics as JSONL")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    from rag.qdrant_store import add_arguments

    add_arguments(p)  # --backend qdrant without a location: local mode under assay's cache directory
    p.set_defaults(handler=run)


class RetrievalCliError(UserError, ValueError):
    pass


BUILTIN_COLLECTIONS = ("cranfield", "gsm8k", "math500", "aime24", "amc23")


def collection_dir(data: str) -> str:
    """`--data`: an existing directory as given, or a built-in name in the shared data root."""
    from pathlib import Path

    if Path(data).exists() or data not in BUILTIN_COLLECTIONS:
        return data
    from core.files import shared_data_root

    root = shared_data_root()
    if not (root / data).is_dir():
        raise RetrievalCliError(f"--data {data}: the built-in collection is not at {root / data} "
                                f"(set $ASSAY_SHARED_DATA to the folder that holds {data}/)")
    return str(root / data)


def _fusion(args, index):
    if all(v is None for v in (args.fusion, args.rrf_k, args.weights, args.normalization, args.depth)):
        return None
    import dataclasses

    base = index.config.fusion
    changes = {}
    if args.fusion is not None:
        changes["method"] = args.fusion
    if args.rrf_k is not None:
        changes["rrf_k"] = args.rrf_k
    if args.normalization is not None:
        changes["normalization"] = args.normalization
    if args.depth is not None:
        changes["depth"] = {name: args.depth for name in base.depth}
    if args.weights is not None:
        weights = dict(base.weights)
        for part in args.weights.split(","):
            name, _, value = part.partition("=")
            try:
                weights[name.strip()] = float(value)
            except ValueError:
                raise RetrievalCliError(f"--weights: expected name=number pairs, got {part!r}") from None
        changes["weights"] = weights
    return dataclasses.replace(base, **changes)


def _tune(args, col, index, fusion) -> int:
    from eval import fusion_tune

    if args.compare or args.rerank or args.hyde or args.mode != "hybrid" or args.per_query:
        raise RetrievalCliError("--tune tunes hybrid fusion alone; drop --compare, --mode, --rerank, --hyde and --per-query")
    from rag import IndexConfig

    base = fusion or IndexConfig.from_dict(index.manifest["config"]).fusion  # what search did until now
    result = fusion_tune.tune_index(index, col, seed=args.split_seed, limit=args.limit, base=base,
                                    config=fusion_tune.TuneConfig(k_docs=args.k))
    if args.json:
        print(json.dumps({"index": str(index.directory), **result.record()}, indent=2))
    else:
        print(f"{col.root}: {len(col.corpus)} documents, index {index.directory} ({len(index)} chunks)")
        print(fusion_tune.format_result(result))
        print(f"recorded in {index.directory}/manifest.json: `assay search --index {index.directory}` and "
              "Index.search use it by default")
    return 0


def run(args: argparse.Namespace) -> int:
    from eval import beir, ir_eval

    progress = not args.no_progress and not args.json and sys.stderr.isatty()
    if args.k < 1:
        raise RetrievalCliError("--k must be at least 1")
    col = beir.load(collection_dir(args.data), args.qrels)
    for w in col.warnings:
        print(f"assay eval retrieval: warning: {w}", file=sys.stderr)
    queries = ir_eval.select_queries(col, args.split, seed=args.split_seed, limit=args.limit)
    if not queries:
        raise RetrievalCliError("no judged queries to evaluate")

    from rag import IndexConfig

    config = IndexConfig()
    if args.embedder:
        config.embedder = args.embedder
    if args.chunk_size is not None or args.chunk_overlap is not None:
        import dataclasses

        ch = config.chunking
        config.chunking = dataclasses.replace(
            ch, chunk_size=args.chunk_size if args.chunk_size is not None else ch.chunk_size,
            chunk_overlap=args.chunk_overlap if args.chunk_overlap is not None else min(ch.chunk_overlap, (
                args.chunk_size or ch.chunk_size) // 5))
    from core.models import cache_dir
    from rag.qdrant_store import apply_arguments

    config = apply_arguments(config, args, default_path=str(cache_dir() / "qdrant"))
    directory = args.index
    if directory is None and config.backend != "faiss":
        directory = f"{ir_eval.default_index_dir(col, config)}-{config.backend}"
    index = ir_eval.corpus_index(col, directory, config, progress=progress)
    fusion = _fusion(args, index)
    if args.tune:
        return _tune(args, col, index, fusion)

    reranker = hyde = None
    if args.rerank:
        from rag.rerank import make_reranker

        opts = {}
        if args.rerank_depth is not None:
            opts["depth"] = args.rerank_depth
        if args.rerank_combine is not None:
            opts["combine"] = args.rerank_combine
        if args.rerank_weight is not None:
            opts["weight"] = args.rerank_weight
        reranker = make_reranker(args.rerank, args.rerank_model, **opts)
    if args.hyde:
        from rag.hyde import make_hyde

        hyde = make_hyde(args.hyde_model)

    if args.compare:
        results = ir_eval.compare(index, col, queries, k=args.k, rerank=reranker, hyde=hyde, fusion=fusion,
                                  progress=progress)
    else:
        name = args.mode + ("+hyde" if hyde else "") + ("+rerank" if reranker else "")
        results = {name: ir_eval.evaluate_system(index, col, queries, mode=args.mode, k=args.k, rerank=reranker,
                                                 hyde=hyde, fusion=fusion, name=name, progress=progress)}
    if args.per_query:
        from core.files import atomic_open

        with atomic_open(args.per_query) as fh:
            for name, r in results.items():
                for qid, vals in r.per_query.items():
                    fh.write(json.dumps({"configuration": name, "query_id": qid, **vals}) + "\n")
    if args.json:
        if args.compare:
            print(json.dumps({name: r.to_dict() for name, r in results.items()}, indent=2))
        else:
            print(json.dumps(next(iter(results.values())).to_dict(), indent=2))
        return 0
    print(f"{col.root}: {len(queries)} queries ({args.split}), {len(col.corpus)} documents, "
          f"index {index.directory} ({len(index)} chunks)")
    print(ir_eval.format_table(results))
    return 0
