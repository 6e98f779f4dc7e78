"""rag: retrieval — loading, chunking with exact offsets, embeddings, FAISS, BM25,
hybrid fusion, reranking, HyDE and a persistent incremental index.

    from rag import Index
    index = Index.build(["docs/"], "idx")          # later: Index.open("idx")
    for hit in index.search("query", k=5):         # mode="hybrid" | "bm25" | "dense"
        print(hit.rank, hit.chunk.doc_id, hit.chunk.start, hit.chunk.end, hit.score)

Stands alone: imports no other assay package. Heavy libraries (torch, faiss,
sentence-transformers) load lazily, on first use; so do the names below.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "Document": "rag.documents",
    "Chunk": "rag.documents",
    "Hit": "rag.documents",
    "load_sources": "rag.documents",
    "LoadError": "rag.documents",
    "ChunkConfig": "rag.chunking",
    "Chunker": "rag.chunking",
    "chunk_text": "rag.chunking",
    "Embedder": "rag.embeddings",
    "EmbeddingCache": "rag.embeddings",
    "DenseConfig": "rag.dense",
    "DenseIndex": "rag.dense",
    "BM25Config": "rag.bm25",
    "BM25Index": "rag.bm25",
    "Tokenizer": "rag.bm25",
    "FusionConfig": "rag.fusion",
    "fuse": "rag.fusion",
    "IndexConfig": "rag.index",
    "Index": "rag.index",
    "IndexDirectoryError": "rag.index",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rag' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
