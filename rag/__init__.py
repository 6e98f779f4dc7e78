"""rag: retrieval — loading, chunking with exact offsets, embeddings, FAISS, BM25,
hybrid fusion, reranking, HyDE and a persistent incremental index.

Stands alone: imports no other assay package. Heavy libraries load lazily.
"""
