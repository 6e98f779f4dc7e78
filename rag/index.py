"""The index: a directory holding chunks, vectors, a FAISS index and BM25, updated
incrementally and atomically.

    index = Index.build(["docs/"], "idx")              # or Index.open("idx")
    hits = index.search("how do wings stall?", k=5)     # mode="hybrid" | "bm25" | "dense"
    index.update(["docs/"])                             # {"added": 1, "changed": 0, ...}

Layout of `DIR`:

    manifest.json        format version, embedder id and dimension, chunking / FAISS /
                         BM25 / fusion settings, counts, which version directory is live,
                         size + sha256 of every file of that version, and its own checksum
    .assay-index.lock    the writer lock (holds the pid of the last writer); written first,
                         so it also marks a half-built directory as assay's own
    v000003-1a2b/        one complete version (never modified once written):
        docs.jsonl       per document: id, source, content hash, meta, its chunk range
        chunks.jsonl     per chunk (line = position): id, doc_id, start, end, text
        vectors.npy      float32 (chunks x dim), L2-normalized; row = chunk position
        dense.faiss      FAISS's own file
        bm25/            term postings (.npy) and vocabulary (JSON)
    .v000003-1a2b.lease  readers hold a shared flock on it while they open that version

Atomicity: a write builds a complete new version directory under a temporary name,
fsyncs it, renames it into place, and only then replaces manifest.json (an atomic
rename). A process killed at any moment leaves manifest.json pointing at a complete
version (or, during a first build, no manifest.json: the next `assay index` recognises the
directory by its lock file and builds afresh).

One writer at a time: every write (build, update, rebuild) holds an exclusive flock on
`.assay-index.lock`, re-reads the manifest under it (so it updates what the previous writer
committed, never a stale copy), and a second writer waits up to `--lock-timeout` /
$ASSAY_INDEX_LOCK_TIMEOUT seconds (default 600), then fails in one line naming the index
and the holder's pid. Two writers never both commit from the same base; no update is lost.

Readers never see a version vanish: `Index.open` reads the manifest, takes a shared flock on
that version's lease file (checking the version is still there, else re-reading the
manifest), reads the files, and lets go. A writer removes an old version only after it has
committed a newer one and only if it can take that lease exclusively, so never while a reader
is opening it; an open Index needs no file afterwards (everything is loaded, and
vectors.npy is memory-mapped, which keeps its pages valid after the file is removed). Stale
versions, temporary directories and `.manifest.json.*.tmp` files left by killed writers are
removed by the next write under the lock, even one that changes nothing.

Nothing corrupt is served silently: the manifest records size and sha256 of every file of
the version and checksums itself. `open` checks every file's size, and hashes every file it
reads in full anyway, plus vectors.npy while it is at most `VERIFY_ON_OPEN_MAX_BYTES`
(sha256 runs at ~1.6 GB/s here: all of Cranfield, 3,387 chunks in 14 MB of files, opens in
~28 ms instead of ~20 ms); an update hashes vectors.npy before copying any of its rows;
`Index.verify()` / `assay index --verify` hash everything. A mismatch, a missing file or an
unparseable one raises
`IndexCorruptError` (a user error: one line, exit status 2) naming the file and saying to
rebuild with `assay index ... --rebuild`, which works even when manifest.json is gone or
unreadable. Indexes written before checksums open as before and gain them at their next
write.

Incremental: documents are compared by id and sha256 of their text. Unchanged documents
keep their chunks and vectors (copied, never re-embedded); new and changed ones are
chunked and embedded (through the embedding cache, so even text seen before costs no
model call); removed ones are dropped. BM25 statistics are corpus-wide (idf, average
length), so the sparse index is recomputed from the chunk texts, which takes well under a
second per ten thousand chunks; FAISS is extended in place when documents were only added,
else rebuilt from the stored vectors (no model calls either way).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from core.errors import UserError
from core.files import atomic_open, fault, fsync_dir
from rag.bm25 import BM25Config, BM25Index
from rag.chunking import ChunkConfig, Chunker
from rag.dense import DenseConfig, DenseIndex
from rag.documents import Chunk, Document, Hit, load_sources
from rag.embeddings import Embedder
from rag.fusion import FusionConfig, fuse
from rag.qdrant_store import QdrantConfig

FORMAT = "assay-index"
FORMAT_VERSION = 1
MODES = ("hybrid", "bm25", "dense")


class IndexDirectoryError(UserError, ValueError):
    """An index directory cannot be used as asked (missing, other format or embedder)."""


class IndexCorruptError(IndexDirectoryError):
    """A file of the index does not match its checksum, is missing, or cannot be parsed."""


class IndexBusyError(IndexDirectoryError):
    """Another process kept the index's writer lock for longer than we would wait."""


LOCK_NAME = ".assay-index.lock"
LOCK_TIMEOUT = 600.0
"""Seconds a writer waits for another writer's lock ($ASSAY_INDEX_LOCK_TIMEOUT overrides)."""
VERIFY_ON_OPEN_MAX_BYTES = 256 * 2**20
"""`open` hashes vectors.npy (memory-mapped, not read) only up to this size; sizes always."""
_VERSION_RE = re.compile(r"^v\d{6}-[0-9a-f]{6}$")
_HELD: dict[tuple[str, int], list] = {}  # (index dir, thread) -> [lock fd, depth]: re-entrant


def _corrupt(path: Path, what: str, directory: Path) -> IndexCorruptError:
    return IndexCorruptError(f"{path}: {what}; the index is damaged — rebuild it with "
                             f"`assay index PATH... --index {directory} --rebuild`")


def _is_own_entry(name: str) -> bool:
    """Names only assay writes into an index directory (also by killed or older writers)."""
    return (name in ("manifest.json", LOCK_NAME) or bool(_VERSION_RE.match(name))
            or name.startswith((".tmp-v", ".trash-v"))
            or (name.startswith(".manifest.json.") and name.endswith(".tmp"))
            or (name.startswith(".v") and name.endswith(".lease")))


def _is_foreign(directory: Path) -> bool:
    """True when `directory` holds something assay did not write (we must not touch it)."""
    if not directory.is_dir() or (directory / "manifest.json").exists():
        return False
    return any(not _is_own_entry(p.name) for p in directory.iterdir())


def _lock_timeout(timeout: float | None) -> float:
    if timeout is not None:
        return float(timeout)
    env = os.environ.get("ASSAY_INDEX_LOCK_TIMEOUT")
    try:
        return float(env) if env else LOCK_TIMEOUT
    except ValueError:
        raise IndexDirectoryError(f"ASSAY_INDEX_LOCK_TIMEOUT={env!r} is not a number of seconds") from None


@contextlib.contextmanager
def writer_lock(directory: str | os.PathLike, timeout: float | None = None):
    """Hold the index's exclusive writer lock (re-entrant within one thread). Waits up to
    `timeout` seconds for another writer, then raises IndexBusyError naming its pid."""
    directory = Path(directory)
    key = (os.path.realpath(directory), threading.get_ident())
    held = _HELD.get(key)
    if held is not None:
        held[1] += 1
        try:
            yield
        finally:
            held[1] -= 1
        return
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        limit = _lock_timeout(timeout)
        start = time.monotonic()
        told = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = time.monotonic() - start
                holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "?"
                if waited >= limit:
                    raise IndexBusyError(
                        f"{directory}: another assay process (pid {holder}) is writing this index; gave up "
                        f"after waiting {limit:g} s — try again when it has finished "
                        "(or wait longer: --lock-timeout / $ASSAY_INDEX_LOCK_TIMEOUT)") from None
                if not told and waited > 2:
                    print(f"assay: {directory} is being written by pid {holder}; waiting (up to {limit:g} s)",
                          file=sys.stderr)
                    told = True
                time.sleep(min(0.05, max(0.0, limit - waited)))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        _HELD[key] = [fd, 1]
        fault("index:locked")
        yield
    finally:
        _HELD.pop(key, None)
        os.close(fd)  # releases the flock


def _lease(directory: Path, version: str) -> tuple[str, int | None]:
    """A shared flock on `version`'s lease file: ("ok", fd) while it is held (fd None when
    the directory is read-only and predates leases), else ("gone", None) when the version
    is missing or being removed (the caller re-reads the manifest)."""
    path = directory / f".{version}.lease"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o666)
    except FileNotFoundError:
        return "gone", None
    except OSError:  # a read-only index directory: nobody can remove versions there either
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return ("ok", None) if (directory / version).is_dir() else ("gone", None)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:  # a writer holds it exclusively: it is removing this version
        os.close(fd)
        return "gone", None
    if os.fstat(fd).st_nlink == 0 or not (directory / version).is_dir():
        os.close(fd)
        return "gone", None
    return "ok", fd


def _release(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while True:
            block = fh.read(1 << 20)
            if not block:
                return h.hexdigest()
            h.update(block)


def _manifest_checksum(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(directory: str | os.PathLike) -> dict[str, Any]:
    """The checked manifest of the index in `directory` (user errors otherwise)."""
    directory = Path(directory)
    path = directory / "manifest.json"
    if not path.exists():
        interrupted = directory.is_dir() and not _is_foreign(directory) and any(directory.iterdir())
        raise IndexDirectoryError(f"{directory}: no assay index here (no manifest.json"
                                  f"{'; a first build was interrupted' if interrupted else ''}); "
                                  "build one with `assay index`")
    try:
        manifest = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _corrupt(path, f"unreadable manifest ({type(exc).__name__}: {str(exc).splitlines()[0]})",
                       directory) from None
    if not isinstance(manifest, dict):
        raise _corrupt(path, "unreadable manifest (not a JSON object)", directory)
    if manifest.get("format") == FORMAT and manifest.get("format_version") != FORMAT_VERSION:
        # before the checksum: another format version may checksum differently
        raise IndexDirectoryError(f"{path}: index format version {manifest.get('format_version')} is not "
                                  f"supported by this assay (which reads version {FORMAT_VERSION}); rebuild it "
                                  "with `assay index --rebuild`")
    if "checksum" in manifest or "checksums" in manifest:  # written by an assay that checksums
        if not isinstance(manifest.get("checksums"), dict) or manifest.get("checksum") != _manifest_checksum(manifest):
            raise _corrupt(path, "manifest does not match its checksum", directory)
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise IndexDirectoryError(f"{path}: not an assay index manifest (to replace it: `assay index PATH... "
                                  f"--index {directory} --rebuild`)")
    if (not isinstance(manifest.get("version"), str) or not _VERSION_RE.match(manifest["version"])
            or not isinstance(manifest.get("config"), dict) or not isinstance(manifest.get("embedder"), dict)):
        raise _corrupt(path, "manifest lacks a valid version, config or embedder", directory)
    # the encoder variant that built it; indexes from before variants were built by torch
    manifest["config"].setdefault("encoder", manifest["embedder"].get("encoder") or "torch")
    return manifest


def _verify_files(directory: Path, manifest: dict[str, Any], *, full: bool) -> tuple[set[str], int]:
    """Check the live version's files against the manifest's checksums: sizes always,
    sha256 of every file (`full`) or of all but a large vectors.npy. Returns the names
    hashed and the bytes hashed."""
    vdir = directory / manifest["version"]
    hashed: set[str] = set()
    total = 0
    for rel, want in sorted(manifest["checksums"].items()):
        path = vdir / rel
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            raise _corrupt(path, "file is missing", directory) from None
        if size != want.get("size"):
            raise _corrupt(path, f"size {size} bytes, the manifest says {want.get('size')}", directory)
        if full or rel != "vectors.npy" or size <= VERIFY_ON_OPEN_MAX_BYTES:
            if _digest(path) != want.get("sha256"):
                raise _corrupt(path, "contents do not match the manifest's sha256", directory)
            hashed.add(rel)
            total += size
    return hashed, total


def verify_index(directory: str | os.PathLike) -> dict[str, Any]:
    """Hash every file of the live version of the index in `directory` (and its manifest)
    against the recorded checksums; returns what was checked or raises IndexCorruptError."""
    directory = Path(directory)
    t0 = time.perf_counter()
    for _ in range(1000):
        manifest = read_manifest(directory)
        status, fd = _lease(directory, manifest["version"])
        if status == "ok":
            break
        _check_version_present(directory, manifest)
        time.sleep(0.005)
    else:
        raise IndexDirectoryError(f"{directory}: the index kept changing while being verified; try again")
    try:
        if "checksums" not in manifest:
            return {"directory": str(directory), "version": manifest["version"], "files": 0, "bytes": 0,
                    "checksummed": False, "seconds": round(time.perf_counter() - t0, 4)}
        hashed, total = _verify_files(directory, manifest, full=True)
    finally:
        _release(fd)
    return {"directory": str(directory), "version": manifest["version"], "files": len(hashed) + 1,
            "bytes": total + (directory / "manifest.json").stat().st_size, "checksummed": True,
            "seconds": round(time.perf_counter() - t0, 4)}


def _check_version_present(directory: Path, manifest: dict[str, Any]) -> None:
    """After a failed lease: if the manifest still names a version that does not exist, the
    index is damaged (else a writer just replaced it, and the caller retries)."""
    vdir = directory / manifest["version"]
    if vdir.is_dir():
        return
    try:
        again = read_manifest(directory)
    except IndexDirectoryError:
        return  # the caller's retry reports it
    if again.get("version") == manifest["version"]:
        raise _corrupt(vdir, "version directory named by manifest.json is missing", directory)


@dataclass
class IndexConfig:
    embedder: str = "all-MiniLM-L6-v2"
    """Sentence-transformers model: logical name, hub id or path."""
    encoder: str = "auto"
    """How the embedder runs: onnx-int8, onnx, torch, or auto (onnx-int8 on CPU where the
    model supports it, else torch). An index records the variant that built it (an index
    written before variants: torch); its updates and queries use that one."""
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
    backend: str = "faiss"
    """Where the vectors live: `faiss` (files in the index directory) or `qdrant` (a
    Qdrant collection; rag/qdrant_store.py). The directory holds manifest and chunks either way."""
    qdrant: QdrantConfig = field(default_factory=QdrantConfig)
    """The Qdrant collection and its location (`backend="qdrant"` only)."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "IndexConfig":
        from core.config import from_dict

        fusion = data.get("fusion") if isinstance(data, dict) else None
        if not isinstance(fusion, dict):
            return from_dict(cls, data, "index config")
        config = from_dict(cls, {k: v for k, v in data.items() if k != "fusion"}, "index config")
        return dataclasses.replace(config, fusion=FusionConfig.from_manifest(fusion))


def _index_class(backend: str | None) -> type["Index"]:
    """The Index class of a backend (`qdrant`'s is imported only when used)."""
    if backend in (None, "faiss"):
        return Index
    if backend == "qdrant":
        from rag.qdrant_index import QdrantIndex

        return QdrantIndex
    raise IndexDirectoryError(f"unknown index backend {backend!r}; use faiss or qdrant")


def _to_dict(obj: Any) -> Any:
    from core.config import to_dict

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


def read_version(directory: Path, manifest: dict[str, Any], readers) -> tuple[Path, set[str], "IndexConfig", dict]:
    """Read an index version: its checksums checked (cheaply), its config, its documents and
    chunks, then each backend file by `readers` -- ``(name, fn(path, read_so_far, config))``,
    in order. Any file that cannot be read is a one-line corruption error naming it. One
    reader for every backend (FAISS here, Qdrant in rag.qdrant_index)."""
    vdir = directory / manifest["version"]
    hashed: set[str] = set()
    if "checksums" in manifest:
        hashed, _ = _verify_files(directory, manifest, full=False)
    config = IndexConfig.from_dict(manifest["config"])
    common = (("docs.jsonl", lambda path, got, config: [_DocEntry(**json.loads(line)) for line in _lines(path)]),
              ("chunks.jsonl", lambda path, got, config: [Chunk(**json.loads(line)) for line in _lines(path)]))
    got: dict[str, Any] = {}
    current = vdir
    try:
        for name, read in (*common, *readers):
            current = vdir / name
            got[name] = read(current, got, config)
    except (OSError, ValueError, EOFError, RuntimeError, KeyError, TypeError, IndexError) as exc:
        # only an index without checksums (an older assay's) or a truly odd file gets here
        what = str(exc).splitlines()[0] if str(exc) else ""
        raise _corrupt(current, f"cannot be read ({type(exc).__name__}: {what})", directory) from None
    return vdir, hashed, config, got


def plan_update(current: list["_DocEntry"], loaded: Any) -> tuple[list["_DocEntry"], list[Document], list["_DocEntry"], dict]:
    """What an update does, by content hash: (kept entries in their old order, documents
    to chunk and embed, removed entries, the counts for the report). One plan for every
    backend, so FAISS and Qdrant indexes agree on what changed."""
    old = {d.id: d for d in current}
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
    removed = [d for d in current if d.id not in new_ids]
    order = {d.id: i for i, d in enumerate(current)}
    kept.sort(key=lambda d: order[d.id])  # keep old positions' order
    stats = {"added": added, "changed": changed, "removed": len(removed), "unchanged": len(kept),
             "skipped": len(loaded.skipped), "ignored": loaded.ignored, "chunks_embedded": 0,
             "model_calls": 0, "documents": len(loaded.documents)}
    return kept, todo, removed, stats


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
        self._verified: set[str] = set()  # files of this version whose sha256 was checked
        self.lock_timeout: float | None = None  # seconds to wait for another writer

    # ---- front door -----------------------------------------------------------------
    @classmethod
    def build(cls, sources: Iterable[str | os.PathLike | Document], directory: str | os.PathLike,
              config: IndexConfig | None = None, *, progress: bool = True, rebuild: bool = False,
              embedder: Embedder | None = None, lock_timeout: float | None = None) -> "Index":
        """Index `sources` into `directory`. An existing index there is updated
        incrementally (same embedder and chunking required unless `rebuild`).
        `embedder`: an already loaded Embedder to use (its model must match the config).
        Holds the writer lock throughout, waiting up to `lock_timeout` seconds for it."""
        directory = Path(directory)
        if _is_foreign(directory):
            raise IndexDirectoryError(f"{directory}: exists and is not an assay index; choose an empty or new directory")
        with writer_lock(directory, lock_timeout):
            if (directory / "manifest.json").exists() and not rebuild:
                index = cls.open(directory)
                index.lock_timeout = lock_timeout
                if embedder is not None:
                    index.embedder = embedder
                if config is not None:
                    index._check_compatible(config)
                    fusion = config.fusion
                    if index.manifest.get("fusion_tuned") and _to_dict(fusion) == _to_dict(FusionConfig()):
                        fusion = index.config.fusion  # chosen by `--tune`: kept unless another one is given
                    index.config = dataclasses.replace(
                        index.config, dense=config.dense, bm25=config.bm25, fusion=fusion,
                        batch_size=config.batch_size, embedding_cache=config.embedding_cache,
                        use_embedding_cache=config.use_embedding_cache)
                index.update(sources, progress=progress)
                return index
            # a new index, a rebuild, or a first build that was killed (no manifest yet)
            config = config or IndexConfig()
            if embedder is not None and not _same_model(embedder.model_id, config.embedder):
                raise IndexDirectoryError(f"embedder {embedder.model_id!r} does not match config.embedder {config.embedder!r}")
            empty = _index_class(config.backend)(directory, config, {}, [], [], np.zeros((0, 0), np.float32),
                        DenseIndex(config.dense), BM25Index(config.bm25))
            if embedder is not None:
                empty.embedder = embedder  # checks and records its encoder variant
            empty.lock_timeout = lock_timeout
            empty.update(sources, progress=progress, _fresh=True)
            return empty

    @classmethod
    def open(cls, directory: str | os.PathLike, *, embedder: "str | Embedder | None" = None,
             location: dict[str, Any] | None = None) -> "Index":
        """Open an index; `embedder` (a model name, or a loaded Embedder to reuse), when
        given, must be the model the index was built with. The files are checked against
        the manifest's checksums (see the module docstring for what is hashed).
        `location`: where a Qdrant-backed index's collection is now ({"url": ...} or
        {"path": ...}), instead of where the manifest says."""
        directory = Path(directory)
        for _ in range(1000):
            manifest = read_manifest(directory)
            built_with = manifest["embedder"].get("id")
            wanted = embedder.model_id if isinstance(embedder, Embedder) else embedder
            if wanted is not None and not _same_model(wanted, built_with):
                raise IndexDirectoryError(f"{directory}: index was built with embedder {built_with!r}, not {wanted!r}; "
                                          "its vectors are not comparable — use that embedder or rebuild the index")
            fault("open:after_manifest")
            status, fd = _lease(directory, manifest["version"])
            if status == "ok":
                break
            _check_version_present(directory, manifest)
            time.sleep(0.005)  # a writer replaced the version meanwhile: read the new manifest
        else:
            raise IndexDirectoryError(f"{directory}: the index kept changing while being opened; try again")
        try:
            fault("open:leased")
            if location:
                from rag.qdrant_store import relocate

                manifest = relocate(directory, manifest, location)
            return _index_class(manifest.get("backend"))._load(
                directory, manifest, embedder if isinstance(embedder, Embedder) else None)
        finally:
            _release(fd)

    @classmethod
    def _load(cls, directory: Path, manifest: dict[str, Any], embedder: Embedder | None) -> "Index":
        vdir, hashed, config, got = read_version(directory, manifest, (
            ("vectors.npy", lambda path, got, config: np.load(path, mmap_mode="r", allow_pickle=False)),
            ("dense.faiss", lambda path, got, config: DenseIndex.load(path, config.dense, got["vectors.npy"],
                                                                      manifest.get("dense_trained_on"))),
            ("bm25", lambda path, got, config: BM25Index.load(path)),
        ))
        docs, chunks = got["docs.jsonl"], got["chunks.jsonl"]
        vectors, dense, bm25 = got["vectors.npy"], got["dense.faiss"], got["bm25"]
        if not (len(chunks) == len(vectors) == len(dense) == bm25.n_docs):
            raise _corrupt(vdir, f"inconsistent index version (chunks {len(chunks)}, vectors {len(vectors)}, "
                                 f"faiss {len(dense)}, bm25 {bm25.n_docs})", directory)
        index = cls(directory, config, manifest, chunks, docs, vectors, dense, bm25)
        if embedder is not None:
            index.embedder = embedder  # checks its encoder variant against the index's
        index._verified = hashed
        return index

    def _check_compatible(self, config: IndexConfig) -> None:
        if not _same_model(config.embedder, self.config.embedder):
            raise IndexDirectoryError(f"{self.directory}: index was built with embedder {self.config.embedder!r}, "
                              f"not {config.embedder!r}; rebuild it (--rebuild) or use another directory")
        if config.encoder not in ("auto", self.config.encoder) and self.config.encoder != "auto":
            raise IndexDirectoryError(f"{self.directory}: index was built with embedder backend {self.config.encoder!r}, "
                                      f"not {config.encoder!r}; rebuild it (--rebuild) or use another directory")
        if config.backend != self.config.backend:
            raise IndexDirectoryError(f"{self.directory}: index was built with backend {self.config.backend!r}, "
                                      f"not {config.backend!r}; rebuild it (--rebuild) or use another directory")
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
                                      use_cache=cfg.use_embedding_cache, encoder=cfg.encoder)
            self.config = dataclasses.replace(cfg, encoder=self._embedder.encoder)
        return self._embedder

    @embedder.setter
    def embedder(self, value: Embedder) -> None:
        if self.config.encoder not in ("auto", value.encoder):
            raise IndexDirectoryError(f"{self.directory}: embedder backend {value.encoder!r} does not match the "
                                      f"index's {self.config.encoder!r}; vectors of two backends are not mixed")
        self._embedder = value
        self.config = dataclasses.replace(self.config, encoder=value.encoder)

    # ---- updating -------------------------------------------------------------------
    def update(self, sources: Iterable[str | os.PathLike | Document], *, progress: bool = True,
               _fresh: bool = False) -> dict[str, Any]:
        """Make the index hold exactly the documents in `sources`; returns counts of
        added / changed / removed / unchanged documents (plus chunks embedded).

        Runs under the writer lock; if another writer committed since this Index was
        opened, its version is loaded first, so the update applies to it."""
        with writer_lock(self.directory, self.lock_timeout):
            if not _fresh:
                self._catch_up()
            return self._update(sources, progress=progress, fresh=_fresh)

    def _catch_up(self) -> None:
        """Under the lock: load the version another writer committed since we opened."""
        if not (self.directory / "manifest.json").exists():
            return
        current = read_manifest(self.directory)
        if current.get("version") == self.manifest.get("version"):
            return
        latest = Index._load(self.directory, current, self._embedder)  # no writer can remove it now
        self.manifest, self._docs, self._chunks = latest.manifest, latest._docs, latest._chunks
        self.vectors, self.dense, self.bm25, self._verified = latest.vectors, latest.dense, latest.bm25, latest._verified

    def _verify_vectors(self) -> None:
        """Hash vectors.npy before any of its rows are copied into a new version."""
        if "vectors.npy" in self._verified or "checksums" not in self.manifest:
            return
        want = self.manifest["checksums"].get("vectors.npy", {})
        path = self.directory / self.manifest["version"] / "vectors.npy"
        if _digest(path) != want.get("sha256"):
            raise _corrupt(path, "contents do not match the manifest's sha256", self.directory)
        self._verified.add("vectors.npy")

    def verify(self) -> dict[str, Any]:
        """Hash every file of the index's live version on disk (and the manifest) against
        the recorded checksums: {"files", "bytes", "seconds", ...}, or IndexCorruptError."""
        return verify_index(self.directory)

    def _update(self, sources: Iterable[str | os.PathLike | Document], *, progress: bool,
                fresh: bool) -> dict[str, Any]:
        t0 = time.perf_counter()
        loaded = load_sources(sources)
        kept, todo, removed, stats = plan_update(self._docs, loaded)
        dense_changed = (self.manifest.get("config", {}).get("dense") != _to_dict(self.config.dense))
        if not fresh and not todo and not removed and not dense_changed:
            self._collect()  # leftovers of killed writers go even when nothing changed
            stats.update(chunks=len(self), seconds=round(time.perf_counter() - t0, 4), written=False)
            self.last_update = stats
            return stats

        # chunks and vectors of unchanged documents, copied in their old order
        chunks: list[Chunk] = []
        docs: list[_DocEntry] = []
        rows: list[np.ndarray] = []
        only_appended = not removed and not stats["changed"] and [d.id for d in kept] == [d.id for d in self._docs]
        for d in kept:
            docs.append(dataclasses.replace(d, first=len(chunks)))
            chunks.extend(self._chunks[d.first:d.first + d.count])
            rows.append(np.arange(d.first, d.first + d.count))
        keep_rows = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        if len(keep_rows):
            self._verify_vectors()  # before any row is copied (and before any embedding work)

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
        self._verified = set(manifest["checksums"])  # written and hashed by us just now
        if self.config.dense.kind == "ivfpq":
            self.dense.vectors = vectors
        self._collect()
        stats.update(chunks=len(chunks), seconds=round(time.perf_counter() - t0, 4), written=True)
        self.last_update = stats
        return stats

    def _known_dim(self) -> int:
        dim = self.manifest.get("embedder", {}).get("dim")
        return int(dim) if dim else self.embedder.dim

    def _next_sequence(self) -> int:
        seqs = [int(self.manifest.get("sequence", 0))]
        for entry in self.directory.iterdir():
            m = re.match(r"^(?:\.tmp-|\.trash-)?v(\d{6})-", entry.name)
            if m:
                seqs.append(int(m.group(1)))
        return max(seqs) + 1

    def _write_version(self, docs, chunks, vectors, dense, bm25, stats) -> dict[str, Any]:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        seq = self._next_sequence()
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
            store_files = self._write_store(tmp, vectors, dense, bm25)
            fault("index:after_bm25")
            checksums: dict[str, dict[str, Any]] = {}
            for root, _, files in os.walk(tmp):
                for f in files:
                    path = os.path.join(root, f)
                    fd = os.open(path, os.O_RDONLY)
                    try:
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                    rel = Path(path).relative_to(tmp).as_posix()
                    checksums[rel] = {"size": os.path.getsize(path), "sha256": _digest(Path(path))}
                fsync_dir(root)
            lease = os.open(d / f".{name}.lease", os.O_RDONLY | os.O_CREAT, 0o666)
            os.close(lease)
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
            "embedder": {"id": self.config.embedder, "dim": int(vectors.shape[1]) if vectors.ndim == 2 else None,
                         "encoder": self.config.encoder},
            "chunking": _to_dict(self.config.chunking),
            "counts": {"documents": len(docs), "chunks": len(chunks), "skipped_files": stats["skipped"]},
            "files": {"docs": "docs.jsonl", "chunks": "chunks.jsonl", **store_files},
            "config": _to_dict(self.config),
            "created_at": self.manifest.get("created_at", now),
            "updated_at": now,
            "last_update": {k: stats[k] for k in ("added", "changed", "removed", "unchanged")},
        }
        if dense.trained_on:
            manifest["dense_trained_on"] = int(dense.trained_on)
        if self.manifest.get("fusion_tuned"):
            manifest["fusion_tuned"] = self.manifest["fusion_tuned"]
        manifest.update(self._manifest_extra())
        manifest["checksums"] = checksums
        _commit_manifest(d, manifest)  # the commit point
        fault("index:after_commit")
        return manifest

    def set_fusion(self, fusion: FusionConfig, *, record: dict[str, Any] | None = None) -> dict[str, Any]:
        """Make `fusion` this index's default hybrid fusion (what `search` uses when given
        none), recorded in manifest.json under the writer lock; `record` (e.g. how it was
        chosen) is kept as the manifest's `fusion_tuned`, and makes later builds with the
        default FusionConfig keep this one. No version is written."""
        with writer_lock(self.directory, self.lock_timeout):
            manifest = read_manifest(self.directory)  # another writer's newer version stays
            manifest["config"]["fusion"] = _to_dict(fusion)
            if record is not None:
                manifest["fusion_tuned"] = record
            manifest["updated_at"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            _commit_manifest(self.directory, manifest)
        if manifest["version"] == self.manifest.get("version"):
            self.manifest = manifest
        self.config = dataclasses.replace(self.config, fusion=fusion)
        return manifest

    def _write_store(self, tmp: Path, vectors, dense, bm25) -> dict[str, str]:
        """Write the version's vectors, dense and sparse indexes into `tmp`; returns their
        names for the manifest (a backend keeping vectors elsewhere writes less)."""
        np.save(tmp / "vectors.npy", vectors, allow_pickle=False)
        fault("index:after_vectors")
        dense.save(tmp / "dense.faiss")
        bm25.save(tmp / "bm25")
        return {"vectors": "vectors.npy", "dense": "dense.faiss", "bm25": "bm25/"}

    def _manifest_extra(self) -> dict[str, Any]:
        """Backend entries of the manifest (none for FAISS: old manifests read the same)."""
        return {}

    def _collect(self) -> None:
        """Under the writer lock: remove what no one can need any more — versions other
        than the live one (unless a reader is opening one: its lease is busy), and the
        temporary directories, manifest temp files and stale leases of killed writers."""
        d = self.directory
        live = self.manifest.get("version")
        if not d.is_dir():
            return
        for entry in sorted(d.iterdir()):
            name = entry.name
            try:
                if name.startswith((".tmp-v", ".trash-v")) and entry.is_dir():
                    shutil.rmtree(entry, ignore_errors=True)
                elif name.startswith(".manifest.json.") and name.endswith(".tmp"):
                    entry.unlink(missing_ok=True)
                elif _VERSION_RE.match(name) and name != live and entry.is_dir():
                    _remove_version(d, name)
                elif (name.startswith(".v") and name.endswith(".lease") and name[1:-len(".lease")] != live
                      and not (d / name[1:-len(".lease")]).exists()):
                    _remove_version(d, name[1:-len(".lease")])  # a lease left without its version
            except FileNotFoundError:
                continue

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


def _commit_manifest(directory: Path, manifest: dict[str, Any]) -> None:
    """Checksum `manifest` and replace DIR/manifest.json with it atomically (under the writer lock)."""
    manifest["checksum"] = _manifest_checksum(manifest)
    with atomic_open(directory / "manifest.json") as fh:
        fh.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")
        fault("index:manifest_written")


def _remove_version(directory: Path, name: str) -> bool:
    """Remove version `name` unless a reader holds its lease; False when kept."""
    lease = directory / f".{name}.lease"
    try:
        fd = os.open(lease, os.O_RDWR | os.O_CREAT, 0o666)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a reader is opening this version: the next write removes it
        trash = directory / f".trash-{name}"
        if (directory / name).is_dir():
            os.rename(directory / name, trash)
        lease.unlink(missing_ok=True)  # a reader that opened it before sees st_nlink == 0
    finally:
        os.close(fd)
    shutil.rmtree(trash, ignore_errors=True)
    return True


def _same_model(a: str, b: str) -> bool:
    from core.models import canonical_name

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
