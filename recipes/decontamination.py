"""Does a training text contain a benchmark's test item? Word n-gram overlap, fast.

The rule (GPT-3's and open-r1's, made robust to light edits): a text is contaminated by a
test item when they share a word n-gram. Words are lower-cased ``\\w+`` runs, so case,
punctuation and LaTeX markup do not hide a copy. The n is 13 for an item of 27 words or
more; for a shorter item of W words, the largest of 6, 8 and 10 not above ``(W - 1) // 2``:
any one edit (a changed name, a changed number) leaves one side of it at least that long,
so a lightly edited test question is still caught, while a 13-gram needs a long item to
exist at all.
An item shorter than ``min_ngram`` words (default 6: "Simplify $\\sqrt{242}$.") matches only
a text that is that item and little else (at most three times its words, e.g. a prompt
that quotes it): inside a long trace so few words are coincidence. Items of one word are
not indexed; `Decontaminator.skipped` counts them.

Speed is what makes this usable on every sample: a text is read into words once
(`recipes.filters.Words`, shared with the other filters: a 64-bit id per word), an n-gram's
hash is a polynomial over the ids computed for all positions at once with numpy, and
membership is a set probe (then a binary search in the sorted hashes of the benchmark
n-grams of that n, to name the item). A hit is then confirmed on the words themselves,
so a hash collision never drops a row.

Benchmarks (`BENCHMARKS`) are every test split assay can load offline: GSM8K test,
MATH-500, AIME24, AMC23, HumanEval, and a knowledge world's test split
(``world:DIR``); plus any JSONL file (its ``question``/``problem``/``prompt``/``text``
field, or every string field).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from core.errors import UserError
from recipes.filters import Words

BENCHMARKS = ("gsm8k", "math500", "aime24", "amc23", "humaneval")


class DecontaminationError(UserError, ValueError):
    pass


@dataclass
class Match:
    """A benchmark item a text shares an n-gram with."""

    source: str  # "gsm8k-test/17", "file.jsonl:3"
    ngram: str  # the shared words

    def reason(self) -> str:
        return f"contaminated: shares {len(self.ngram.split())} words with {self.source}: {self.ngram[:80]!r}"


class Decontaminator:
    """An n-gram index of benchmark items; `match(text)` finds one the text overlaps."""

    def __init__(self, ngram: int = 13, min_ngram: int = 6) -> None:
        if not 1 <= min_ngram <= ngram:
            raise DecontaminationError(f"need 1 <= min_ngram <= ngram, got {min_ngram} and {ngram}")
        self.ngram, self.min_ngram = ngram, min_ngram
        self._items: list[tuple[str, list[str]]] = []  # (source, words)
        self._pending: dict[int, list[tuple[np.ndarray, np.ndarray]]] = {}  # n -> [(hashes, item of each)]
        self._tables: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # n -> (sorted hashes, item of each)
        self._sets: dict[int, set[int]] = {}  # n -> the same hashes as a set: "any hit?" at C speed
        self._short: dict[tuple[str, ...], str] = {}  # the words of an item too short for an n-gram -> source
        self.skipped = 0
        self.sources: dict[str, int] = {}

    # ---- building --------------------------------------------------------------------
    def n_for(self, n_words: int) -> int:
        """The n for an item of `n_words` words: `ngram` for a long item; for a shorter one, the
        largest of a few sizes (min_ngram, 8, 10) that one edit in the middle still leaves
        room for -- few sizes, since each costs a lookup per checked text."""
        if n_words >= 2 * self.ngram + 1:
            return self.ngram
        fits = [n for n in (self.min_ngram, 8, 10) if self.min_ngram <= n <= max(self.min_ngram, (n_words - 1) // 2)]
        return max(fits) if fits else self.min_ngram

    def add(self, text: str, source: str) -> None:
        read = Words(text)
        ws = read.words
        n = self.n_for(len(ws))
        if len(ws) < self.min_ngram or len(ws) < n:
            if len(ws) >= 2:
                self._short.setdefault(tuple(ws), source)
                self._items.append((source, ws))
            else:
                self.skipped += 1
            return
        item = len(self._items)
        self._items.append((source, ws))
        hashes = read.grams(n)
        self._pending.setdefault(n, []).append((hashes, np.full(len(hashes), item, dtype=np.int64)))
        self._tables.pop(n, None)
        self._sets.pop(n, None)

    def add_many(self, texts: Iterable[str], name: str) -> None:
        before = len(self._items)
        for i, text in enumerate(texts):
            self.add(text, f"{name}/{i}")
        self.sources[name] = self.sources.get(name, 0) + len(self._items) - before

    def _table(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        if n not in self._tables:
            parts = self._pending.get(n, [])
            h = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.uint64)
            it = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
            order = np.argsort(h, kind="stable")
            self._tables[n] = (h[order], it[order])
            self._sets[n] = set(h.tolist())
        return self._tables[n]

    def __len__(self) -> int:
        return len(self._items)

    # ---- looking up ------------------------------------------------------------------
    def match(self, text: str, read: Words | None = None) -> Match | None:
        """The first benchmark item `text` shares an n-gram with, or None (`read`: its `Words`,
        when the caller has them already)."""
        read = read or Words(text)
        ws = read.words
        if not ws or not self._items:
            return None
        if self._short and len(ws) <= 3 * self.min_ngram:
            found = self._match_short(ws)
            if found is not None:
                return found
        for n in sorted(self._pending):
            if n > len(ws):
                break
            found = self._lookup(ws, read.grams(n), n)
            if found is not None:
                return found
        return None

    def _match_short(self, ws: list[str]) -> Match | None:
        for n in range(2, self.min_ngram):
            for i in range(len(ws) - n + 1):
                source = self._short.get(tuple(ws[i:i + n]))
                if source is not None and len(ws) <= 3 * n:
                    return Match(source, " ".join(ws[i:i + n]))
        return None

    def _lookup(self, ws: list[str], hashes: np.ndarray, n: int) -> Match | None:
        table, items = self._table(n)
        if self._sets[n].isdisjoint(hashes.tolist()):  # the common case, a clean text: one set probe per n-gram
            return None
        pos = np.searchsorted(table, hashes)
        pos[pos == len(table)] = 0
        for i in np.flatnonzero(table[pos] == hashes):
            gram = ws[i:i + n]
            p = int(pos[i])
            while p < len(table) and table[p] == hashes[i]:  # confirm on the words: no collision drops a row
                source, item_words = self._items[int(items[p])]
                if _contains(item_words, gram):
                    return Match(source, " ".join(gram))
                p += 1
        return None


def _contains(haystack: list[str], needle: list[str]) -> bool:
    n = len(needle)
    first = needle[0]
    return any(haystack[i] == first and haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


# ---- what to decontaminate against -------------------------------------------------------

def benchmark_texts(name: str, data_root: str | None = None) -> list[str]:
    """The test items' texts of a benchmark assay loads offline (`BENCHMARKS`, or world:DIR)."""
    from tasks import get_task

    try:
        task = get_task(name, data_root=data_root, split="test")
        rows = task.load()
    except UserError as exc:
        raise DecontaminationError(f"benchmark {name!r}: {exc}") from None
    out = []
    for r in rows:
        text = r.get("question") or r.get("problem") or r.get("prompt") or ""
        out.append(str(text))
    return out


def file_texts(path: str | Path) -> list[str]:
    """Texts of a JSONL file: each row's question/problem/prompt/text field, else its string fields."""
    from core.files import iter_jsonl

    p = Path(path)
    if not p.is_file():
        raise DecontaminationError(f"{path}: no such file")
    out = []
    for _, row in iter_jsonl(p, DecontaminationError):
        for key in ("question", "problem", "prompt", "text"):
            if isinstance(row.get(key), str):
                out.append(row[key])
                break
        else:
            out.append(" ".join(v for v in row.values() if isinstance(v, str)))
    return out


def build(against: Sequence[str], *, data_root: str | None = None, ngram: int = 13, min_ngram: int = 6) -> Decontaminator:
    """A decontaminator over benchmarks by name (`BENCHMARKS`, ``world:DIR``) and JSONL files."""
    dec = Decontaminator(ngram, min_ngram)
    for name in against:
        if name in BENCHMARKS or name.startswith("world:"):
            label = name if name in BENCHMARKS else f"{name}:test"
            dec.add_many(benchmark_texts(name, data_root), label)
        else:
            dec.add_many(file_texts(name), str(name))
    return dec


def decontaminate_file(path: str | Path, against: Sequence[str], *, out: str | Path | None = None, ngram: int = 13,
                       data_root: str | None = None) -> dict:
    """Check every row of a JSONL (all its string fields, chat messages too), or every chunk of
    an assay index directory; with `out`, write the clean JSONL rows there (atomically)."""
    import time

    from core.files import atomic_open, iter_jsonl

    t0 = time.perf_counter()
    dec = build(against, data_root=data_root, ngram=ngram)
    p = Path(path)
    hits: list[dict] = []
    if p.is_dir():
        if out is not None:
            raise DecontaminationError(f"{path}: an index is checked, not rewritten (drop --out)")
        from rag import Index

        try:
            index = Index.open(p)
        except UserError as exc:
            raise DecontaminationError(f"{path}: {exc}") from None
        n = 0
        for chunk in index.chunks:
            n += 1
            m = dec.match(chunk.text)
            if m is not None:
                hits.append({"doc_id": chunk.doc_id, "start": chunk.start, "source": m.source, "ngram": m.ngram})
        return {"checked": n, "contaminated": len(hits), "against": dec.sources, "examples": hits[:5],
                "seconds": round(time.perf_counter() - t0, 2)}
    if not p.is_file():
        raise DecontaminationError(f"{path}: no such file or index directory")
    rows = list(iter_jsonl(p, DecontaminationError))
    clean = []
    for line, row in rows:
        m = dec.match(_row_text(row))
        if m is None:
            clean.append(row)
        else:
            hits.append({"line": line, "id": row.get("id"), "source": m.source, "ngram": m.ngram})
    if out is not None:
        with atomic_open(out, "w") as fh:
            for row in clean:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    return {"checked": len(rows), "contaminated": len(hits), "kept": len(clean), "against": dec.sources,
            "examples": hits[:5], **({"out": str(out)} if out is not None else {}),
            "seconds": round(time.perf_counter() - t0, 2)}


def _row_text(row: dict) -> str:
    parts: list[str] = []
    for v in row.values():
        if isinstance(v, str):
            parts.append(v)
        elif isinstance(v, list):
            parts.extend(m["content"] for m in v if isinstance(m, dict) and isinstance(m.get("content"), str))
    return "\n".join(parts)
