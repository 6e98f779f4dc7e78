"""QdrantIndex: rag.Index with its vectors in a Qdrant collection (see rag/qdrant_store.py
for what is stored where, how BM25 becomes sparse vectors, and how writes stay atomic)."""

from __future__ import annotations

import dataclasses
import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from core.errors import UserError
from core.files import fault
from rag.index import (
    Index,
    IndexDirectoryError,
    _DocEntry,
    _jsonable,
    _progress,
    _same_model,
    plan_update,
    read_manifest,
)
from rag.qdrant_store import (
    DENSE,
    SLOTS,
    QdrantConfig,
    QdrantStoreError,
    SparseStats,
    _call,
    _default_collection,
    _models,
    client_for,
    idf_of,
    point_id,
    sparse_corpus,
)

TIE_MARGIN = 10
"""Extra results asked of Qdrant so that ties at the k-th score are broken in assay's order."""


class _Legs:
    """What rag.Index's search needs from `dense` and `bm25`, answered by the collection."""

    def __init__(self, index: "QdrantIndex") -> None:
        self.index = index
        self.trained_on = 0

    def __len__(self) -> int:
        return len(self.index._chunks)

    @property
    def n_docs(self) -> int:
        return len(self.index._chunks)

    # dense: rag.Index.dense_search_vectors calls this
    def search(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        return self.index._leg_search([v.tolist() for v in np.asarray(vectors, dtype=np.float32)], DENSE, k)

    @property
    def config(self):  # the BM25 parameters (eval's rank-bm25 reference reads them)
        return self.index.config.bm25

    @property
    def tokenizer(self):  # assay's BM25 tokenizer (eval's rank-bm25 reference uses it)
        if self.index._tokenizer is None:
            from rag.bm25 import Tokenizer

            self.index._tokenizer = Tokenizer(self.index.config.bm25.stem, self.index.config.bm25.stopwords)
        return self.index._tokenizer

    # bm25: rag.Index.search_many calls this
    def search_many(self, queries: list[str], k: int) -> list[list[tuple[int, float]]]:
        return self.index._leg_search([self.index._sparse_query(q) for q in queries], self.index._slot, k)


class QdrantIndex(Index):
    """rag.Index with its dense and sparse vectors in a Qdrant collection."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._stats = SparseStats([], np.zeros(0), 0, 0.0)
        self._idf = np.zeros(0)
        self._slot = SLOTS[0]
        self._pos: dict[str, int] = {}
        self._engine_ok = True
        self.dense = self.bm25 = _Legs(self)
        self._tokenizer = None

    # ---- where the collection is ---------------------------------------------------------
    @property
    def qcfg(self) -> QdrantConfig:
        cfg = self.config.qdrant
        if not cfg.collection:
            cfg = dataclasses.replace(cfg, collection=_default_collection(self.directory))
            self.config.qdrant = cfg
        return cfg

    @property
    def client(self):
        return client_for(self.qcfg)

    def _collection_info(self):
        cfg = self.qcfg
        if not _call(cfg, self.client.collection_exists, cfg.collection):
            return None
        return _call(cfg, self.client.get_collection, cfg.collection)

    def _check_collection(self, info, dim: int | None, embedder: str) -> None:
        cfg = self.qcfg
        meta = (getattr(info.config, "metadata", None) or {}).get("assay", {})
        vectors = info.config.params.vectors
        size = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
        their = meta.get("embedder")
        if size is None or (dim and size != dim) or (their and not _same_model(their, embedder)):
            raise QdrantStoreError(
                f"Qdrant collection {cfg.collection!r} at {cfg.location()} holds {size}-d vectors of "
                f"{their or 'an unknown embedder'!r}, but the index {self.directory} uses {embedder!r}"
                f"{f' ({dim}-d)' if dim else ''}; use another --collection, or --rebuild to replace it")

    # ---- opening ---------------------------------------------------------------------------
    @classmethod
    def _load(cls, directory: Path, manifest: dict[str, Any], embedder) -> "QdrantIndex":
        from rag.index import read_version

        _, hashed, config, got = read_version(directory, manifest, (
            ("sparse.json", lambda path, got, config: SparseStats.from_json(json.loads(path.read_text(encoding="utf-8")))),
        ))
        docs, chunks, stats = got["docs.jsonl"], got["chunks.jsonl"], got["sparse.json"]
        dim = np.zeros((0, int(manifest["embedder"].get("dim") or 0)), np.float32)
        index = cls(directory, config, manifest, chunks, docs, dim, None, None, embedder)
        index._verified = hashed
        index._set_state(stats, manifest.get("qdrant", {}).get("slot", SLOTS[0]))
        info = index._collection_info()
        cfg = index.qcfg
        if info is None:
            raise QdrantStoreError(f"Qdrant collection {cfg.collection!r} not found at {cfg.location()} (the index "
                                   f"{directory} keeps its vectors there); rebuild it: assay index PATH... --index "
                                   f"{directory} --rebuild")
        index._check_collection(info, manifest["embedder"].get("dim"), config.embedder)
        # points of an unfinished write: search drops them, but engine RRF would rank them
        stored = _call(cfg, index.client.count, cfg.collection, exact=True).count
        index._engine_ok = stored == len(chunks)
        return index

    def _set_state(self, stats: SparseStats, slot: str) -> None:
        self._stats, self._slot = stats, slot
        self._idf = idf_of(stats.df, stats.n, self.config.bm25.epsilon)
        self._vocab = {t: i for i, t in enumerate(stats.terms)}
        self._pos = {point_id(c): i for i, c in enumerate(self._chunks)}

    def _catch_up(self) -> None:
        if not (self.directory / "manifest.json").exists():
            return
        current = read_manifest(self.directory)
        if current.get("version") == self.manifest.get("version"):
            return
        latest = QdrantIndex._load(self.directory, current, self._embedder)
        keep = {k: self.__dict__[k] for k in ("_embedder", "lock_timeout", "last_update")}
        self.__dict__.update(latest.__dict__)
        self.__dict__.update(keep)
        self.dense = self.bm25 = _Legs(self)

    def _check_compatible(self, config) -> None:
        super()._check_compatible(config)
        want, have = config.qdrant, self.config.qdrant
        if (want.collection and want.collection != have.collection) or (want.url or want.path) and (
                (want.url, want.path) != (have.url, have.path)):
            raise IndexDirectoryError(
                f"{self.directory}: index keeps its vectors in Qdrant collection {have.collection!r} at "
                f"{have.url or have.path}, not {want.collection or have.collection!r} at {want.url or want.path or '?'}; "
                "rebuild it there (--rebuild) or use another directory")
        if want.sparse_idf != have.sparse_idf:
            raise IndexDirectoryError(f"{self.directory}: index was built with qdrant sparse_idf {have.sparse_idf!r}, "
                                      f"not {want.sparse_idf!r}; rebuild it (--rebuild)")

    # ---- searching ---------------------------------------------------------------------------
    def _sparse_query(self, query: str):
        if self._tokenizer is None:
            from rag.bm25 import Tokenizer

            self._tokenizer = Tokenizer(self.config.bm25.stem, self.config.bm25.stopwords)
        counts = Counter(self._vocab[t] for t in self._tokenizer(query) if t in self._vocab)
        ids = sorted(i for i in counts if self._stats.df[i] > 0)
        if self.qcfg.sparse_idf == "qdrant":
            values = [float(counts[i]) for i in ids]
        else:
            values = [float(counts[i] * self._idf[i]) for i in ids]
        return _models().SparseVector(indices=ids, values=values)

    def _leg_search(self, queries: list, using: str, k: int) -> list[list[tuple[int, float]]]:
        """Top-k (chunk position, score) per query on one vector; points this version does
        not list (an unfinished or a newer write) are dropped, asking for more if needed."""
        m = _models()
        out: list[list[tuple[int, float]]] = [[] for _ in queries]
        todo = [i for i, q in enumerate(queries) if not (isinstance(q, m.SparseVector) and not q.indices)]
        limit = min(k + TIE_MARGIN, len(self._chunks))  # ties at the cut are broken as assay does
        while todo and limit > 0:
            reqs = [m.QueryRequest(query=queries[i], using=using, limit=limit, with_payload=False) for i in todo]
            answers = _call(self.qcfg, self.client.query_batch_points, self.qcfg.collection, reqs)
            again = []
            for i, ans in zip(todo, answers):
                pts = ans.points
                hits = [(self._pos[str(p.id)], float(p.score)) for p in pts if str(p.id) in self._pos]
                if using != DENSE:
                    hits = [h for h in hits if h[1] != 0.0]  # as rag.bm25: a score of 0 is no match
                if len(hits) < min(k, len(self._chunks)) and len(pts) == limit and len(hits) < len(pts):
                    again.append(i)
                hits.sort(key=lambda h: (-round(h[1], 6), h[0]))
                out[i] = hits[:k]
            todo, limit = again, limit * 2
        return out

    def _engine_eligible(self, fusion) -> bool:
        m = _models()
        w = fusion.weights
        return (self.qcfg.engine_rrf and self._engine_ok and fusion.method == "rrf" and hasattr(m, "RrfQuery")
                and getattr(fusion, "weighting", "fixed") == "fixed"
                and float(w.get("bm25", 1.0)) == 1.0 and float(w.get("dense", 1.0)) == 1.0)

    def search_many(self, queries, k: int = 10, mode: str = "hybrid", *, rerank: Any = None, hyde: Any = None,
                    fusion=None):
        from rag.documents import Hit
        from rag.index import MODES, _make_hyde, _make_reranker

        fusion = fusion or self.config.fusion
        queries = list(queries)
        if mode != "hybrid" or mode not in MODES or not self._engine_eligible(fusion) or not queries or not len(self):
            return super().search_many(queries, k, mode, rerank=rerank, hyde=hyde, fusion=fusion)
        m = _models()
        reranker = _make_reranker(rerank)
        hyde = _make_hyde(hyde)
        want = max(k, int(getattr(reranker, "depth", k))) if reranker is not None else k
        dense_q = self._query_vectors(queries, hyde)
        dim = self.manifest.get("embedder", {}).get("dim")
        if dim and dense_q.shape[1] != dim:
            raise IndexDirectoryError(f"query vectors have dimension {dense_q.shape[1]}, the index {dim} "
                                      f"(built with {self.config.embedder!r})")
        reqs = []
        for q, v in zip(queries, dense_q):
            legs = []
            sparse = self._sparse_query(q)
            if sparse.indices:
                legs.append(m.Prefetch(query=sparse, using=self._slot, limit=fusion.depth_for("bm25", want)))
            legs.append(m.Prefetch(query=v.tolist(), using=DENSE, limit=fusion.depth_for("dense", want)))
            reqs.append(m.QueryRequest(prefetch=legs, query=m.RrfQuery(rrf=m.Rrf(k=int(fusion.rrf_k) + 1)),
                                       limit=want + TIE_MARGIN, with_payload=False))
        answers = _call(self.qcfg, self.client.query_batch_points, self.qcfg.collection, reqs)
        results = []
        for query, ans in zip(queries, answers):
            if any(str(p.id) not in self._pos for p in ans.points):  # a write is under way: fuse in assay
                results.append(super().search_many([query], k, mode, rerank=reranker, hyde=hyde, fusion=fusion)[0])
                continue
            # equal RRF scores in chunk order, as rag.fusion breaks most of its ties (best rank, then position)
            fused = sorted(((self._pos[str(p.id)], float(p.score)) for p in ans.points), key=lambda h: (-round(h[1], 9), h[0]))
            hits = [Hit(chunk=self._chunks[pos], score=score, rank=r, scores={"rrf": score})
                    for r, (pos, score) in enumerate(fused[:want], 1)]
            if reranker is not None and hits:
                hits = list(reranker.rerank(query, hits, top_n=k))
                for r, h in enumerate(hits, 1):
                    h.rank = r
            results.append(hits[:k])
        return results

    # ---- writing -----------------------------------------------------------------------------
    def _ensure_collection(self, dim: int, fresh: bool) -> None:
        """Create the collection if needed; refuse one of another embedder, dimension or index."""
        m = _models()
        cfg = self.qcfg
        owner = os.path.realpath(self.directory)
        info = self._collection_info()
        if info is None and not fresh and self._chunks:
            raise QdrantStoreError(f"Qdrant collection {cfg.collection!r} not found at {cfg.location()} (the index "
                                   f"{self.directory} keeps its vectors there); rebuild it (--rebuild)")
        if info is not None:
            meta = (getattr(info.config, "metadata", None) or {}).get("assay", {})
            theirs = meta.get("index")
            if theirs and theirs != owner:
                raise QdrantStoreError(f"Qdrant collection {cfg.collection!r} at {cfg.location()} belongs to the assay "
                                       f"index {theirs}; choose another --collection")
            try:
                self._check_collection(info, dim, self.config.embedder)
                ok = info.config.params.sparse_vectors and all(s in info.config.params.sparse_vectors for s in SLOTS)
            except QdrantStoreError:
                if not fresh:
                    raise
                ok = False
            if ok:
                return
            _call(cfg, self.client.delete_collection, cfg.collection)  # a --rebuild with another embedder
        modifier = m.Modifier.IDF if cfg.sparse_idf == "qdrant" else None
        _call(cfg, self.client.create_collection, cfg.collection,
              vectors_config={DENSE: m.VectorParams(size=dim, distance=m.Distance.DOT)},
              sparse_vectors_config={s: m.SparseVectorParams(modifier=modifier) for s in SLOTS},
              metadata={"assay": {"embedder": self.config.embedder, "dim": dim, "index": owner}})
        if cfg.url:
            for key in ("seq", "gone"):
                _call(cfg, self.client.create_payload_index, cfg.collection, key, m.PayloadSchemaType.INTEGER)

    def _recover(self, committed: int) -> None:
        """Under the lock: undo what a killed writer left (see the module docstring)."""
        m = _models()
        cfg = self.qcfg
        leftovers = m.Filter(should=[m.FieldCondition(key="seq", range=m.Range(gt=committed)),
                                     m.FieldCondition(key="gone", range=m.Range(lte=committed))])
        if _call(cfg, self.client.count, cfg.collection, count_filter=leftovers, exact=True).count:
            _call(cfg, self.client.delete, cfg.collection, points_selector=m.FilterSelector(filter=leftovers), wait=True)
        marked = m.Filter(must=[m.FieldCondition(key="gone", range=m.Range(gt=committed))])
        if _call(cfg, self.client.count, cfg.collection, count_filter=marked, exact=True).count:
            _call(cfg, self.client.delete_payload, cfg.collection, keys=["gone"],
                  points=m.FilterSelector(filter=marked), wait=True)

    def _batches(self, items: list) -> Iterable[list]:
        size = max(1, int(self.qcfg.batch_size))
        for i in range(0, len(items), size):
            yield items[i:i + size]

    def _update(self, sources, *, progress: bool, fresh: bool) -> dict[str, Any]:
        import time

        from rag.chunking import Chunker
        from rag.documents import load_sources

        m = _models()
        t0 = time.perf_counter()
        committed, committed_ids = int(self.manifest.get("sequence", 0)), set(self._pos)
        if fresh and (self.directory / "manifest.json").exists():
            committed, committed_ids = _previous_state(self)
        loaded = load_sources(sources)
        kept, todo, removed, stats = plan_update(self._docs, loaded)

        chunks, docs = [], []
        for d in kept:
            docs.append(dataclasses.replace(d, first=len(chunks)))
            chunks.extend(self._chunks[d.first:d.first + d.count])
        tokenizer = None
        if self.config.chunking.chunk_unit == "tokens" and todo:
            from rag.chunking import load_tokenizer

            tokenizer = load_tokenizer(self.config.embedder)
        chunker = Chunker(self.config.chunking, tokenizer)
        new_chunks = []
        for doc in _progress(todo, len(todo), "chunking", progress and len(todo) > 200):
            cs = chunker.chunk(doc)
            docs.append(_DocEntry(id=doc.id, source=doc.source, hash=doc.content_hash,
                                  first=len(chunks) + len(new_chunks), count=len(cs), meta=_jsonable(doc.meta)))
            new_chunks.extend(cs)
        chunks.extend(new_chunks)
        removed_ids = committed_ids - {point_id(c) for c in chunks}

        embedder = self.embedder
        calls = embedder.model_calls
        new_vecs = (embedder.encode([c.text for c in new_chunks], progress=progress and len(new_chunks) > 64)
                    if new_chunks else np.zeros((0, 0), np.float32))
        stats["chunks_embedded"] = len(new_chunks)
        stats["model_calls"] = embedder.model_calls - calls
        dim = int(new_vecs.shape[1]) if len(new_chunks) else int(self.manifest.get("embedder", {}).get("dim") or 0)
        if not dim:
            dim = embedder.dim
        known = self.manifest.get("embedder", {}).get("dim")
        if known and not fresh and known != dim:
            raise IndexDirectoryError(f"{self.directory}: embedder {self.config.embedder!r} gives {dim}-d vectors but the "
                                      f"index holds {known}-d ones; rebuild the index")
        self._ensure_collection(dim, fresh)
        self._recover(committed)
        if not fresh and not todo and not removed:
            self._collect()
            stats.update(chunks=len(self), seconds=round(time.perf_counter() - t0, 4), written=False)
            self.last_update = stats
            return stats

        # BM25 values of every chunk of the new state (|d|/avgdl is corpus-wide)
        from rag.bm25 import Tokenizer

        tok = Tokenizer(self.config.bm25.stem, self.config.bm25.stopwords)
        sstats, sparse = sparse_corpus(tok.many([c.text for c in chunks]), self._stats.terms, self.config.bm25)
        seq = self._next_sequence()
        slot = SLOTS[1] if self.manifest.get("qdrant", {}).get("slot") == SLOTS[0] else SLOTS[0]
        cfg, client = self.qcfg, self.client
        n_new = len(new_chunks)
        first_new = len(chunks) - n_new
        fresh_points = []  # chunks not in the committed state get whole points
        refresh = []       # points already there get the new slot's sparse vector only
        for i, c in enumerate(chunks):
            pid = point_id(c)
            ids, vals = sparse[i]
            sv = m.SparseVector(indices=ids, values=vals)
            if pid in committed_ids:
                refresh.append(m.PointVectors(id=pid, vector={slot: sv}))
            else:
                vec = new_vecs[i - first_new] if i >= first_new else None
                if vec is None:  # cannot happen: kept chunks are committed points
                    raise IndexDirectoryError(f"{self.directory}: chunk {c.id} has no point in the collection; rebuild")
                fresh_points.append(m.PointStruct(id=pid, vector={DENSE: vec.tolist(), slot: sv},
                                                  payload={"doc_id": c.doc_id, "chunk_id": c.id, "seq": seq}))
        for batch in _progress(list(self._batches(fresh_points)), None, "qdrant upsert", progress and n_new > 256):
            _call(cfg, client.upsert, cfg.collection, batch, wait=True)
        fault("qdrant:after_upsert")
        for batch in self._batches(refresh):
            _call(cfg, client.update_vectors, cfg.collection, batch, wait=True)
        fault("qdrant:after_sparse")
        if removed_ids:
            _call(cfg, client.set_payload, cfg.collection, {"gone": seq}, points=sorted(removed_ids), wait=True)
        self._pending = {"stats": sstats, "slot": slot}
        manifest = self._write_version(docs, chunks, np.zeros((0, dim), np.float32), self.dense, self.bm25, stats)
        self.manifest, self._docs, self._chunks = manifest, docs, chunks
        self._verified = set(manifest["checksums"])
        self._set_state(sstats, slot)
        self._engine_ok = True
        fault("qdrant:before_delete")
        if removed_ids:
            for batch in self._batches(sorted(removed_ids)):
                _call(cfg, client.delete, cfg.collection, points_selector=m.PointIdsList(points=batch), wait=True)
        self._collect()
        stats.update(chunks=len(chunks), seconds=round(time.perf_counter() - t0, 4), written=True)
        self.last_update = stats
        return stats

    # hooks of rag.Index._write_version
    def _write_store(self, tmp: Path, vectors, dense, bm25) -> dict[str, str]:
        (tmp / "sparse.json").write_text(json.dumps(self._pending["stats"].to_json(), ensure_ascii=False),
                                         encoding="utf-8")
        return {"sparse": "sparse.json"}

    def _manifest_extra(self) -> dict[str, Any]:
        cfg = self.qcfg
        return {"backend": "qdrant",
                "qdrant": {"collection": cfg.collection, "url": cfg.url, "path": cfg.path,
                           "slot": self._pending["slot"], "sparse_idf": cfg.sparse_idf}}

    def stats(self) -> dict[str, Any]:
        cfg = self.qcfg
        return {**super().stats(), "backend": "qdrant", "collection": cfg.collection, "location": cfg.location()}


def _previous_state(index: QdrantIndex) -> tuple[int, set[str]]:
    """For a rebuild: the committed version's sequence and point ids, when that version
    is a readable qdrant index of this collection (else nothing is kept)."""
    from rag.documents import Chunk
    from rag.index import _lines

    try:
        manifest = read_manifest(index.directory)
        q = manifest.get("qdrant", {})
        if manifest.get("backend") != "qdrant" or q.get("collection") != index.qcfg.collection:
            return 0, set()
        path = index.directory / manifest["version"] / "chunks.jsonl"
        ids = {point_id(Chunk(**json.loads(line))) for line in _lines(path)}
        return int(manifest.get("sequence", 0)), ids
    except (UserError, OSError, ValueError, KeyError, TypeError):
        return 0, set()


