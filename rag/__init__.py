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

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:  # what editors and type checkers see; nothing loads at run time
    from rag.bm25 import BM25Config, BM25Index, Tokenizer  # noqa: F401
    from rag.chunking import ChunkConfig, Chunker, chunk_text  # noqa: F401
    from rag.dense import DenseConfig, DenseIndex  # noqa: F401
    from rag.documents import Chunk, Document, Hit, LoadError, load_sources  # noqa: F401
    from rag.embeddings import Embedder, EmbeddingCache  # noqa: F401
    from rag.fusion import FusionConfig, fuse  # noqa: F401
    from rag.index import Index, IndexConfig, IndexDirectoryError  # noqa: F401

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


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
