"""Sentence embeddings: batched, L2-normalized float32, with an on-disk cache.

The cache maps (model id, sha256 of the text) to a vector, so indexing text that was
embedded before — an unchanged document, a chunk shared by two versions of a file, the
same corpus in a second index — costs no model call. It is plain numpy: each write adds
one shard under `<cache>/embeddings/<model slug>/`, written atomically; no pickle:

    <name>.vecs.npy   float32 rows                         written first
    <name>.sum.npy    size and sha256 of the two others    second
    <name>.keys.npy   fixed-width hash bytes               last: the shard's commit point

A shard is read only when its keys file exists, and only if both files match its
checksums; a shard that does not (a flipped byte, a 0-byte file) is dropped with a
one-line warning on stderr and deleted, and its texts are embedded again. Shards from
before checksums (no .sum.npy) are read when they parse and hold finite numbers.
Writers hold a shared flock on `.<model slug>.lock` beside the shard directory while they
write; the first loader that can take it exclusively removes what killed writers left
(vecs/sum files without keys, temp files), and merges shards once there are too many.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import os
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from core.files import atomic_open, fault


def default_cache_dir() -> Path:
    from core.models import cache_dir

    return cache_dir() / "embeddings"


def _slug(model_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", model_id).strip("_")[:80] or "model"


def variant_id(model_id: str, variant: str = "torch") -> str:
    """The name vectors are kept under: the model, plus the encoder variant unless it is
    torch (sentence-transformers itself, what every cache held before variants), e.g.
    `all-MiniLM-L6-v2@onnx-int8`. Vectors of two variants never share a cache."""
    from core.models import canonical_name

    base = canonical_name(model_id) or model_id
    return base if variant in (None, "", "torch") else f"{base}@{variant}"


def text_key(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:16]


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    return buf.getvalue()


class _BadShard(Exception):
    pass


class EmbeddingCache:
    """Vectors of previously embedded texts for one model, keyed by content hash."""

    MAX_SHARDS = 64  # beyond this many shards, they are merged into one on load

    def __init__(self, root: str | os.PathLike, model_id: str, variant: str = "torch") -> None:
        # a logical name and its hub id are the same model: one cache; each encoder variant its own
        base, _, var = variant_id(model_id, variant).partition("@")
        self.dir = Path(root) / (_slug(base) + (f"@{_slug(var)}" if var else ""))
        self._map: dict[bytes, np.ndarray] | None = None

    @property
    def _lock_path(self) -> Path:
        # beside the shard directory, so that directory holds only .npy files
        return self.dir.parent / f".{self.dir.name}.lock"

    def _lock(self, exclusive: bool) -> int | None:
        """A flock on the cache's lock file: shared (writers, blocking) or exclusive
        (cleanup, only if free at once). None when exclusive and busy."""
        self.dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            os.close(fd)
            return None
        return fd

    def _read_shard(self, keys_file: Path) -> tuple[np.ndarray, np.ndarray]:
        stem = keys_file.name[: -len(".keys.npy")]
        vecs_file, sum_file = self.dir / f"{stem}.vecs.npy", self.dir / f"{stem}.sum.npy"
        try:
            kb, vb = keys_file.read_bytes(), vecs_file.read_bytes()
        except FileNotFoundError:
            if not keys_file.exists():
                raise  # merged and removed by another process meanwhile: not corrupt
            raise _BadShard(f"{vecs_file.name} is missing") from None
        try:
            if sum_file.exists():
                sums = [x.decode("ascii") for x in np.load(io.BytesIO(sum_file.read_bytes()), allow_pickle=False)]
                if len(sums) != 4:
                    raise _BadShard(f"{sum_file.name} is malformed")
                for name, data, size, digest in (("keys", kb, sums[0], sums[1]), ("vecs", vb, sums[2], sums[3])):
                    if str(len(data)) != size:
                        raise _BadShard(f"{name} file is {len(data)} bytes, its checksum says {size}")
                    if hashlib.sha256(data).hexdigest() != digest:
                        raise _BadShard(f"{name} file does not match its sha256")
            keys = np.load(io.BytesIO(kb), allow_pickle=False)
            vecs = np.load(io.BytesIO(vb), allow_pickle=False)
        except _BadShard:
            raise
        except (OSError, ValueError, EOFError, UnicodeDecodeError) as exc:
            raise _BadShard(f"unreadable ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
        if keys.ndim != 1 or vecs.ndim != 2 or len(keys) != len(vecs) or vecs.dtype != np.float32:
            raise _BadShard(f"keys {keys.shape} and vectors {vecs.shape} {vecs.dtype} do not pair up")
        if not np.isfinite(vecs).all():
            raise _BadShard("holds non-finite numbers")
        return keys, vecs

    def _drop(self, keys_file: Path, reason: str) -> None:
        stem = keys_file.name[: -len(".keys.npy")]
        print(f"assay: warning: embedding cache shard {keys_file} is corrupt ({reason}); dropped, "
              "its texts will be embedded again", file=sys.stderr)
        for suffix in (".keys.npy", ".sum.npy", ".vecs.npy"):  # keys first: un-commit the shard
            (self.dir / f"{stem}{suffix}").unlink(missing_ok=True)

    def _load(self) -> dict[bytes, np.ndarray]:
        if self._map is None:
            self._map = {}
            self._loaded: list[Path] = []
            if self.dir.is_dir():
                for keys_file in sorted(self.dir.glob("*.keys.npy")):
                    try:
                        keys, vecs = self._read_shard(keys_file)
                    except FileNotFoundError:
                        continue
                    except _BadShard as exc:
                        self._drop(keys_file, str(exc))
                        continue
                    self._loaded.append(keys_file)
                    for k, v in zip(keys, vecs):
                        self._map[bytes(k)] = v
                self._tidy()
        return self._map

    def _tidy(self) -> None:
        """If no writer is mid-shard: remove killed writers' leftovers; merge many shards."""
        fd = self._lock(exclusive=True)
        if fd is None:
            return
        try:
            for f in self.dir.iterdir():
                name = f.name
                if name.startswith(".") and name.endswith(".tmp"):
                    f.unlink(missing_ok=True)
                for suffix in (".vecs.npy", ".sum.npy"):
                    if name.endswith(suffix) and not (self.dir / (name[: -len(suffix)] + ".keys.npy")).exists():
                        f.unlink(missing_ok=True)
            if len(self._loaded) > self.MAX_SHARDS:
                self._compact()
        finally:
            os.close(fd)

    def _compact(self) -> None:
        """Rewrite the shards we loaded as one (new shard first, then delete the old: a
        crash in between only leaves duplicates, which load to the same vectors)."""
        old = list(self._loaded)
        keys = list(self._map)
        self._map, mapping = {}, self._map
        self._write_shard(keys, np.stack([mapping[k] for k in keys]))
        for keys_file in old:
            stem = keys_file.name[: -len(".keys.npy")]
            for suffix in (".keys.npy", ".sum.npy", ".vecs.npy"):
                (self.dir / f"{stem}{suffix}").unlink(missing_ok=True)

    def put_many_keys(self, keys: list[bytes], vectors: np.ndarray) -> None:
        fd = self._lock(exclusive=False)
        try:
            self._write_shard(keys, vectors)
        finally:
            os.close(fd)

    def _write_shard(self, keys: list[bytes], vectors: np.ndarray) -> None:
        name = uuid.uuid4().hex
        vb = _npy_bytes(np.ascontiguousarray(vectors, dtype=np.float32))
        kb = _npy_bytes(np.array(keys, dtype="S16"))
        sums = np.array([str(len(kb)), hashlib.sha256(kb).hexdigest(), str(len(vb)), hashlib.sha256(vb).hexdigest()],
                        dtype="S64")
        with atomic_open(self.dir / f"{name}.vecs.npy", "wb") as fh:
            fh.write(vb)
        fault("cache:after_vecs")
        with atomic_open(self.dir / f"{name}.sum.npy", "wb") as fh:
            fh.write(_npy_bytes(sums))
        with atomic_open(self.dir / f"{name}.keys.npy", "wb") as fh:  # the commit point
            fh.write(kb)
        if self._map is not None:
            for k, v in zip(keys, vectors):
                self._map[bytes(k)] = v

    def get_many(self, texts: list[str]) -> list[np.ndarray | None]:
        m = self._load()
        return [m.get(text_key(t)) for t in texts]

    def put_many(self, texts: list[str], vectors: np.ndarray) -> None:
        if not len(texts):
            return
        self._load()
        self.put_many_keys([text_key(t) for t in texts], vectors)

    def __len__(self) -> int:
        return len(self._load())


class Embedder:
    """A sentence-transformers model, loaded on first use.

    `encode(texts)` returns an (n, d) float32 array of L2-normalized rows. With a cache,
    only texts never embedded by this model (and encoder variant) before reach the model.

    `encoder` picks how the model runs (rag/onnx_encoder.py): `onnx-int8` (ONNX Runtime,
    dynamic int8), `onnx` (ONNX Runtime, fp32), `torch` (sentence-transformers), or `auto`
    (the default): onnx-int8 on CPU for a model whose export is supported, torch on a GPU or
    for any other model (`encoder_reason` says why). The chosen variant is `encoder`; it is
    part of the cache key and of an index's manifest, and queries use the same one.
    """

    def __init__(self, model: str = "all-MiniLM-L6-v2", *, batch_size: int = 32,
                 cache_dir: str | os.PathLike | None = None, use_cache: bool = True,
                 device: str | None = None, encoder: str | None = None) -> None:
        self.model_id = model
        self.batch_size = batch_size
        self.device = device
        self.encoder, self.encoder_reason = _choose_encoder(model, encoder, device)
        self.cache = EmbeddingCache(cache_dir or default_cache_dir(), model, self.encoder) if use_cache else None
        self._onnx: Any = None  # rag.onnx_encoder.OnnxEncoder, loaded on first use
        self._model: Any = None
        self._dim: int | None = None
        self._light: Any = None  # rag.query_encoder.LightQueryEncoder, False when not applicable
        self.model_calls = 0  # texts actually sent to the model (for tests and reports)

    @property
    def model(self):
        if self._model is None:
            from core.models import load_sentence_transformer

            self._model = load_sentence_transformer(self.model_id, device=self.device)
        return self._model

    @property
    def variant_id(self) -> str:
        """`model@variant` (the model alone for torch): what the cache is keyed by."""
        return variant_id(self.model_id, self.encoder)

    def _onnx_encoder(self):
        if self._onnx is None:
            from core.models import resolve
            from rag.onnx_encoder import OnnxEncoder

            self._onnx = OnnxEncoder(resolve(self.model_id), self.encoder)
        return self._onnx

    @property
    def dim(self) -> int:
        if self._dim is None and self.encoder != "torch":
            self._dim = self._onnx_encoder().dim
        if self._dim is None:
            get = getattr(self.model, "get_embedding_dimension", None) or \
                getattr(self.model, "get_sentence_embedding_dimension", None)
            self._dim = int(get()) if get else int(self._encode_model(["x"], False).shape[1])
        return self._dim

    @property
    def tokenizer(self):
        return self.model.tokenizer

    def _encode_model(self, texts: list[str], progress: bool) -> np.ndarray:
        self.model_calls += len(texts)
        if self.encoder != "torch":
            return self._onnx_encoder().encode(texts, self.batch_size)
        vecs = self.model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True,
                                 normalize_embeddings=True, show_progress_bar=progress)
        return np.ascontiguousarray(vecs, dtype=np.float32)

    def encode(self, texts: list[str], *, progress: bool = False, cache: bool | None = None) -> np.ndarray:
        texts = list(texts)
        use_cache = self.cache is not None and (cache if cache is not None else True)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        if not use_cache:
            return self._encode_model(texts, progress)
        found = self.cache.get_many(texts)
        missing_idx = [i for i, v in enumerate(found) if v is None]
        # the same text twice in one call is embedded once
        unique: dict[str, int] = {}
        for i in missing_idx:
            unique.setdefault(texts[i], len(unique))
        if unique:
            fresh = self._encode_model(list(unique), progress)
            self.cache.put_many(list(unique), fresh)
        else:
            fresh = None
        dim = fresh.shape[1] if fresh is not None else len(next(v for v in found if v is not None))
        out = np.empty((len(texts), dim), dtype=np.float32)
        for i, v in enumerate(found):
            out[i] = v if v is not None else fresh[unique[texts[i]]]
        return out

    def encode_query(self, query: str) -> np.ndarray:
        """One query vector, shape (d,); queries bypass the cache (cheap, rarely repeated).

        One short sequence is too small a job to split across threads: with intra-op
        parallelism the threads mostly wait for each other, and on a busy machine a 2-thread
        forward pass measured ~6x slower than a 1-thread one. So it runs on one thread.

        While the model is not loaded, a mean-pooled BERT (the default all-MiniLM-L6-v2) runs
        in numpy instead (rag/query_encoder.py: the same vector to float32 rounding), so a
        one-query search never imports torch or sentence-transformers.

        With an ONNX encoder the query runs through the same ONNX graph as the documents
        (int8 queries against int8 documents; bench/embedding.py measures the alternative)."""
        if self.encoder != "torch":
            self.model_calls += 1
            return self._onnx_encoder().encode([query])[0]
        if self._model is None:
            light = self._light_encoder()
            if light is not None:
                self.model_calls += 1
                vec = light.encode(query)
                norm = float(np.linalg.norm(vec))
                return vec / norm if norm > 0 else vec
        with _single_thread():
            try:
                return self._forward_one(query)
            except Exception:  # noqa: BLE001 - a model whose modules want more than text
                return self._encode_model([query], False)[0]

    def _light_encoder(self):
        """The numpy query encoder for this model, or None (not a local mean-pooled BERT, or
        ASSAY_LIGHT_QUERY_ENCODER=0)."""
        if self._light is False:
            return None
        if self._light is None:
            self._light = False
            if os.environ.get("ASSAY_LIGHT_QUERY_ENCODER", "1").strip() not in ("0", "false", "no", "off"):
                from core.models import is_offline_copy, resolve

                if is_offline_copy(self.model_id) or os.path.isdir(os.path.expanduser(self.model_id)):
                    from rag.query_encoder import LightQueryEncoder

                    self._light = LightQueryEncoder.load(resolve(self.model_id)) or False
        return self._light or None

    def _forward_one(self, text: str) -> np.ndarray:
        """The model's own modules on one text, without `SentenceTransformer.encode`'s
        batching machinery (a quarter of a one-query call here); the same vector."""
        import torch

        model = self.model
        prepare = getattr(model, "preprocess", None) or model.tokenize
        features = prepare([text])
        device = getattr(model, "device", None)
        if device is not None and str(device) != "cpu":
            features = {k: v.to(device) if hasattr(v, "to") else v for k, v in features.items()}
        with torch.inference_mode():
            vec = model.forward(features)["sentence_embedding"][0].float().cpu().numpy()
        self.model_calls += 1
        norm = float(np.linalg.norm(vec))
        return np.ascontiguousarray(vec / norm if norm > 0 else vec, dtype=np.float32)


def _choose_encoder(model: str, encoder: str | None, device: str | None) -> tuple[str, str]:
    """(variant, reason) without importing torch or onnxruntime: only a local model folder
    (an offline package or a path) is looked at, never the hub."""
    from rag.onnx_encoder import choose_variant

    if (encoder or "auto").strip().lower() == "torch":
        return "torch", "requested"
    from core.models import is_offline_copy, resolve

    path = resolve(model) if is_offline_copy(model) or os.path.isdir(os.path.expanduser(model)) else None
    return choose_variant(path, encoder, device)


class _single_thread:
    """Run torch on one intra-op thread inside the block, then restore the setting."""

    def __enter__(self):
        import torch

        self._prev = torch.get_num_threads()
        if self._prev != 1:
            torch.set_num_threads(1)
        return self

    def __exit__(self, *exc):
        import torch

        if self._prev != 1:
            torch.set_num_threads(self._prev)
