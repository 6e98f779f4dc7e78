"""The index: a directory holding chunks, vectors, a FAISS index and BM25, updated
incrementally and atomically.

    index = Index.build(["docs/"], "idx")              # or Index.open("idx")
    hits = index.search("how do wings stall?", k=5)     # mode="hybrid" | "bm25" | "dense"
    index.update(["docs/"])                             # {"added": 1, "changed": 0, ...}

Layout of `DIR`:

    manifest.json        format version, embedder id and dimension, chunking / FAISS /
                         BM25 / fusion settings, counts, and which version directory is live
    v000003-1a2b/        one complete version (never modified once written):
        docs.jsonl       per document: id, source, content hash, meta, its chunk range
        chunks.jsonl     per chunk (line = position): id, doc_id, start, end, text
        vectors.npy      float32 (chunks x dim), L2-normalized; row = chunk position
        dense.faiss      FAISS's own file
        bm25/            term postings (.npy) and vocabulary (JSON)

Atomicity: a write builds a complete new version directory under a temporary name,
fsyncs it, renames it into place, and only then replaces manifest.json (an atomic
rename). A process killed at any moment leaves manifest.json pointing at a complete
version; stale partial directories are removed by the next write.

Incremental: documents are compared by id and sha256 of their text. Unchanged documents
keep their chunks and vectors (copied, never re-embedded); new and changed ones are
chunked and embedded (through the embedding cache, so even text seen before costs no
model call); removed ones are dropped. BM25 statistics are corpus-wide (idf, average
length), so the sparse index is recomputed from the chunk texts, which takes well under a
second per ten thousand chunks; FAISS is extended in place when documents were only added,
else rebuilt from the stored vectors (no model calls either way).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rag.bm25 import BM25Config, BM25Index
from rag.chunking import ChunkConfig, Chunker
from rag.documents import Chunk, Document, Hit, load_sources
from rag.dense import DenseConfig, DenseIndex
from rag.embeddings import Embedder
from rag.files import atomic_write_json, fault, fsync_dir
from rag.fusion import FusionConfig, fuse

FORMAT = "assay-index"
FORMAT_VERSION = 1
MODES = ("hybrid", "bm25", "dense")


class IndexDirectoryError(ValueError):
    """An index directory cannot be used as asked (missing, other format or embedder)."""

    user_error = True





@dataclass
class IndexConfig:
    embedder: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model: logical name, hub id or path."""
    chunking: ChunkConfig = field(default_factory=ChunkConfig)
    """Chunk size, overlap and unit (chars or embedder tokens)."""
    dense: DenseConfig = field(default_factory=DenseConfig)
    """FAISS index type and its parameters."""
    bm25: BM25Config = field(default_factory=BM25Config)
    """BM25 parameters and tokenization."""
    fusion: FusionConfig = field(default_factory=FusionConfig)
    """Default hybrid fusion (can be overridden per search)."""
    batch_size: int = 32
    """Embedding batch size."""
    embedding_cache: str | None = None
    """Embedding cache directory; None = ~/.cache/assay/embeddings ($ASSAY_CACHE)."""
    use_embedding_cache: bool = True
    """Look texts up in (and add them to) the embedding cache."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IndexConfig":
        from rag.config import from_dict

        return from_dict(cls, data, "index config")


def _to_dict(obj: Any) -> Any:
    from rag.config import to_dict

    return to_dict(obj)


def _progress(iterable, total: int | None, desc: str, enabled: bool):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, file=sys.stderr, leave=False)


@dataclass
class _DocEntry:
    id: str
    source: str
    hash: str
    first: int
    count: int
    meta: dict[str, Any] = field(default_factory=dict)


class Index:
    """A persistent hybrid (BM25 + dense) retrieval index over chunks."""

    def __init__(self, directory: str | os.PathLike, config: IndexConfig, manifest: dict[str, Any],
                 chunks: list[Chunk], docs: list[_DocEntry], vectors: np.ndarray,
                 dense: DenseIndex, bm25: BM25Index, embedder: Embedder | None = None) -> None:
        self.directory = Path(directory)
        self.config = config
        self.manifest = manifest
        self._chunks = chunks
        self._docs = docs
        self.vectors = vectors
        self.dense = dense
        self.bm25 = bm25
        self._embedder = embedder
        self.last_update: dict[str, Any] = {}

    # ---- front door -----------------------------------------------------------------
    @classmethod
    def build(cls, sources: Iterable[str | os.PathLike | Document], directory: str | os.PathLike,
              config: IndexConfig | None = None, *, progress: bool = True, rebuild: bool = False,
              embedder: Embedder | None = None) -> "Index":
        """Index `sources` into `directory`. An existing index there is updated
        incrementally (same embedder and chunking required unless `rebuild`).
        `embedder`: an already loaded Embedder to use (its model must match the config)."""
        directory = Path(directory)
        if (directory / "manifest.json").exists() and not rebuild:
            index = cls.open(directory)
            if embedder is not None:
                index.embedder = embedder
            if config is not None:
                index._check_compatible(config)
                index.config = dataclasses.replace(
                    index.config, dense=config.dense, bm25=config.bm25, fusion=config.fusion,
                    batch_size=config.batch_size, embedding_cache=config.embedding_cache,
                    use_embedding_cache=config.use_embedding_cache)
            index.update(sources, progress=progress)
            return index
        if directory.exists() and any(directory.iterdir()) and not (directory / "manifest.json").exists():
            raise IndexDirectoryError(f"{directory}: exists and is not an assay index; choose an empty or new directory")
        config = config or IndexConfig()
        if embedder is not None and not _same_model(embedder.model_id, config.embedder):
            raise IndexDirectoryError(f"embedder {embedder.model_id!r} does not match config.embedder {config.embedder!r}")
        empty = cls(directory, config, {}, [], [], np.zeros((0, 0), np.float32),
                    DenseIndex(config.dense), BM25Index(config.bm25), embedder)
        empty.update(sources, progress=progress, _fresh=True)
        return empty

    @classmethod
    def open(cls, directory: str | os.PathLike, *, embedder: "str | Embedder | None" = None) -> "Index":
        """Open an index; `embedder` (a model name, or a loaded Embedder to reuse), when
        given, must be the model the index was built with."""
        directory = Path(directory)
        path = directory / "manifest.json"
        if not path.exists():
            raise IndexDirectoryError(f"{directory}: no assay index here (no manifest.json); build one with `assay index`")
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise IndexDirectoryError(f"{path}: unreadable manifest ({exc})") from None
        fault("open:after_manifest")
        if manifest.get("format") != FORMAT:
            raise IndexDirectoryError(f"{path}: not an assay index manifest")
        if manifest.get("format_version") != FORMAT_VERSION:
            raise IndexDirectoryError(f"{directory}: index format version {manifest.get('format_version')} is not "
                              f"supported by this assay (which reads version {FORMAT_VERSION}); rebuild it "
                              "with `assay index --rebuild`")
        built_with = manifest["embedder"]["id"]
        wanted = embedder.model_id if isinstance(embedder, Embedder) else embedder
        if wanted is not None and not _same_model(wanted, built_with):
            raise IndexDirectoryError(f"{directory}: index was built with embedder {built_with!r}, not {wanted!r}; "
                              "its vectors are not comparable — use that embedder or rebuild the index")
        config = IndexConfig.from_dict(manifest["config"])
        vdir = directory / manifest["version"]
        docs = [_DocEntry(**json.loads(line)) for line in _lines(vdir / "docs.jsonl")]
        chunks = [Chunk(**json.loads(line)) for line in _lines(vdir / "chunks.jsonl")]
        vectors = np.load(vdir / "vectors.npy", mmap_mode="r", allow_pickle=False)
        dense = DenseIndex.load(vdir / "dense.faiss", config.dense, vectors, manifest.get("dense_trained_on"))
        bm25 = BM25Index.load(vdir / "bm25")
        if not (len(chunks) == len(vectors) == len(dense) == bm25.n_docs):
            raise IndexDirectoryError(f"{vdir}: inconsistent index version (chunks {len(chunks)}, vectors "
                              f"{len(vectors)}, faiss {len(dense)}, bm25 {bm25.n_docs}); rebuild it")
        return cls(directory, config, manifest, chunks, docs, vectors, dense, bm25,
                   embedder if isinstance(embedder, Embedder) else None)

    def _check_compatible(self, config: IndexConfig) -> None:
        if not _same_model(config.embedder, self.config.embedder):
            raise IndexDirectoryError(f"{self.directory}: index was built with embedder {self.config.embedder!r}, "
                              f"not {config.embedder!r}; rebuild it (--rebuild) or use another directory")
        if _to_dict(config.chunking) != _to_dict(self.config.chunking):
            raise IndexDirectoryError(f"{self.directory}: index was built with chunking {_to_dict(self.config.chunking)}, "
                              f"not {_to_dict(config.chunking)}; rebuild it (--rebuild) or use another directory")

    # ---- accessors ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._chunks)

    def chunk(self, i: int) -> Chunk:
        return self._chunks[i]

    @property
    def chunks(self) -> Sequence[Chunk]:
        return self._chunks

    @property
    def doc_ids(self) -> list[str]:
        return [d.id for d in self._docs]

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            cfg = self.config
            self._embedder = Embedder(cfg.embedder, batch_size=cfg.batch_size, cache_dir=cfg.embedding_cache,
                                      use_cache=cfg.use_embedding_cache)
        return self._embedder

    @embedder.setter
    def embedder(self, value: Embedder) -> None:
        self._embedder = value

    # ---- updating -------------------------------------------------------------------
    def update(self, sources: Iterable[str | os.PathLike | Document], *, progress: bool = True,
               _fresh: bool = False) -> dict[str, Any]:
        """Make the index hold exactly the documents in `sources`; returns counts of
        added / changed / removed / unchanged documents (plus chunks embedded)."""
        t0 = time.perf_counter()
        loaded = load_sources(sources)
        old = {d.id: d for d in self._docs}
        new_ids = {d.id for d in loaded.documents}
        kept: list[_DocEntry] = []
        todo: list[Document] = []
        added = changed = 0
        for doc in loaded.documents:
            prev = old.get(doc.id)
            if prev is not None and prev.hash == doc.content_hash:
                kept.append(prev)
            else:
                todo.append(doc)
                added += prev is None
                changed += prev is not None
        removed = [d for d in self._docs if d.id not in new_ids]
        kept_order = {d.id: i for i, d in enumerate(self._docs)}
        kept.sort(key=lambda d: kept_order[d.id])  # keep old positions' order
        stats = {"added": added, "changed": changed, "removed": len(removed), "unchanged": len(kept),
                 "skipped": len(loaded.skipped), "ignored": loaded.ignored, "chunks_embedded": 0,
                 "model_calls": 0, "documents": len(loaded.documents)}
        dense_changed = (self.manifest.get("config", {}).get("dense") != _to_dict(self.config.dense))
        if not _fresh and not todo and not removed and not dense_changed:
            stats.update(chunks=len(self), seconds=round(time.perf_counter() - t0, 4), written=False)
            self.last_update = stats
            return stats

        # chunks and vectors of unchanged documents, copied in their old order
        chunks: list[Chunk] = []
        docs: list[_DocEntry] = []
        rows: list[np.ndarray] = []
        only_appended = not removed and not changed and [d.id for d in kept] == [d.id for d in self._docs]
        for d in kept:
            docs.append(dataclasses.replace(d, first=len(chunks)))
            chunks.extend(self._chunks[d.first:d.first + d.count])
            rows.append(np.arange(d.first, d.first + d.count))
        keep_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)

        # chunk and embed the new and changed documents
        tokenizer = None
        if self.config.chunking.chunk_unit == "tokens" and todo:
            from rag.chunking import load_tokenizer

            tokenizer = load_tokenizer(self.config.embedder)
        chunker = Chunker(self.config.chunking, tokenizer)
        new_chunks: list[Chunk] = []
        for doc in _progress(todo, len(todo), "chunking", progress and len(todo) > 200):
            cs = chunker.chunk(doc)
            docs.append(_DocEntry(id=doc.id, source=doc.source, hash=doc.content_hash, first=len(chunks) + len(new_chunks),
                                  count=len(cs), meta=_jsonable(doc.meta)))
            new_chunks.extend(cs)
        embedder = self.embedder
        calls_before = embedder.model_calls
        new_vecs = (embedder.encode([c.text for c in new_chunks], progress=progress and len(new_chunks) > 64)
                    if new_chunks else np.zeros((0, 0), np.float32))
        stats["chunks_embedded"] = len(new_chunks)
        stats["model_calls"] = embedder.model_calls - calls_before
        chunks.extend(new_chunks)

        old_vecs = np.asarray(self.vectors)
        dim = new_vecs.shape[1] if len(new_chunks) else (old_vecs.shape[1] if old_vecs.size else self._known_dim())
        if old_vecs.size and old_vecs.shape[1] != dim:
            raise IndexDirectoryError(f"{self.directory}: embedder {self.config.embedder!r} gives {dim}-d vectors but the "
                              f"index holds {old_vecs.shape[1]}-d ones; rebuild the index")
        kept_vecs = old_vecs[keep_rows] if len(keep_rows) else np.zeros((0, dim), np.float32)
        vectors = np.ascontiguousarray(np.vstack([kept_vecs, new_vecs.reshape(-1, dim)]), dtype=np.float32)

        retrain = self.dense.needs_retraining(len(vectors))
        stats["dense_retrained"] = retrain
        if only_appended and not dense_changed and not retrain and len(self.dense) == len(kept_vecs) and len(kept_vecs):
            dense = self.dense
            if self.config.dense.kind == "ivfpq":
                dense.vectors = vectors[: len(kept_vecs)]
            dense.add(new_vecs.reshape(-1, dim))
        else:
            dense = DenseIndex(self.config.dense).build(vectors)
        bm25 = BM25Index(self.config.bm25).fit([c.text for c in chunks])

        manifest = self._write_version(docs, chunks, vectors, dense, bm25, stats)
        self.manifest = manifest
        self._docs, self._chunks, self.vectors, self.dense, self.bm25 = docs, chunks, vectors, dense, bm25
        if self.config.dense.kind == "ivfpq":
            self.dense.vectors = vectors
        stats.update(chunks=len(chunks), seconds=round(time.perf_counter() - t0, 4), written=True)
        self.last_update = stats
        return stats

    def _known_dim(self) -> int:
        dim = self.manifest.get("embedder", {}).get("dim")
        return int(dim) if dim else self.embedder.dim

    def _write_version(self, docs, chunks, vectors, dense, bm25, stats) -> dict[str, Any]:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        seq = int(self.manifest.get("sequence", 0)) + 1
        name = f"v{seq:06d}-{uuid.uuid4().hex[:6]}"
        tmp = d / f".tmp-{name}"
        tmp.mkdir()
        fault("index:version_dir")
        try:
            with open(tmp / "docs.jsonl", "w", encoding="utf-8") as fh:
                for e in docs:
                    fh.write(json.dumps(dataclasses.asdict(e), ensure_ascii=False) + "\n")
            with open(tmp / "chunks.jsonl", "w", encoding="utf-8") as fh:
                for c in chunks:
                    fh.write(json.dumps({"id": c.id, "doc_id": c.doc_id, "start": c.start, "end": c.end,
                                         "text": c.text}, ensure_ascii=False) + "\n")
            fault("index:after_chunks")
            np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
            fault("index:after_vectors")
            dense.save(tmp / "dense.faiss")
            bm25.save(tmp / "bm25")
            fault("index:after_bm25")
            for root, _, files in os.walk(tmp):
                for f in files:
                    fd = os.open(os.path.join(root, f), os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                fsync_dir(root)
            os.rename(tmp, d / name)
            fsync_dir(d)
            fault("index:before_commit")
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": name,
            "sequence": seq,
            "embedder": {"id": self.config.embedder, "dim": int(vectors.shape[1]) if vectors.ndim == 2 else None},
            "chunking": _to_dict(self.config.chunking),
            "counts": {"documents": len(docs), "chunks": len(chunks), "skipped_files": stats["skipped"]},
            "files": {"docs": "docs.jsonl", "chunks": "chunks.jsonl", "vectors": "vectors.npy",
                      "dense": "dense.faiss", "bm25": "bm25/"},
            "config": _to_dict(self.config),
            "created_at": self.manifest.get("created_at", now),
            "updated_at": now,
            "last_update": {k: stats[k] for k in ("added", "changed", "removed", "unchanged")},
        }
        if dense.trained_on:
            manifest["dense_trained_on"] = int(dense.trained_on)
        atomic_write_json(d / "manifest.json", manifest)  # the commit point
        fault("index:after_commit")
        for entry in d.iterdir():  # old versions and leftovers of killed writes
            if entry.is_dir() and entry.name != name and (entry.name.startswith("v") or entry.name.startswith(".tmp-")):
                shutil.rmtree(entry, ignore_errors=True)
        return manifest

    # ---- searching ------------------------------------------------------------------
    def search(self, query: str, k: int = 10, mode: str = "hybrid", *, rerank: Any = None, hyde: Any = None,
               fusion: FusionConfig | None = None) -> list[Hit]:
        """Top-k chunks for `query`. `rerank`: a reranker (rag.rerank protocol), or
        "llm"/"cross-encoder"/True to make the default one; `hyde`: a HyDE or True."""
        return self.search_many([query], k, mode, rerank=rerank, hyde=hyde, fusion=fusion)[0]

    def search_many(self, queries: Sequence[str], k: int = 10, mode: str = "hybrid", *, rerank: Any = None,
                    hyde: Any = None, fusion: FusionConfig | None = None) -> list[list[Hit]]:
        if mode not in MODES:
            raise IndexDirectoryError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
        queries = list(queries)
        reranker = _make_reranker(rerank)
        hyde = _make_hyde(hyde)
        fusion = fusion or self.config.fusion
        want = max(k, int(getattr(reranker, "depth", k))) if reranker is not None else k
        if not queries or len(self) == 0:
            return [[] for _ in queries]
        lists: dict[str, list[list[tuple[int, float]]]] = {}
        if mode in ("bm25", "hybrid"):
            depth = fusion.depth_for("bm25", want) if mode == "hybrid" else want
            lists["bm25"] = self.bm25.search_many(queries, depth)
        if mode in ("dense", "hybrid"):
            depth = fusion.depth_for("dense", want) if mode == "hybrid" else want
            lists["dense"] = self.dense_search_vectors(self._query_vectors(queries, hyde), depth)
        results = []
        for qi, query in enumerate(queries):
            if mode == "hybrid":
                fused = fuse({name: lists[name][qi] for name in lists}, fusion, want)
            else:
                name = mode
                fused = [(p, s, {name: s}) for p, s in lists[name][qi][:want]]
            hits = [Hit(chunk=self._chunks[p], score=float(s), rank=r, scores=dict(sc))
                    for r, (p, s, sc) in enumerate(fused, 1)]
            if reranker is not None and hits:
                hits = list(reranker.rerank(query, hits, top_n=k))
                for r, h in enumerate(hits, 1):
                    h.rank = r
            results.append(hits[:k])
        return results

    def _query_vectors(self, queries: list[str], hyde: Any) -> np.ndarray:
        if hyde is not None:
            if hasattr(hyde, "query_vectors"):  # batched generation when the HyDE offers it
                return np.asarray(hyde.query_vectors(queries, self.embedder), dtype=np.float32)
            return np.stack([np.asarray(hyde.query_vector(q, self.embedder), dtype=np.float32) for q in queries])
        if len(queries) == 1:
            return self.embedder.encode_query(queries[0])[None, :]
        return self.embedder.encode(queries, cache=False)

    def dense_search_vectors(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk position, inner product) for each row of `vectors`."""
        vectors = np.atleast_2d(np.asarray(vectors, dtype=np.float32))
        dim = self.manifest.get("embedder", {}).get("dim")
        if dim and vectors.shape[1] != dim:
            raise IndexDirectoryError(f"query vectors have dimension {vectors.shape[1]}, the index {dim} "
                              f"(built with {self.config.embedder!r})")
        return self.dense.search(vectors, k)

    def stats(self) -> dict[str, Any]:
        return {"directory": str(self.directory), "documents": len(self._docs), "chunks": len(self),
                "embedder": self.config.embedder, "dense": self.config.dense.kind,
                "version": self.manifest.get("version")}


def _same_model(a: str, b: str) -> bool:
    from rag.models import canonical_name

    if a == b:
        return True
    ca, cb = canonical_name(a), canonical_name(b)
    return ca is not None and ca == cb


def _lines(path: Path):
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield line


def _jsonable(meta: dict[str, Any]) -> dict[str, Any]:
    try:
        json.dumps(meta)
        return meta
    except (TypeError, ValueError):
        return json.loads(json.dumps(meta, default=str))


def _make_reranker(rerank: Any):
    if rerank is None or rerank is False:
        return None
    if hasattr(rerank, "rerank"):
        return rerank
    from rag.rerank import make_reranker

    if rerank is True:
        return make_reranker()
    return make_reranker(kind=str(rerank))


def _make_hyde(hyde: Any):
    if hyde is None or hyde is False:
        return None
    if hasattr(hyde, "query_vector"):
        return hyde
    from rag.hyde import HyDE

    return HyDE()
