"""The Qdrant backend of rag.Index: the same index directory (manifest, chunk store,
config), with the vectors in a Qdrant collection — a server, a cluster, or local mode.

    index = Index.build(["docs/"], "idx", IndexConfig(backend="qdrant",
                        qdrant=QdrantConfig(url="http://localhost:6333", collection="docs")))
    index = Index.open("idx")            # the manifest says where the collection is
    index.search("how do wings stall?")  # the same modes, fusion, rerank and HyDE

What is stored where:
- the index directory (as for FAISS): manifest.json (backend "qdrant", the collection and
  its location, the live sparse slot), and per version docs.jsonl, chunks.jsonl and
  sparse.json (BM25 vocabulary: term -> sparse index, document frequencies, N, avgdl);
- the collection: one point per chunk, id = a UUID from the chunk id and the sha256 of its
  text (so an upsert is idempotent and a changed chunk is a new point), a dense vector
  "dense" (dot product; the vectors are L2-normalized, so it is cosine), two sparse
  vectors "bm25_0" / "bm25_1" (the live one and the one the next write fills), and the
  payload {doc_id, chunk_id, seq[, gone]}. Collection metadata names the embedder, the
  dimension and the owning index directory.

BM25 as sparse vectors, exactly assay's: the text is tokenized by rag.bm25's Tokenizer
(same stemming and stopwords); a document's value for term t is the saturated,
length-normalised term frequency tf*(k1+1)/(tf + k1*(1-b+b*|d|/avgdl)), and the query
carries count(t) * idf(t) with idf computed by assay from the document frequencies in
sparse.json (rank-bm25's formula and its epsilon floor). The dot product Qdrant computes
is then assay's BM25 score term for term (in float32). `sparse_idf="qdrant"` instead
uses Qdrant's `Modifier.IDF` (query values = counts): Qdrant's idf is
ln(1 + (N - n + 0.5)/(n + 0.5)), never negative and without the floor, so scores and
some rankings differ from assay's (measured in tests/test_rag_qdrant.py); the default
keeps assay's numbers. Either way |d|/avgdl is corpus-wide, so a write that changes the
corpus rewrites every point's sparse vector (no embedding, no dense vector is sent):
into the slot not live, so the live one stays valid until the manifest commits.

Writes keep the directory index's guarantees (writer lock, atomic manifest commit): new
points carry `seq` = the version being written and are invisible until the manifest names
that version (a reader keeps only the points of the chunks its manifest lists); removed
points are marked `gone` before the commit and deleted after it; the next write (under
the lock) first deletes what a killed writer left (seq above the committed version,
gone at or below it) and clears its `gone` marks. A killed update leaves the previous
state or the new one.

Hybrid search: RRF runs in the engine (one `query_points` with a sparse and a dense
`prefetch` and `RrfQuery(Rrf(k=rrf_k + 1))` — Qdrant's k counts ranks from 0, so assay's
k=60 is Qdrant's 61) when both weights are 1 and the client has `RrfQuery` (>= 1.16);
Qdrant's per-prefetch weights divide the rank (1/(rank/w + k)) where assay multiplies
the score (w/(k + rank)), so other weights, convex fusion, and an index whose collection
holds points of an unfinished write fetch both legs and fuse with rag.fusion in assay.
Ties break differently in the engine (assay: best rank, then position).

Local mode (`path`) is qdrant-client's pure-Python implementation: exact search, one
process at a time per directory; use a server for concurrent readers or large corpora.
"""

from __future__ import annotations

import dataclasses
import math
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from core.errors import UserError

SLOTS = ("bm25_0", "bm25_1")
DENSE = "dense"
_NAMESPACE = uuid.UUID("6b1f4c1e-5f0a-4d7e-9b43-2a7e0c9d1a55")


class QdrantStoreError(UserError, ValueError):
    """The Qdrant side of an index cannot be used as asked (unreachable, missing, other embedder)."""


@dataclass
class QdrantConfig:
    url: str | None = None
    """Qdrant server or cluster URL (http://host:6333); None = local mode at `path`."""
    path: str | None = None
    """Local-mode storage directory (qdrant-client's embedded implementation), or ":memory:"."""
    collection: str | None = None
    """Collection name; None = "assay-" + the index directory's name."""
    sparse_idf: Literal["assay", "qdrant"] = "assay"
    """Where BM25's idf comes from: assay's rank-bm25 idf on the query side (exact
    parity), or Qdrant's `Modifier.IDF` (its own, slightly different, formula)."""
    engine_rrf: bool = True
    """Hybrid RRF in Qdrant when it reproduces assay's fusion (unit weights); else in assay."""
    timeout: float = 30.0
    """Seconds per request to a server."""
    batch_size: int = 256
    """Points per upsert / update request."""

    def __post_init__(self) -> None:
        if self.sparse_idf not in ("assay", "qdrant"):
            raise QdrantStoreError(f"qdrant.sparse_idf must be assay or qdrant, got {self.sparse_idf!r}")

    def location(self) -> str:
        return self.url or f"local path {self.path}"


def point_id(chunk) -> str:
    """Stable point id of a chunk: a UUID of its id (document id and position) and text hash."""
    from rag.documents import text_hash

    return str(uuid.uuid5(_NAMESPACE, f"{chunk.id}\n{text_hash(chunk.text)}"))


# ---- clients (local mode allows one client per directory per process) --------------------
_CLIENTS: dict[tuple[str, str], Any] = {}


def _models():
    try:
        from qdrant_client import models
    except ImportError:
        raise QdrantStoreError("the qdrant backend needs qdrant-client: pip install 'assay[qdrant]' "
                               "(or: pip install qdrant-client)") from None
    return models


def client_for(cfg: QdrantConfig):
    _models()
    from qdrant_client import QdrantClient

    if cfg.url:
        key = ("url", cfg.url)
    elif cfg.path:
        key = ("path", cfg.path if cfg.path == ":memory:" else os.path.realpath(cfg.path))
    else:
        raise QdrantStoreError("the qdrant backend needs a location: --qdrant-url URL or --qdrant-path DIR")
    client = _CLIENTS.get(key)
    if client is None:
        try:
            if cfg.url:
                client = QdrantClient(url=cfg.url, timeout=int(math.ceil(cfg.timeout)), check_compatibility=False)
            elif cfg.path == ":memory:":
                client = QdrantClient(location=":memory:")
            else:
                Path(cfg.path).mkdir(parents=True, exist_ok=True)
                client = QdrantClient(path=cfg.path)
        except RuntimeError as exc:  # local storage locked by another process
            if "already accessed" in str(exc):
                raise QdrantStoreError(f"Qdrant local storage {cfg.path} is open in another process (local mode "
                                       "allows one process at a time; run a Qdrant server for concurrent use)") from None
            raise
        if not _CLIENTS:
            import atexit

            atexit.register(close_clients)
        _CLIENTS[key] = client
    return client


def close_clients() -> None:
    """Close every cached client (releases local-mode directory locks)."""
    for client in _CLIENTS.values():
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass
    _CLIENTS.clear()


def _call(cfg: QdrantConfig, fn, *args, **kwargs):
    """Run a client call; connection failures become one-line user errors."""
    try:
        return fn(*args, **kwargs)
    except UserError:
        raise
    except Exception as exc:  # noqa: BLE001 - classified below
        name = type(exc).__name__
        text = str(exc).splitlines()[0] if str(exc) else name
        if cfg.url and (name in ("ResponseHandlingException", "ConnectError", "ConnectTimeout", "ReadTimeout",
                                 "RpcError", "_InactiveRpcError") or "connect" in text.lower()
                        or "refused" in text.lower()):
            raise QdrantStoreError(f"cannot reach Qdrant at {cfg.url} ({text}); is the server running? "
                                   "(e.g. docker run -p 6333:6333 qdrant/qdrant)") from None
        raise


# ---- BM25 as sparse vectors ---------------------------------------------------------------
def idf_of(df: np.ndarray, n: int, epsilon: float) -> np.ndarray:
    """rank-bm25's idf over the terms present (df > 0), exactly as rag.bm25 computes it."""
    idf = np.zeros(len(df), dtype=np.float64)
    present = df > 0
    if n == 0 or not present.any():
        return idf
    raw = np.log(n - df[present] + 0.5) - np.log(df[present] + 0.5)
    floor = epsilon * (raw.sum() / len(raw))
    idf[present] = np.where(raw < 0, floor, raw)
    return idf


@dataclass
class SparseStats:
    terms: list[str]
    df: np.ndarray
    n: int
    avgdl: float

    def to_json(self) -> dict[str, Any]:
        return {"terms": self.terms, "df": self.df.astype(int).tolist(), "n": self.n, "avgdl": self.avgdl}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "SparseStats":
        return cls(list(data["terms"]), np.asarray(data["df"], dtype=np.float64), int(data["n"]), float(data["avgdl"]))


def sparse_corpus(token_lists: list[list[str]], terms: list[str], bm25) -> tuple[SparseStats, list[tuple[list[int], list[float]]]]:
    """Document-side BM25 values of every chunk, with the vocabulary `terms` extended
    (append-only, so a term keeps its sparse index across versions)."""
    vocab = {t: i for i, t in enumerate(terms)}
    terms = list(terms)
    counts_per_doc = []
    doc_len = np.zeros(len(token_lists), dtype=np.float64)
    for d, toks in enumerate(token_lists):
        doc_len[d] = len(toks)
        counts: dict[int, int] = {}
        for t in toks:
            tid = vocab.get(t)
            if tid is None:
                tid = vocab[t] = len(terms)
                terms.append(t)
            counts[tid] = counts.get(tid, 0) + 1
        counts_per_doc.append(counts)
    df = np.zeros(len(terms), dtype=np.float64)
    for counts in counts_per_doc:
        for tid in counts:
            df[tid] += 1
    n = len(token_lists)
    avgdl = float(doc_len.sum() / n) if n else 0.0
    k1, b = bm25.k1, bm25.b
    vectors = []
    for d, counts in enumerate(counts_per_doc):
        norm = k1 * (1 - b + b * doc_len[d] / avgdl) if avgdl > 0 else k1
        ids = sorted(counts)
        tf = np.asarray([counts[i] for i in ids], dtype=np.float64)
        vectors.append((ids, (tf * (k1 + 1) / (tf + norm)).tolist()))
    return SparseStats(terms, df, n, avgdl), vectors


def _default_collection(directory: Path) -> str:
    import hashlib
    import re

    name = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(directory).resolve().name).strip("-") or "index"
    return f"assay-{name}-{hashlib.sha256(str(Path(directory).resolve()).encode()).hexdigest()[:8]}"


# ---- command line ------------------------------------------------------------------------
def add_arguments(parser, *, default_backend: str | None = None) -> None:
    """--backend, --qdrant-url, --qdrant-path, --collection (for index, search, eval retrieval)."""
    parser.add_argument("--backend", choices=("faiss", "qdrant"), default=default_backend,
                        help="where the vectors live: faiss (default: files in the index directory) or qdrant "
                        "(a Qdrant server, cluster or local-mode directory; needs qdrant-client)")
    parser.add_argument("--qdrant-url", default=None, metavar="URL", help="Qdrant server or cluster URL (--backend qdrant)")
    parser.add_argument("--qdrant-path", default=None, metavar="DIR",
                        help="Qdrant local-mode directory (--backend qdrant; one process at a time)")
    parser.add_argument("--collection", default=None, metavar="NAME",
                        help="Qdrant collection (default: assay-<index directory name>-<hash>)")


def apply_arguments(config, args, *, default_path: str | None = None):
    """`config` (an IndexConfig) with the backend options of `args` applied."""
    backend = getattr(args, "backend", None)
    url, path, coll = getattr(args, "qdrant_url", None), getattr(args, "qdrant_path", None), getattr(args, "collection", None)
    if backend == "faiss" and (url or path or coll):
        raise QdrantStoreError("--qdrant-url, --qdrant-path and --collection go with --backend qdrant")
    if url and path:
        raise QdrantStoreError("give --qdrant-url URL or --qdrant-path DIR, not both")
    if backend is not None:
        config = dataclasses.replace(config, backend=backend)
    if config.backend != "qdrant":
        if url or path or coll:
            raise QdrantStoreError("--qdrant-url, --qdrant-path and --collection go with --backend qdrant")
        return config
    q = config.qdrant
    if url or path:
        q = dataclasses.replace(q, url=url, path=os.path.abspath(path) if path else None)
    if coll:
        q = dataclasses.replace(q, collection=coll)
    if not (q.url or q.path):
        if default_path is None:
            raise QdrantStoreError("--backend qdrant needs --qdrant-url URL (a server or cluster) or --qdrant-path DIR "
                                   "(local mode)")
        q = dataclasses.replace(q, path=default_path)
    return dataclasses.replace(config, qdrant=q)


def relocate(directory, manifest: dict[str, Any], location: dict[str, Any]) -> dict[str, Any]:
    """A copy of a checked manifest whose Qdrant location is `location` (url or path)."""
    if manifest.get("backend") != "qdrant":
        raise QdrantStoreError(f"{directory}: a {manifest.get('backend', 'faiss')} index; --qdrant-url, --qdrant-path "
                               "and --collection apply to --backend qdrant indexes")
    q = dict(manifest["config"].get("qdrant") or {})
    if location.get("collection") and location["collection"] != q.get("collection"):
        raise QdrantStoreError(f"{directory}: the index keeps its vectors in collection {q.get('collection')!r}, "
                               f"not {location['collection']!r}")
    if location.get("url") or location.get("path"):
        q.update(url=location.get("url"), path=os.path.abspath(location["path"]) if location.get("path") else None)
    return {**manifest, "config": {**manifest["config"], "qdrant": q}}


def search_location(args, directory) -> dict[str, Any] | None:
    """`assay search` / `eval retrieval` on an existing index: the location overrides of `args`."""
    backend = getattr(args, "backend", None)
    loc = {"url": getattr(args, "qdrant_url", None), "path": getattr(args, "qdrant_path", None),
           "collection": getattr(args, "collection", None)}
    if loc["url"] and loc["path"]:
        raise QdrantStoreError("give --qdrant-url URL or --qdrant-path DIR, not both")
    if backend is not None:
        from rag.index import read_manifest

        have = read_manifest(directory).get("backend", "faiss")
        if have != backend:
            raise QdrantStoreError(f"{directory}: the index was built with --backend {have}, not {backend}")
    return {k: v for k, v in loc.items() if v} or None


__all__ = ["QdrantConfig", "QdrantStoreError", "SparseStats", "add_arguments", "apply_arguments",
           "close_clients", "relocate", "search_location", "idf_of", "point_id", "sparse_corpus"]
