"""BM25 over a sparse matrix of precomputed term weights — rank-bm25's BM25Okapi, fast.

Scoring is exactly rank-bm25's `BM25Okapi` (tested against it on the same tokens):

    idf(t)      = ln((N - n_t + 0.5) / (n_t + 0.5)); a negative idf becomes
                  epsilon * mean idf over the vocabulary (rank-bm25's floor)
    score(q, d) = sum over query tokens t (repeats count) of
                  idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))

rank-bm25 loops over every document in Python per query term. Here the per-(document,
term) weight is computed once at build time and stored column-wise (CSC: for each term,
the documents containing it and their weights), so a query is a gather of a few columns;
a batch of queries is one sparse x dense matrix product per cache-sized block, answered
as FAISS answers, (positions, scores) arrays (`search_arrays`). That is the same
idea as bm25s ("eager" scoring); owning the few lines keeps the scores identical to the
reference and the files pickle-free (`.npy` arrays and a JSON vocabulary).

Tokenizer: lowercase word characters, a built-in English stopword list, Snowball (Porter 2)
stemming via PyStemmer — no downloaded data.
"""

from __future__ import annotations

import json
import os
import re
import typing
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if typing.TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

# A standard English stopword list (the classic Lucene/Snowball-style set, extended with
# common contractions' stems); built in so nothing is downloaded.
STOPWORDS_EN = frozenset("""
a about above after again against all am an and any are aren't as at be because been
before being below between both but by can can't cannot could couldn't did didn't do does
doesn't doing don't down during each few for from further had hadn't has hasn't have
haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
myself no nor not of off on once only or other ought our ours ourselves out over own same
shan't she she'd she'll she's should shouldn't so some such than that that's the their
theirs them themselves then there there's these they they'd they'll they're they've this
those through to too under until up very was wasn't we we'd we'll we're we've were weren't
what what's when when's where where's which while who who's whom why why's with won't
would wouldn't you you'd you'll you're you've your yours yourself yourselves will shall
may might must also etc s t d ll m o re ve y
""".split())

_TOKEN_RE = re.compile(r"\w+(?:'\w+)?", re.UNICODE)
# ASCII text takes a faster road to the same words: every ASCII byte that is neither a
# word character nor an apostrophe becomes a space (one C-level table lookup per byte),
# apostrophes that do not join two word characters become spaces too (str.replace), and
# str.split does the rest. Python's regex engine costs ~160 ns per character here --
# most of a batch of queries' time. Words with two inner apostrophes ("rock'n'roll",
# which the regex splits as "rock'n", "roll") fall back to the regex.
_ASCII_NONWORD = bytes(
    c if (chr(c).isalnum() or c in b"_'") and c < 128 else 32 for c in range(256)
)
_TWO_APOSTROPHES = re.compile(r"'\w+'")
_SEP_WORD = "qqqsepqqq"  # lower-case, matched whole by _TOKEN_RE
_QUERY_SEP = f" {_SEP_WORD} "


def words(text: str) -> list[str]:
    """The words of `text` (already lower-cased), exactly as ``_TOKEN_RE.findall``."""
    if not text.isascii():
        return _TOKEN_RE.findall(text)
    spaced = text.encode("ascii").translate(_ASCII_NONWORD).decode("ascii")
    if "'" not in spaced:
        return spaced.split()
    spaced = f" {spaced} "
    while True:  # an apostrophe next to a space or another apostrophe joins nothing
        before = len(spaced.replace(" ", ""))
        spaced = spaced.replace("''", "  ").replace(" '", "  ").replace("' ", "  ")
        if len(spaced.replace(" ", "")) == before:
            break
    if _TWO_APOSTROPHES.search(spaced):
        return _TOKEN_RE.findall(text)
    return spaced.split()


_POOLS: dict[int, "ThreadPoolExecutor"] = {}


def _pool(threads: int) -> "ThreadPoolExecutor":
    from concurrent.futures import ThreadPoolExecutor

    if threads not in _POOLS:
        _POOLS[threads] = ThreadPoolExecutor(threads, thread_name_prefix="bm25")
    return _POOLS[threads]


@dataclass
class BM25Config:
    k1: float = 1.5
    """Term-frequency saturation (rank-bm25's default)."""
    b: float = 0.75
    """Length normalisation (rank-bm25's default)."""
    epsilon: float = 0.25
    """Floor for negative idf, as a fraction of the mean idf (rank-bm25's BM25Okapi)."""
    stem: bool = True
    """Snowball English stemming with PyStemmer."""
    stopwords: bool = True
    """Drop the built-in English stopwords."""


class Tokenizer:
    """text -> list of terms. Stems are memoised: corpora repeat words a lot."""

    def __init__(self, stem: bool = True, stopwords: bool = True) -> None:
        self.stopwords = STOPWORDS_EN if stopwords else frozenset()
        self._stemmer = None
        if stem:
            import Stemmer

            self._stemmer = Stemmer.Stemmer("english")
        self._memo: dict[str, str] = {}

    def __call__(self, text: str) -> list[str]:
        words_ = [w for w in words(text.lower()) if w not in self.stopwords]
        if self._stemmer is None:
            return words_
        memo = self._memo
        out = []
        for w in words_:
            s = memo.get(w)
            if s is None:
                s = memo[w] = self._stemmer.stemWord(w)
            out.append(s)
        return out

    def many(self, texts: list[str]) -> list[list[str]]:
        return [self(t) for t in texts]


class BM25Index:
    """Sparse BM25 over a fixed list of documents (rows = positions 0..n-1)."""

    def __init__(self, config: BM25Config | None = None) -> None:
        self.config = config or BM25Config()
        self.tokenizer = Tokenizer(self.config.stem, self.config.stopwords)
        self.vocab: dict[str, int] = {}
        self.n_docs = 0
        self.indptr = np.zeros(1, dtype=np.int64)  # CSC over terms
        self.doc_ids = np.zeros(0, dtype=np.int32)
        self.weights = np.zeros(0, dtype=np.float64)
        self._word_cache: dict[str, int] | None = None
        self._matrix = None
        self._dense: np.ndarray | None = None
        self._negative: bool | None = None

    # ---- building -------------------------------------------------------------------
    def fit(self, texts: list[str]) -> "BM25Index":
        return self.fit_tokens(self.tokenizer.many(texts))

    def fit_tokens(self, corpus: list[list[str]]) -> "BM25Index":
        cfg = self.config
        n = len(corpus)
        vocab: dict[str, int] = {}
        rows: list[int] = []
        cols: list[int] = []
        tfs: list[int] = []
        doc_len = np.zeros(n, dtype=np.float64)
        for d, toks in enumerate(corpus):
            doc_len[d] = len(toks)
            counts: dict[int, int] = {}
            for t in toks:
                tid = vocab.setdefault(t, len(vocab))
                counts[tid] = counts.get(tid, 0) + 1
            rows.extend([d] * len(counts))
            cols.extend(counts.keys())
            tfs.extend(counts.values())
        rows_a = np.asarray(rows, dtype=np.int64)
        cols_a = np.asarray(cols, dtype=np.int64)
        tf = np.asarray(tfs, dtype=np.float64)
        df = np.bincount(cols_a, minlength=len(vocab)).astype(np.float64)
        idf = np.log(n - df + 0.5) - np.log(df + 0.5)
        if len(idf):
            floor = cfg.epsilon * (idf.sum() / len(idf))
            idf = np.where(idf < 0, floor, idf)
        avgdl = doc_len.sum() / n if n else 0.0
        norm = cfg.k1 * (1 - cfg.b + cfg.b * doc_len / avgdl) if avgdl > 0 else np.full(n, cfg.k1)
        w = idf[cols_a] * tf * (cfg.k1 + 1) / (tf + norm[rows_a])
        order = np.lexsort((rows_a, cols_a))
        self.vocab = vocab
        self.n_docs = n
        self.doc_ids = rows_a[order].astype(np.int32)
        self.weights = w[order]  # float64: the same sums, in the same precision, as rank-bm25
        self.indptr = np.concatenate([[0], np.cumsum(df.astype(np.int64))])
        self._word_cache = None
        self._matrix = None
        self._dense = None
        self._negative = None
        return self

    # ---- scoring --------------------------------------------------------------------
    def _term_ids(self, text: str) -> list[int]:
        """The vocabulary id of each word of `text` (lower-cased): -1 for a word outside
        the vocabulary or a stopword, -2 for the batch separator; memoised per word."""
        cache = self._word_ids
        cache[_SEP_WORD] = -2
        qwords = words(text)
        tids = list(map(cache.get, qwords))
        if None in tids:
            for i, w in enumerate(qwords):
                if tids[i] is None:
                    terms = self.tokenizer(w)
                    tids[i] = cache[w] = self.vocab.get(terms[0], -1) if terms else -1
        return tids

    def _term_counts(self, query: str) -> dict[int, int]:
        """Query term ids (in the vocabulary) with their counts."""
        counts = Counter(self._term_ids(query.lower()))
        counts.pop(-1, None)
        counts.pop(-2, None)  # the batch separator word, if a query happens to contain it
        return counts

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document (float64, like rank-bm25's get_scores)."""
        out = np.zeros(self.n_docs, dtype=np.float64)
        # terms in id order: the same additions, in the same order, as the batch product
        for tid, c in sorted(self._term_counts(query).items()):
            lo, hi = self.indptr[tid], self.indptr[tid + 1]
            out[self.doc_ids[lo:hi]] += c * self.weights[lo:hi]
        return out

    def search(self, query: str, k: int = 10) -> list[tuple[int, float]]:
        """Top-k (position, score) among documents sharing a term with the query."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: list[str], k: int = 10, threads: int | None = None) -> list[list[tuple[int, float]]]:
        """Top-k (position, score) per query; `search_arrays` as lists."""
        positions, scores = self.search_arrays(queries, k, threads)
        out = []
        for prow, srow in zip(positions.tolist(), scores.tolist()):
            m = prow.index(-1) if -1 in prow else len(prow)
            out.append(list(zip(prow[:m], srow[:m])))
        return out

    def search_arrays(self, queries: list[str], k: int = 10, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of a batch of queries as FAISS returns them: (positions, scores), both
        (len(queries), k), best first, ties by position; -1 / 0.0 past a query's results.

        A block of queries is tokenized in one pass and scored with one sparse x dense
        product; blocks are sized so their score matrix stays in cache (~1 MB) and run
        on `threads` threads (default: the CPUs, at most 4; numpy and scipy release the
        GIL for the heavy parts). Results do not depend on the blocking or the threads."""
        n, nq = self.n_docs, len(queries)
        k = max(0, min(k, n))
        if nq == 0 or k == 0:
            return np.full((nq, k), -1, dtype=np.int64), np.zeros((nq, k))
        if nq == 1:
            # One query: gather its few terms' postings (a small part of the index) rather
            # than tokenize a block; the same additions in the same order, the same top k.
            scores = self.scores(queries[0])[None, :]
            if self._negative_weights:
                scores[scores == 0] = -np.inf
            return self._select(scores, k)
        block = max(8, min(512, (1 << 17) // n))
        blocks = [queries[b0:b0 + block] for b0 in range(0, nq, block)]
        if threads is None:
            threads = min(4, os.cpu_count() or 1)
        if threads > 1 and len(blocks) > 1:
            self._dense_rows()  # built once here, not raced for by the threads
            parts = list(_pool(threads).map(lambda qs: self._search_block(qs, k), blocks))
        else:
            parts = [self._search_block(qs, k) for qs in blocks]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate([p for p, _ in parts]), np.concatenate([s_ for _, s_ in parts])

    def _search_block(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        from scipy.sparse import csr_matrix

        nq, nv = len(queries), len(self.vocab)
        # Tokenize the whole block in one word-split pass and one dict lookup pass: a
        # separator word between queries (kept by the split, produced by nothing else)
        # marks where each query ends, so no Python code runs per query or per word.
        joined = _QUERY_SEP.join(queries).lower()
        if joined.count(_SEP_WORD) != nq - 1:  # a query contains the separator word itself
            parts = [self._search_block_each([q], k) for q in queries]
            return np.concatenate([p for p, _ in parts]), np.concatenate([s_ for _, s_ in parts])
        t = np.asarray(self._term_ids(joined), dtype=np.int64)
        qidx = np.cumsum(t == -2)  # query number of every word
        keep = t >= 0
        keys, counts = np.unique(qidx[keep] * nv + t[keep], return_counts=True)
        if len(keys) == 0:
            return np.full((nq, k), -1, dtype=np.int64), np.zeros((nq, k))
        # (query, term) -> count as a CSR matrix; np.unique sorted it by query, then term
        rows_q = keys // nv
        indptr = np.searchsorted(rows_q, np.arange(nq + 1))
        qm = csr_matrix((counts.astype(np.float64), keys % nv, indptr), shape=(nq, nv))
        return self._top_k(qm, k)

    def _search_block_each(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        from scipy.sparse import csr_matrix

        indptr, indices, data = [0], [], []
        for q in queries:
            counts = self._term_counts(q)
            indices.extend(counts.keys())
            data.extend(counts.values())
            indptr.append(len(indices))
        if not indices:
            return np.full((len(queries), k), -1, dtype=np.int64), np.zeros((len(queries), k))
        qm = csr_matrix((np.asarray(data, dtype=np.float64), np.asarray(indices, dtype=np.int64),
                         np.asarray(indptr, dtype=np.int64)), shape=(len(queries), len(self.vocab)))
        return self._top_k(qm, k)

    def _top_k(self, qm, k: int) -> tuple[np.ndarray, np.ndarray]:
        rows = self._dense_rows()
        # (queries x terms) @ (terms x docs): sparse @ dense adds a few dense rows per query
        scores = qm @ rows if rows is not None else (qm @ self.term_matrix).toarray()
        if self._negative_weights:
            # A tiny or uniform corpus can floor idf below 0 (rank-bm25's epsilon times a
            # negative mean): matching documents may then score below the non-matching 0s.
            scores[scores == 0] = -np.inf
        return self._select(scores, k)

    @staticmethod
    def _select(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top k of each row of a (queries x documents) score matrix, as search_arrays."""
        nq, n = scores.shape
        kk = min(k, n)
        # The k-th largest score of each row (np.partition moves values only: half the
        # cost of argpartition), then every document at or above it that is a result: a
        # 0 means the query shares no term with it (or only terms of idf 0).
        kth = np.partition(scores, n - kk, axis=1)[:, n - kk]
        flat = np.flatnonzero((scores >= kth[:, None]) & (scores != 0) & (scores != -np.inf))
        vals = scores.ravel()[flat]
        row, col = np.divmod(flat, n)
        order = np.lexsort((col, -vals, row))  # per query: score desc, then position asc
        row, col, vals = row[order], col[order], vals[order]
        # ties at the k-th score can bring more than k: keep the first k of each query
        rank = np.arange(len(row)) - np.searchsorted(row, np.arange(nq))[row]
        keep = rank < kk
        positions = np.full((nq, kk), -1, dtype=np.int64)
        top = np.zeros((nq, kk))
        positions[row[keep], rank[keep]] = col[keep]
        top[row[keep], rank[keep]] = vals[keep]
        return positions, top

    @property
    def _negative_weights(self) -> bool:
        if self._negative is None:
            self._negative = bool(self.weights.size and self.weights.min() < 0)
        return self._negative

    # a corpus this small keeps its term rows dense too: a query then sums a few contiguous
    # rows (no sparse result to build); above the limit only the sparse matrix is used
    DENSE_ROWS_LIMIT = 8_000_000  # terms x documents entries (64 MB of float64)

    def _dense_rows(self) -> np.ndarray | None:
        if self._dense is None:
            if len(self.vocab) * self.n_docs > self.DENSE_ROWS_LIMIT:
                return None
            self._dense = self.term_matrix.toarray()
        return self._dense

    @property
    def term_matrix(self):
        """(n_terms x n_docs) CSR matrix of weights: row t = postings of term t."""
        if self._matrix is None:
            from scipy.sparse import csr_matrix

            self._matrix = csr_matrix((self.weights, self.doc_ids.astype(np.int64), self.indptr),
                                      shape=(len(self.vocab), self.n_docs))
        return self._matrix

    @property
    def _word_ids(self) -> dict[str, int]:
        if self._word_cache is None:
            self._word_cache = {}
        return self._word_cache

    # ---- persistence ----------------------------------------------------------------
    def save(self, directory: str | Path) -> None:
        """Write into `directory` (the caller makes the directory swap atomic)."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        np.save(d / "indptr.npy", self.indptr, allow_pickle=False)
        np.save(d / "doc_ids.npy", self.doc_ids, allow_pickle=False)
        np.save(d / "weights.npy", self.weights, allow_pickle=False)
        terms = [None] * len(self.vocab)
        for t, i in self.vocab.items():
            terms[i] = t
        meta = {"n_docs": self.n_docs, "config": self.config.__dict__, "terms": terms}
        (d / "vocab.json").write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: str | Path) -> "BM25Index":
        d = Path(directory)
        meta = json.loads((d / "vocab.json").read_text(encoding="utf-8"))
        self = cls(BM25Config(**meta["config"]))
        self.vocab = {t: i for i, t in enumerate(meta["terms"])}
        self.n_docs = int(meta["n_docs"])
        self.indptr = np.load(d / "indptr.npy", allow_pickle=False)
        self.doc_ids = np.load(d / "doc_ids.npy", allow_pickle=False)
        self.weights = np.load(d / "weights.npy", allow_pickle=False)
        return self


__all__ = ["BM25Config", "BM25Index", "Tokenizer", "STOPWORDS_EN", "words"]
