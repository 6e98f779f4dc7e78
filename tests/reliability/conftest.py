"""Helpers for the index reliability tests: tiny corpora, an embedder that never loads a
model, and `assay` run as a real subprocess (so a named fault point can kill it with
status 137, or pause it while another process runs).

The fake embedder writes through the real embedding cache; once a corpus has been
embedded by it, an `assay index` subprocess pointed at the same cache ($ASSAY_CACHE)
finds every chunk cached and never loads a model either."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag.chunking import ChunkConfig
from rag.embeddings import Embedder
from rag.index import IndexConfig

REPO = Path(__file__).resolve().parents[2]
CHUNKING = ChunkConfig(chunk_size=200, chunk_overlap=40)
DIM = 32
MODEL = "all-MiniLM-L6-v2"  # the name the index records; the vectors come from FakeEmbedder


def fake_vector(text: str, dim: int = DIM) -> np.ndarray:
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


class FakeEmbedder(Embedder):
    """Deterministic unit vectors from a hash of the text; the cache is the real one."""

    def __init__(self, cache_dir: str | os.PathLike, dim: int = DIM) -> None:
        super().__init__(MODEL, cache_dir=cache_dir)
        self._dim = dim

    def _encode_model(self, texts, progress):
        self.model_calls += len(texts)
        return np.stack([fake_vector(t, self._dim) for t in texts]).astype(np.float32)

    def encode_query(self, query: str) -> np.ndarray:
        return self._encode_model([query], False)[0]


def write_corpus(directory: Path, tag: str, n: int = 10, extra: int = 0) -> Path:
    """`n` (+ `extra`) small text files; `tag` changes every document's text."""
    directory.mkdir(parents=True, exist_ok=True)
    for p in directory.iterdir():
        p.unlink()
    words = "wing lift drag shock boundary layer flutter panel heat transfer slipstream".split()
    for i in range(n + extra):
        body = " ".join(words[(i + j) % len(words)] for j in range(40))
        (directory / f"doc{i:03d}.txt").write_text(f"{tag} document {i}. {body}. The end of {tag} {i}.\n")
    return directory


@pytest.fixture()
def env(tmp_path):
    """A sandbox: $ASSAY_CACHE, the embedding cache under it, and a fake embedder."""

    class Env:
        root = tmp_path
        write_corpus = staticmethod(write_corpus)
        wait_for = staticmethod(wait_for)
        entries = staticmethod(index_entries)
        fake_vector = staticmethod(fake_vector)
        FakeEmbedder = FakeEmbedder
        cache_root = tmp_path / "assay-cache"
        emb_cache = tmp_path / "assay-cache" / "embeddings"

        def embedder(self) -> FakeEmbedder:
            return FakeEmbedder(self.emb_cache)

        def config(self, **kw) -> IndexConfig:
            return IndexConfig(chunking=CHUNKING, embedding_cache=str(self.emb_cache), **kw)

        def warm(self, *sources) -> None:
            """Put every chunk of `sources` in the cache (so subprocesses need no model)."""
            from rag.chunking import Chunker
            from rag.documents import load_sources

            chunker = Chunker(CHUNKING)
            for source in sources:  # one at a time: two corpora may share file names
                self.embedder().encode([c.text for d in load_sources([source]).documents for c in chunker.chunk(d)])

        def proc_env(self, fault: str | None = None, **extra) -> dict[str, str]:
            e = dict(os.environ)
            e.pop("ASSAY_FAULT", None)
            e.update(ASSAY_CACHE=str(self.cache_root), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
                     PYTHONPATH=str(REPO))
            if fault:
                e["ASSAY_FAULT"] = fault
            e.update({k: str(v) for k, v in extra.items()})
            return e

        def assay(self, *args, fault: str | None = None, **extra) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "assay", *map(str, args)], cwd=REPO, text=True,
                                  capture_output=True, env=self.proc_env(fault, **extra), timeout=120)

        def assay_bg(self, *args, fault: str | None = None, **extra) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-m", "assay", *map(str, args)], cwd=REPO, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    env=self.proc_env(fault, **extra))

        def python_bg(self, code: str, fault: str | None = None) -> subprocess.Popen:
            return subprocess.Popen([sys.executable, "-c", code], cwd=REPO, text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self.proc_env(fault))

    return Env()


def wait_for(path: Path, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    """Wait until `path` exists (a paused fault point was reached)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc is not None and proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"process ended ({proc.returncode}) before {path.name}: {err[-2000:]}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {path}")
        time.sleep(0.01)


def index_entries(directory: Path) -> dict[str, list[str]]:
    """The index directory's entries by kind, for leftover checks."""
    out: dict[str, list[str]] = {"versions": [], "other_dirs": [], "files": []}
    for p in sorted(directory.iterdir()):
        if p.is_dir():
            out["versions" if p.name.startswith("v") else "other_dirs"].append(p.name)
        else:
            out["files"].append(p.name)
    return out
