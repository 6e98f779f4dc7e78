"""The SQLite cache of generations and scores, so reruns and interrupted runs resume.

A generation is keyed by the model's identity (its name plus a fingerprint of its weight
files, so a retrained checkpoint at the same path is never served stale text), the exact
rendered prompt, the sampling settings that change the output, and the sample's index.
Each finished batch is committed at once: a run killed halfway keeps every batch it
finished, and the next run generates only the rest.

Scores are cached the same way, keyed by the reward, the row fields it reads and the
completion, so rescoring a finished run (or a predictions file) is a lookup.

SQLite in WAL mode lets a report read the cache while a run writes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import threading
from pathlib import Path
from typing import Any, Iterable, Sequence

SCHEMA = """
CREATE TABLE IF NOT EXISTS generations (
    key TEXT PRIMARY KEY,
    model TEXT NOT NULL,
    completion TEXT NOT NULL,
    finish_reason TEXT,
    tokens INTEGER,
    created REAL DEFAULT (julianday('now'))
);
CREATE TABLE IF NOT EXISTS verdicts (
    key TEXT PRIMARY KEY,
    score REAL,
    reason TEXT NOT NULL,
    extracted TEXT,
    extra TEXT NOT NULL
);
"""


def default_cache_path() -> Path:
    from core.models import cache_dir

    return cache_dir() / "eval" / "cache.sqlite"


def digest(*parts: Any) -> str:
    """A stable hash of JSON-able parts (dict keys sorted)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8"))
        h.update(b"\x00")
    return h.hexdigest()


def model_fingerprint(path: str) -> str:
    """Identity of a model's weights: file names, sizes and a hash of each file's edges.

    Hashing whole multi-GB files on every run would cost more than the cache saves; the
    size plus the first and last MiB change whenever the weights do in practice.
    """
    p = Path(path)
    if not p.is_dir():
        return f"hub:{path}"  # a hub id: the resolved revision is pinned by the hub cache
    h = hashlib.sha256()
    files = sorted(f for f in p.iterdir() if f.suffix in (".safetensors", ".bin", ".gguf", ".pt") and f.is_file())
    for f in files:
        size = f.stat().st_size
        h.update(f"{f.name}:{size}".encode())
        with open(f, "rb") as fh:
            h.update(fh.read(1 << 20))
            if size > 2 << 20:
                fh.seek(-(1 << 20), os.SEEK_END)
                h.update(fh.read())
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "generation_config.json"):
        if (p / name).exists():
            h.update((p / name).read_bytes())
    return h.hexdigest()[:16]


class Cache:
    """Generations and scores in one SQLite file; `path=None` keeps them in memory."""

    def __init__(self, path: str | Path | None = None):
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path), check_same_thread=False)
        if self.path is not None:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    # --- generations ---
    def get_generations(self, keys: Sequence[str]) -> dict[str, tuple[str, str | None, int | None]]:
        found: dict[str, tuple[str, str | None, int | None]] = {}
        with self._lock:
            for chunk in _chunks(list(keys), 500):
                q = f"SELECT key, completion, finish_reason, tokens FROM generations WHERE key IN ({','.join('?' * len(chunk))})"
                for key, text, reason, tokens in self._db.execute(q, chunk):
                    found[key] = (text, reason, tokens)
        return found

    def put_generations(self, model: str, items: Iterable[tuple[str, str, str | None, int | None]]) -> None:
        """items: (key, completion, finish_reason, tokens); committed together."""
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO generations (key, model, completion, finish_reason, tokens) VALUES (?, ?, ?, ?, ?)",
                [(k, model, c, r, t) for k, c, r, t in items],
            )

    # --- scores ---
    def get_scores(self, keys: Sequence[str]) -> dict[str, tuple[float | None, str, str | None, dict]]:
        """key -> (score, reason, extracted, extra metrics) for the keys that are cached."""
        found: dict[str, tuple] = {}
        extras: dict[str, dict] = {}  # few distinct extra dicts: decode each once
        with self._lock:
            for chunk in _chunks(list(keys), 900):
                q = f"SELECT key, score, reason, extracted, extra FROM verdicts WHERE key IN ({','.join('?' * len(chunk))})"
                for key, score, reason, extracted, extra in self._db.execute(q, chunk):
                    e = extras.get(extra)
                    if e is None:
                        e = extras[extra] = json.loads(extra)
                    found[key] = (score, reason, extracted, e)
        return found

    def put_scores(self, items: Iterable[tuple[str, float | None, str, str | None, dict]]) -> None:
        with self._lock, self._db:
            self._db.executemany(
                "INSERT OR REPLACE INTO verdicts (key, score, reason, extracted, extra) VALUES (?, ?, ?, ?, ?)",
                [(k, s, r, x, json.dumps(e, sort_keys=True)) for k, s, r, x, e in items])


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]
