"""Indexing throughput vs bare SentenceTransformer.encode, and re-indexing an unchanged corpus.

    python bench/indexing.py [--docs 200] [--json]
    assay bench indexing --docs 1400

Side by side in one run, on the same Cranfield documents and the same chunks:
  1. bare: `SentenceTransformer.encode(chunk_texts, batch_size=32, normalize_embeddings=True)`
     — the embedding work alone, the floor for any indexer;
  2. assay: `Index.build(...)` — loading and hashing documents, chunking, embedding (same
     model object, same batch size, an empty embedding cache), BM25, FAISS, atomic writes;
  3. re-index: `Index.build(...)` again on the unchanged corpus (what `assay index` does the
     second time: open, load, hash, compare — nothing to embed or write), and the same
     through the CLI in a fresh process (imports included).
Model loading is excluded from 1 and 2 alike (it is loaded once, before both). The bare
encode runs before and after the build and the two are averaged, so neither side gets the
warmer or the quieter machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.files import shared_data_root  # noqa: E402


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data_root() / "cranfield"))
    ap.add_argument("--docs", type=int, default=200, help="number of Cranfield documents (default 200; 1400 = all)")
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from core.models import load_sentence_transformer
    from rag.chunking import Chunker
    from rag.documents import load_sources
    from rag.embeddings import Embedder
    from rag.index import Index, IndexConfig

    log = (lambda *a: print(*a, file=sys.stderr, flush=True))
    docs = load_sources([Path(args.data) / "corpus.jsonl"]).documents[: args.docs]
    config_base = IndexConfig(batch_size=args.batch_size)
    texts = [c.text for d in docs for c in Chunker(config_base.chunking).chunk(d)]
    log(f"{len(docs)} documents -> {len(texts)} chunks")

    t = time.perf_counter()
    model = load_sentence_transformer(config_base.embedder)
    load_s = time.perf_counter() - t
    model.encode(texts[:8], batch_size=args.batch_size)  # warm-up (first-call allocations)

    def bare() -> float:
        t = time.perf_counter()
        model.encode(texts, batch_size=args.batch_size, convert_to_numpy=True, normalize_embeddings=True,
                     show_progress_bar=False)
        return time.perf_counter() - t

    work = Path(tempfile.mkdtemp(prefix="assay-bench-indexing-"))
    try:
        bare_1 = bare()
        log(f"bare encode: {bare_1:.1f}s")
        cache = work / "cache"  # empty: the first build embeds everything
        config = IndexConfig(batch_size=args.batch_size, embedding_cache=str(cache))
        embedder = Embedder(config.embedder, batch_size=args.batch_size, cache_dir=cache)
        embedder._model = model  # the same loaded model object as the bare run
        t = time.perf_counter()
        index = Index.build(docs, work / "index", config, progress=False, embedder=embedder)
        build_s = time.perf_counter() - t
        assert index.last_update["model_calls"] == len(texts), index.last_update
        log(f"assay build: {build_s:.1f}s")
        bare_2 = bare()
        log(f"bare encode again: {bare_2:.1f}s")
        bare_s = (bare_1 + bare_2) / 2

        t = time.perf_counter()
        again = Index.build(docs, work / "index", config, progress=False)
        reindex_s = time.perf_counter() - t
        assert again.last_update["unchanged"] == len(docs) and again.last_update["model_calls"] == 0

        # the same through the CLI, fresh process (Python start-up and imports included)
        corpus = work / "corpus.jsonl"
        with open(corpus, "w", encoding="utf-8") as fh:
            for d in docs:
                fh.write(json.dumps({"_id": d.id, "text": d.text}) + "\n")
        env = {**os.environ, "ASSAY_CACHE": str(work / "cli-cache"), "PYTHONPATH": str(ROOT)}
        cli = [sys.executable, "-m", "assay", "index", str(corpus), "--index", str(work / "cli-index"), "--json"]
        shutil.copytree(cache, work / "cli-cache" / "embeddings")  # first CLI build: all cached
        subprocess.run(cli, env=env, check=True, capture_output=True)
        t = time.perf_counter()
        out = subprocess.run(cli, env=env, check=True, capture_output=True, text=True).stdout
        cli_reindex_s = time.perf_counter() - t
        assert json.loads(out)["unchanged"] == len(docs)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    result = {
        "documents": len(docs), "chunks": len(texts), "batch_size": args.batch_size, "model_load_s": round(load_s, 2),
        "bare_encode_s": round(bare_s, 2), "bare_encode_runs_s": [round(bare_1, 2), round(bare_2, 2)],
        "assay_build_s": round(build_s, 2),
        "throughput_chunks_per_s": {"bare": round(len(texts) / bare_s, 2), "assay": round(len(texts) / build_s, 2)},
        "throughput_ratio": round(bare_s / build_s, 3),
        "reindex_unchanged_s": round(reindex_s, 3), "reindex_speedup": round(build_s / reindex_s, 1),
        "cli_reindex_unchanged_s": round(cli_reindex_s, 2), "cli_reindex_speedup": round(build_s / cli_reindex_s, 1),
        "targets": {"throughput_ratio": 0.9, "reindex_speedup": 20},
    }
    result["meets_target"] = result["throughput_ratio"] >= 0.9 and result["reindex_speedup"] >= 20
    if args.json:
        print(json.dumps(result))
    else:
        print(f"Indexing {len(docs)} Cranfield documents = {len(texts)} chunks, batch {args.batch_size} "
              f"(model load {load_s:.1f}s, excluded from both)")
        print(f"{'':<40}{'seconds':>10}{'chunks/s':>10}")
        print(f"{'bare SentenceTransformer.encode (mean)':<40}{bare_s:>10.2f}{len(texts) / bare_s:>10.2f}")
        print(f"{'assay Index.build (first build)':<40}{build_s:>10.2f}{len(texts) / build_s:>10.2f}")
        print(f"{'assay re-index, unchanged (in process)':<40}{reindex_s:>10.3f}")
        print(f"{'assay index CLI re-index, unchanged':<40}{cli_reindex_s:>10.2f}")
        print(f"throughput vs bare encode: {result['throughput_ratio']:.1%} (target >= 90%)")
        print(f"re-index speed-up: {result['reindex_speedup']:.0f}x in process, "
              f"{result['cli_reindex_speedup']:.1f}x via the CLI incl. start-up (target >= 20x)")
        print(f"targets: {'MET' if result['meets_target'] else 'NOT MET'}")
    return result


if __name__ == "__main__":
    main()
