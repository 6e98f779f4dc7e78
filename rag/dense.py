"""Dense vector search with FAISS: exact inner product, HNSW, or IVF-PQ with exact re-ranking.

Vectors are L2-normalized, so inner product is cosine similarity.

- `flat`  (default): `IndexFlatIP`, exact; right for up to a few hundred thousand chunks.
- `hnsw`: `IndexHNSWFlat` (inner product); graph search, approximate, ~memory of the
  vectors plus `2 * M` neighbour ids per vector.
- `ivfpq`: an inverted file over `nlist` centroids with product-quantized codes
  (`pq_m` bytes per vector). PQ distances are coarse, so `rerank_factor * k` candidates
  are re-scored exactly against the stored float vectors (the index directory keeps them
  in `vectors.npy`, memory-mapped), which recovers most of the recall PQ loses.

Persistence is FAISS's own `write_index`/`read_index`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from core.errors import UserError


class DenseIndexError(UserError, ValueError):
    pass


@dataclass
class DenseConfig:
    kind: Literal["flat", "hnsw", "ivfpq"] = "flat"
    """FAISS index type: exact `flat`, graph `hnsw`, or compressed `ivfpq`."""
    hnsw_m: int = 32
    """HNSW: neighbours per node (memory ~ 8 * M bytes per vector on top of the vectors)."""
    hnsw_ef_construction: int = 200
    """HNSW: candidate list size while building (quality of the graph)."""
    hnsw_ef_search: int = 128
    """HNSW: candidate list size while searching (recall vs speed)."""
    ivf_nlist: int = 1024
    """IVF-PQ: number of coarse centroids (capped so each has ~39 training points)."""
    ivf_nprobe: int = 32
    """IVF-PQ: centroids visited per query."""
    pq_m: int = 48
    """IVF-PQ: sub-quantizers = bytes per vector code (must divide the dimension)."""
    pq_nbits: int = 8
    """IVF-PQ: bits per sub-quantizer code (lowered automatically for tiny corpora)."""
    rerank_factor: int = 10
    """IVF-PQ: re-score this many times k candidates exactly with the stored vectors."""

    def __post_init__(self) -> None:
        if self.kind not in ("flat", "hnsw", "ivfpq"):
            raise DenseIndexError(f"faiss index kind must be flat, hnsw or ivfpq, got {self.kind!r}")


def _faiss():
    import faiss

    return faiss


class DenseIndex:
    """A FAISS index over rows 0..n-1 of a vector matrix (row = chunk position)."""

    def __init__(self, config: DenseConfig | None = None, dim: int | None = None) -> None:
        self.config = config or DenseConfig()
        self.dim = dim
        self.index = None
        self.vectors: np.ndarray | None = None  # exact vectors, for IVF-PQ re-ranking
        self.trained_on: int | None = None  # IVF-PQ: vectors its centroids and codebooks were fit to

    def __len__(self) -> int:
        return 0 if self.index is None else int(self.index.ntotal)

    def _new_index(self, vectors: np.ndarray):
        faiss = _faiss()
        cfg, (n, d) = self.config, vectors.shape
        if cfg.kind == "flat":
            return faiss.IndexFlatIP(d)
        if cfg.kind == "hnsw":
            index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = cfg.hnsw_ef_construction
            index.hnsw.efSearch = cfg.hnsw_ef_search
            return index
        if d % cfg.pq_m:
            raise DenseIndexError(f"pq_m={cfg.pq_m} must divide the embedding dimension {d}")
        # FAISS wants ~39 points per centroid and 2**nbits points per PQ codebook
        nlist = max(1, min(cfg.ivf_nlist, n // 39))
        nbits = max(1, min(cfg.pq_nbits, int(np.log2(max(2, n // 4)))))
        quantizer = faiss.IndexFlatIP(d)
        index = faiss.IndexIVFPQ(quantizer, d, nlist, cfg.pq_m, nbits, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(cfg.ivf_nprobe, nlist)
        return index

    def build(self, vectors: np.ndarray) -> "DenseIndex":
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self.dim = vectors.shape[1]
        if len(vectors) == 0:
            self.index = _faiss().IndexFlatIP(self.dim)
        else:
            self.index = self._new_index(vectors)
            self.index.add(vectors)
        self.vectors = vectors if self.config.kind == "ivfpq" else None
        self.trained_on = len(vectors) if self.config.kind == "ivfpq" and len(vectors) else None
        return self

    def needs_retraining(self, total: int) -> bool:
        """IVF-PQ fits its centroids and codebooks once; after the corpus has more than
        doubled since, new vectors land in cells and codes fit to other data (and `nlist`
        is too small for the size), so an update retrains instead of appending."""
        return self.config.kind == "ivfpq" and bool(self.trained_on) and total > 2 * int(self.trained_on)

    def add(self, vectors: np.ndarray) -> None:
        """Append rows (positions continue after the current ones)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self.index is None or len(self) == 0:
            prev = None if self.vectors is None else self.vectors
            self.build(vectors if prev is None or not len(prev) else np.vstack([prev, vectors]))
            return
        self.index.add(vectors)
        if self.vectors is not None:
            self.vectors = np.vstack([np.asarray(self.vectors), vectors])

    def search(self, queries: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (position, inner product) per query row."""
        queries = np.ascontiguousarray(np.atleast_2d(queries), dtype=np.float32)
        n = len(self)
        if n == 0 or k <= 0:
            return [[] for _ in range(len(queries))]
        k = min(k, n)
        if self.config.kind == "ivfpq" and self.vectors is not None and self._is_ivf():
            depth = min(n, k * max(1, self.config.rerank_factor))
            _, ids = self.index.search(queries, depth)
            out = []
            for q, row in zip(queries, ids):
                row = row[row >= 0]
                exact = np.asarray(self.vectors[row]) @ q  # re-score candidates exactly
                order = np.lexsort((row, -exact))[:k]
                out.append([(int(row[i]), float(exact[i])) for i in order])
            return out
        scores, ids = self.index.search(queries, k)
        return [[(int(i), float(s)) for i, s in zip(ir, sr) if i >= 0] for ir, sr in zip(ids, scores)]

    def _is_ivf(self) -> bool:
        return "IVF" in type(self.index).__name__

    def save(self, path: str | Path) -> None:
        _faiss().write_index(self.index, str(path))

    @classmethod
    def load(cls, path: str | Path, config: DenseConfig, vectors: np.ndarray | None = None,
             trained_on: int | None = None) -> "DenseIndex":
        faiss = _faiss()
        self = cls(config)
        self.trained_on = trained_on
        self.index = faiss.read_index(str(path))
        self.dim = self.index.d
        if config.kind == "hnsw" and hasattr(self.index, "hnsw"):
            self.index.hnsw.efSearch = config.hnsw_ef_search
        if self._is_ivf():
            faiss.extract_index_ivf(self.index).nprobe = min(config.ivf_nprobe, faiss.extract_index_ivf(self.index).nlist)
        self.vectors = vectors if config.kind == "ivfpq" else None
        return self
