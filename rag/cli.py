"""`assay index` and `assay search`: thin wrappers over rag.Index (imported lazily)."""

from __future__ import annotations

import argparse
import json
import sys

from core.errors import UserError
from core.options import NON_NEGATIVE_FLOAT, NON_NEGATIVE_INT, POSITIVE_INT


def register(sub: argparse._SubParsersAction) -> None:
    """Add this package's subcommands to the `assay` parser."""
    p = sub.add_parser(
        "index",
        help="build or incrementally update a retrieval index from files/directories/JSONL",
        description="Index .txt .md .rst .html .pdf files, directories of them, and BEIR-style "
        "JSONL corpora. Running it again on the same --index updates it incrementally: new and "
        "changed documents are embedded, removed ones dropped, the rest untouched. One writer at a "
        "time: a second one waits for the first (see --lock-timeout). Every file is checksummed; "
        "a damaged index is reported, and --rebuild recreates it.",
    )
    p.add_argument("paths", nargs="*", metavar="PATH", help="files, directories or .jsonl corpora")
    p.add_argument("--index", required=True, metavar="DIR", help="index directory")
    p.add_argument("--chunk-size", type=POSITIVE_INT, default=None, help="largest chunk (default 1000)")
    p.add_argument("--chunk-overlap", type=NON_NEGATIVE_INT, default=None, help="overlap between chunks (default 200)")
    p.add_argument("--chunk-unit", choices=["chars", "tokens"], default=None,
                   help="measure chunks in characters or embedder tokens (default chars)")
    p.add_argument("--embedder", default=None, help="sentence-transformers model (default all-MiniLM-L6-v2)")
    p.add_argument("--embedder-backend", choices=["auto", "onnx-int8", "onnx", "torch"], default=None,
                   help="how the embedder runs: ONNX Runtime int8 or fp32, or torch (sentence-transformers); "
                   "default auto = onnx-int8 on CPU where the model supports it, else torch. An index keeps "
                   "the backend it was built with (changing it needs --rebuild)")
    p.add_argument("--faiss", choices=["flat", "hnsw", "ivfpq"], default=None,
                   help="dense index type (default flat = exact)")
    p.add_argument("--batch-size", type=POSITIVE_INT, default=None, help="embedding batch size (default 32)")
    p.add_argument("--no-cache", action="store_true", help="do not use the on-disk embedding cache")
    p.add_argument("--rebuild", action="store_true",
                   help="rebuild from scratch (needed to change embedder or chunking, or to repair a "
                   "damaged index, even one whose manifest.json is gone)")
    p.add_argument("--verify", action="store_true",
                   help="hash every file of the index against its checksums first (without PATHs: only that)")
    p.add_argument("--lock-timeout", type=NON_NEGATIVE_FLOAT, default=None, metavar="SECONDS",
                   help="how long to wait while another process writes the index "
                   "(default $ASSAY_INDEX_LOCK_TIMEOUT or 600)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="read, chunk and embed on a Ray cluster (ADDRESS, else $RAY_ADDRESS, a running cluster "
                        "or a new local one); the index is then updated here from the embedding cache")
    from rag.qdrant_store import add_arguments

    add_arguments(p)
    p.set_defaults(handler=_index)

    s = sub.add_parser("search", help="search an index (BM25, dense or hybrid; optional rerank/HyDE)")
    s.add_argument("query", nargs="?", help="the query text")
    s.add_argument("--index", required=True, metavar="DIR", help="index directory")
    s.add_argument("--k", type=POSITIVE_INT, default=10, help="number of results (default 10)")
    s.add_argument("--mode", choices=["hybrid", "bm25", "dense"], default="hybrid", help="default hybrid")
    s.add_argument("--rerank", nargs="?", const="llm", default=None, metavar="KIND",
                   help="rerank the top candidates (llm [default] or cross-encoder); "
                   "`--rerank \"a query\"` reranks with llm and searches for the query")
    s.add_argument("--rerank-model", default=None, help="model for --rerank")
    s.add_argument("--hyde", action="store_true", help="embed a hypothetical answer passage (HyDE)")
    s.add_argument("--fusion", choices=["rrf", "convex"], default=None, help="hybrid fusion method")
    s.add_argument("--embedder", default=None, help="fail unless the index was built with this embedder")
    s.add_argument("--snippet", type=NON_NEGATIVE_INT, default=160, help="snippet width in characters (default 160)")
    s.add_argument("--json", action="store_true", help="print one JSON object")
    add_arguments(s)
    s.set_defaults(handler=_search)


def _index(args: argparse.Namespace) -> int:
    import dataclasses
    from pathlib import Path

    from rag.chunking import ChunkConfig
    from rag.dense import DenseConfig
    from rag.index import (
        Index,
        IndexConfig,
        IndexDirectoryError,
        read_manifest,
        verify_index,
    )

    directory = Path(args.index)
    if args.verify:
        report = verify_index(directory)
        if report["checksummed"]:
            line = (f"{directory}: ok ({report['version']}: {report['files']} files, "
                    f"{report['bytes'] / 1e6:.1f} MB verified in {report['seconds']:.2f}s)")
        else:
            line = f"{directory}: ok, but it has no checksums (written by an older assay; its next update adds them)"
        print(json.dumps({"verify": report}) if args.json and not args.paths else line,
              file=sys.stdout if not args.paths else sys.stderr)
        if not args.paths:
            return 0
    elif not args.paths:
        raise IndexDirectoryError("give at least one PATH to index (or --verify to check the index)")
    existing = (directory / "manifest.json").exists() and not args.rebuild
    if existing:
        base = IndexConfig.from_dict(read_manifest(directory)["config"])
    else:
        base = IndexConfig()
    chunking = base.chunking
    updates = {k: v for k, v in (("chunk_size", args.chunk_size), ("chunk_overlap", args.chunk_overlap),
                                 ("chunk_unit", args.chunk_unit)) if v is not None}
    if "chunk_size" in updates and "chunk_overlap" not in updates and chunking.chunk_overlap >= updates["chunk_size"]:
        updates["chunk_overlap"] = updates["chunk_size"] // 5  # keep the default's proportion
    if updates:
        chunking = ChunkConfig(**{**dataclasses.asdict(chunking), **updates})
    dense = DenseConfig(**{**dataclasses.asdict(base.dense), "kind": args.faiss}) if args.faiss else base.dense
    config = dataclasses.replace(
        base, chunking=chunking, dense=dense,
        embedder=args.embedder or base.embedder,
        encoder=args.embedder_backend or base.encoder,
        batch_size=args.batch_size or base.batch_size,
        use_embedding_cache=not args.no_cache and base.use_embedding_cache)
    from rag.qdrant_store import apply_arguments

    config = apply_arguments(config, args)
    ray_stats = embedder = None
    if args.ray is not None:
        from rag.ray_embed import RayEmbedConfig, embed_on_ray

        embedder, ray_stats = embed_on_ray(args.paths, config, RayEmbedConfig(address=args.ray or None))
    index = Index.build(args.paths, directory, config, progress=not args.quiet and not args.json,
                        rebuild=args.rebuild, lock_timeout=args.lock_timeout, embedder=embedder)
    stats = {**index.last_update, "index": str(directory), "backend": index.config.backend, "embedder": index.config.embedder,
             "embedder_backend": index.config.encoder, "embedder_backend_reason": index.embedder.encoder_reason,
             "faiss": index.config.dense.kind, "total_documents": len(index.doc_ids), "total_chunks": len(index)}
    if ray_stats is not None:
        stats["ray"] = ray_stats
    if args.json:
        print(json.dumps(stats))
    else:
        print(f"{directory}: {stats['total_documents']} documents, {stats['total_chunks']} chunks "
              f"(added {stats['added']}, changed {stats['changed']}, removed {stats['removed']}, "
              f"unchanged {stats['unchanged']}; skipped {stats['skipped']} unreadable files; "
              f"embedded {stats['chunks_embedded']} chunks, {stats['model_calls']} by the model) "
              f"in {stats['seconds']:.2f}s")
    return 0


RERANK_KINDS = ("llm", "cross-encoder")


class SearchArgumentError(UserError, ValueError):
    pass


def _query_and_rerank(query: str | None, rerank: str | None) -> tuple[str, str | None]:
    """`--rerank` takes an optional KIND, so `--rerank "a query"` puts the query there:
    a value that is not a kind is the query when no other query was given."""
    if rerank is not None and rerank not in RERANK_KINDS:
        if query is not None:
            raise SearchArgumentError(f"--rerank: unknown kind {rerank!r}; use {' or '.join(RERANK_KINDS)}")
        query, rerank = rerank, "llm"
    if query is None:
        raise SearchArgumentError("the query text is required: assay search \"QUERY\" --index DIR")
    return query, rerank


def _search(args: argparse.Namespace) -> int:
    import dataclasses
    import time

    args.query, args.rerank = _query_and_rerank(args.query, args.rerank)
    from rag.documents import snippet
    from rag.index import Index
    from rag.qdrant_store import search_location

    index = Index.open(args.index, embedder=args.embedder, location=search_location(args, args.index))
    reranker = None
    if args.rerank:
        from rag.rerank import make_reranker

        reranker = make_reranker(kind=args.rerank, model=args.rerank_model)
    hyde = None
    if args.hyde:
        from rag.hyde import HyDE

        hyde = HyDE()
    fusion = dataclasses.replace(index.config.fusion, method=args.fusion) if args.fusion else None
    t0 = time.perf_counter()
    hits = index.search(args.query, k=args.k, mode=args.mode, rerank=reranker, hyde=hyde, fusion=fusion)
    ms = (time.perf_counter() - t0) * 1000
    if args.json:
        print(json.dumps({"query": args.query, "mode": args.mode, "k": args.k, "rerank": args.rerank,
                          "hyde": bool(args.hyde), "latency_ms": round(ms, 2),
                          "hits": [h.to_dict() for h in hits]}, ensure_ascii=False))
        return 0
    if not hits:
        print("no results", file=sys.stderr)
        return 0
    for h in hits:
        c = h.chunk
        print(f"{h.rank:>3}  {c.doc_id}  [{c.start},{c.end})  {h.score:.4f}  {snippet(c.text, args.snippet)}")
    return 0
