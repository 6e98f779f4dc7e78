"""Distributed embedding: the expensive part of `assay index` on a Ray cluster.

    assay index docs/ --index runs/idx --ray [ADDRESS]
    from rag.ray_embed import build_on_ray
    index = build_on_ray(["docs/"], "runs/idx", IndexConfig())

The pipeline (Ray Data):

1. the driver lists the files exactly as `rag.documents.load_sources` would;
2. read + chunk tasks on the cluster run assay's own reader and `Chunker` per file (the
   same chunk texts the index will hold), dropping every chunk whose content hash is
   already in the driver's embedding cache (the set of cached keys is shipped once);
3. an actor pool embeds the rest (`map_batches` with `EmbedActor`, one `Embedder` per actor:
   one per CPU, or one per GPU with ``num_gpus=1`` where the cluster has GPUs);
4. the driver streams the vectors into the embedding cache as batches arrive, then the
   index updates incrementally as usual (`Index.build`): new and changed documents are
   chunked again on the driver (milliseconds) and every vector comes from the cache, so
   the index is the local build's, and a rerun or an update embeds only what is new.

What crosses the network: file paths out, chunk texts between the stages, 16-byte keys and
float32 vectors back. The files are read where the tasks run: on a multi-node cluster the
corpus must be at the same path on every node (a shared filesystem). With the embedding
cache off (``use_embedding_cache=False``) the vectors are held in memory for this build.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from rag.embeddings import Embedder, text_key

SHARD_ROWS = 4096  # vectors per embedding-cache shard written while the results stream in


@dataclass
class RayEmbedConfig:
    """How the embedding pipeline uses the cluster."""

    address: str | None = None
    """Cluster to join (None: $RAY_ADDRESS, a running cluster, or a new local one)."""
    actors: int | None = None
    """Embedder actors (None: one per GPU when the cluster has GPUs, else one per CPU)."""
    num_gpus: float | None = None
    """GPUs per actor (None: 1 when the cluster has GPUs, else 0)."""
    cpus_per_actor: float = 1.0
    """CPUs each actor reserves (torch in the actor uses as many threads)."""
    batch_rows: int = 256
    """Chunks per `map_batches` batch (the model still batches by the index's batch_size)."""


class _MemoryCache:
    """The embedding cache's interface over a dict (a build with the disk cache off)."""

    def __init__(self) -> None:
        self._map: dict[bytes, np.ndarray] = {}

    def get_many(self, texts: list[str]) -> list[np.ndarray | None]:
        return [self._map.get(text_key(t)) for t in texts]

    def put_many(self, texts: list[str], vectors: np.ndarray) -> None:
        self.put_many_keys([text_key(t) for t in texts], vectors)

    def put_many_keys(self, keys: list[bytes], vectors: np.ndarray) -> None:
        for k, v in zip(keys, vectors):
            self._map[bytes(k)] = np.asarray(v, dtype=np.float32)

    def _load(self) -> dict[bytes, np.ndarray]:
        return self._map

    def __len__(self) -> int:
        return len(self._map)


def list_items(sources: Iterable[Any]) -> list[dict[str, Any]]:
    """One item per file (path and document id), in `load_sources`' order and naming; a
    `Document` goes as its text."""
    from rag.documents import SUPPORTED_SUFFIXES, Document, LoadError

    items: list[dict[str, Any]] = []
    for src in sources:
        if isinstance(src, Document):
            items.append({"path": "", "doc_id": src.id, "text": src.text})
            continue
        path = Path(src)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    file = Path(root) / name
                    if not name.startswith(".") and file.suffix.lower() in SUPPORTED_SUFFIXES:
                        items.append({"path": str(file.resolve()), "doc_id": file.relative_to(path).as_posix(), "text": ""})
        elif path.is_file():
            items.append({"path": str(path.resolve()), "doc_id": path.name, "text": ""})
        else:
            raise LoadError(f"{path}: no such file or directory")
    return items


class ChunkFiles:
    """Read + chunk one file per row (a Ray Data `flat_map` callable)."""

    def __init__(self, chunking: Any, embedder: str, known: Any) -> None:
        self.chunking, self.embedder, self.known = chunking, embedder, known
        self._chunker = None

    def __call__(self, item: dict[str, Any]) -> list[dict[str, Any]]:
        from rag.chunking import Chunker, load_tokenizer
        from rag.documents import Document, LoadResult, file_documents

        if self._chunker is None:
            tok = load_tokenizer(self.embedder) if self.chunking.chunk_unit == "tokens" else None
            self._chunker = Chunker(self.chunking, tok)
            if not isinstance(self.known, (set, frozenset)):
                import ray

                self.known = ray.get(self.known)
        if item["path"]:
            docs = file_documents(Path(item["path"]), item["doc_id"], LoadResult(documents=[]))
        else:
            docs = [Document(id=item["doc_id"], text=item["text"])]
        out = []
        for doc in docs:
            for c in self._chunker.chunk(doc):
                key = text_key(c.text)
                if key not in self.known:
                    out.append({"key": key, "text": c.text})
        return out


class EmbedActor:
    """One embedder per actor (a Ray Data `map_batches` class): texts in, vectors out."""

    def __init__(self, model: str, batch_size: int, device: str | None = None, encoder: str = "auto") -> None:
        # the driver's resolved variant: vectors of two encoder variants never meet in one cache
        self.embedder = Embedder(model, batch_size=batch_size, use_cache=False, device=device, encoder=encoder)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        texts = [str(t) for t in batch["text"]]
        return {"key": batch["key"], "vector": self.embedder.encode(texts)}


def embed_on_ray(sources: Iterable[Any], config: Any, ray_config: RayEmbedConfig | None = None,
                 *, embedder: Embedder | None = None) -> tuple[Embedder, dict[str, Any]]:
    """Embed every chunk of `sources` not yet in the cache on the cluster; returns the
    driver's `Embedder` (its cache now holds them) and stats for the report."""
    from core.ray_cluster import init_ray

    rc = ray_config or RayEmbedConfig()
    t0 = time.perf_counter()
    if embedder is None:
        embedder = Embedder(config.embedder, batch_size=config.batch_size, cache_dir=config.embedding_cache,
                            use_cache=config.use_embedding_cache, encoder=config.encoder)
    if embedder.cache is None:
        embedder.cache = _MemoryCache()
    items = list_items(sources)
    ray = init_ray(rc.address)
    known = frozenset(embedder.cache._load())
    stats: dict[str, Any] = {"files": len(items), "cached_before": len(known)}
    if not items:
        return embedder, {**stats, "chunks_sent": 0, "seconds": 0.0}
    import ray.data  # noqa: F811 (the submodule, on the module init_ray returned)

    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    resources = ray.cluster_resources()
    gpus = int(resources.get("GPU", 0))
    num_gpus = rc.num_gpus if rc.num_gpus is not None else (1 if gpus else 0)
    actors = rc.actors or (max(1, int(gpus // num_gpus)) if num_gpus else max(1, int(resources.get("CPU", 1) // rc.cpus_per_actor)))
    known_ref = ray.put(known)
    ds = ray.data.from_items(items, override_num_blocks=min(len(items), max(1, actors * 4)))
    chunks = ds.flat_map(ChunkFiles(config.chunking, config.embedder, known_ref)).materialize()
    n = chunks.count()
    stats.update(chunks_sent=n, actors=actors if n else 0, num_gpus_per_actor=num_gpus)
    if n:
        vectors = chunks.map_batches(
            EmbedActor, fn_constructor_args=(config.embedder, config.batch_size, "cuda" if num_gpus else None,
                                             embedder.encoder),
            batch_size=rc.batch_rows, concurrency=min(actors, max(1, -(-n // rc.batch_rows))),
            num_cpus=rc.cpus_per_actor, num_gpus=num_gpus, batch_format="numpy")
        got, keys, vecs = 0, [], []
        for batch in vectors.iter_batches(batch_size=None, batch_format="numpy"):
            keys += [bytes(k) for k in batch["key"]]
            vecs.append(np.ascontiguousarray(np.stack(batch["vector"]), dtype=np.float32))
            if len(keys) >= SHARD_ROWS or got + len(keys) == n:  # a cache shard per few thousand vectors
                embedder.cache.put_many_keys(keys, np.concatenate(vecs))
                got, keys, vecs = got + len(keys), [], []
        if keys:
            embedder.cache.put_many_keys(keys, np.concatenate(vecs))
            got += len(keys)
        stats["chunks_embedded_on_cluster"] = got
    stats["seconds"] = round(time.perf_counter() - t0, 3)
    return embedder, stats


def build_on_ray(sources: Iterable[Any], directory: str | os.PathLike, config: Any = None, *,
                 ray_config: RayEmbedConfig | None = None, **build_kwargs: Any):
    """`Index.build` with the embedding done on the cluster first; the index's
    ``last_update`` gains a ``ray`` entry."""
    from rag.index import Index, IndexConfig

    sources = list(sources)
    config = config or IndexConfig()
    embedder, stats = embed_on_ray(sources, config, ray_config)
    index = Index.build(sources, directory, config, embedder=embedder, **build_kwargs)
    index.last_update = {**index.last_update, "ray": stats}
    return index


__all__ = ["ChunkFiles", "EmbedActor", "RayEmbedConfig", "build_on_ray", "embed_on_ray", "list_items"]
