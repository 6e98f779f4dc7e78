"""BM25 over column-wise precomputed term weights — rank-bm25's BM25Okapi, fast, at any size.

Scoring is exactly rank-bm25's `BM25Okapi` (tested against it on the same tokens):

    idf(t)      = ln((N - n_t + 0.5) / (n_t + 0.5)); a negative idf becomes
                  epsilon * mean idf over the vocabulary (rank-bm25's floor)
    score(q, d) = sum over query tokens t (repeats count) of
                  idf(t) * tf(t,d) * (k1 + 1) / (tf(t,d) + k1 * (1 - b + b * |d| / avgdl))

rank-bm25 loops over every document in Python per query term. Here the per-(document,
term) weight is computed once at build time and stored column-wise (CSC: for each term,
the documents containing it, ascending, and their float64 weights), so a query only reads
its terms' postings. That is the same idea as bm25s ("eager" scoring); owning the few
lines keeps the scores identical to the reference and the files pickle-free (`.npy`
arrays and a JSON vocabulary).

Building never holds a token list: documents are tokenized a few megabytes of text at a
time, as one joined string split once (a separator word that lower-cased text cannot
contain marks where each document ends) and mapped word -> term id through one dict
lookup per word (stopword filtering and stemming happen once per distinct word). Each
slice becomes (document x term) counts at once (scipy's C sum of duplicates), and the
slices' rows are turned term-major with scipy's counting sort. The weights are computed
in blocks of postings so the temporaries stay small.

Queries take one of two roads, whichever a cost model (`COST_ACCUMULATE`,
`COST_PRODUCT_PER_DOC`) says is cheaper for a block of queries; both add the same weights
in the same order (terms by id) and select the same top k (score desc, then position), so
they return identical results (tested):

- small corpora (Cranfield, 1,400 documents): a block of queries sized to keep its dense
  score matrix in cache is one sparse x dense product, then the k-th value of each row.
- larger ones (from a few thousand documents): term at a time into one reused float64
  accumulator per thread (`acc[docs] += weights`: a term's documents are distinct), then
  the top k among the touched documents only, and only those are reset. A query touching
  10^5 postings of 10^6 documents costs ~10^5 operations instead of a pass over 10^6
  scores (the product's dense row per query); bench/bm25_scale.py measures it within
  ~10% of bare numpy doing only that work at 10^6 documents.

Results come as FAISS answers, (positions, scores) arrays (`search_arrays`).

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
from itertools import chain, compress, islice, pairwise, repeat
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
# Joins lower-cased documents or queries before one word split: upper-case, so no
# lower-cased text contains it, and all word characters, so the split keeps it whole.
_SEP_WORD = "QQSEPQQ"
_SEP = f" {_SEP_WORD} "


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

            # no PyStemmer cache (its default keeps 10,000 words): every caller memoises,
            # and the cache's upkeep costs 3x the stemming of a word
            self._stemmer = Stemmer.Stemmer("english", 0)
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

    def terms(self, words_: list[str]) -> list[str | None]:
        """The term of each word as `words` returns them from lower-cased text (what
        ``self(word)`` holds), None for a stopword; one stemmer call for the list."""
        stems = words_ if self._stemmer is None else self._stemmer.stemWords(words_)
        stop = self.stopwords
        return [None if w in stop else s for w, s in zip(words_, stems)]


_MISSING = -3  # a term id no table holds: marks the words to look up the slow way


def _lookup(items: list, table: dict, assign) -> np.ndarray:
    """``table[item]`` for every item, as int32. The items the table lacks, in order of
    first appearance (so term ids are deterministic), go to ``assign(new_items)`` in one
    call, which returns their ids; they are stored."""
    ids = np.fromiter(map(table.get, items, repeat(_MISSING)), dtype=np.int32, count=len(items))
    miss = ids == _MISSING
    if miss.any():
        missing = list(compress(items, miss.tolist()))
        new = list(dict.fromkeys(missing))
        table.update(zip(new, assign(new)))
        ids[miss] = list(map(table.__getitem__, missing))
    return ids


def _slices(sizes: np.ndarray, budget: int) -> list[tuple[int, int]]:
    """Consecutive (lo, hi) ranges of items whose sizes add up to about `budget` each."""
    ends = np.cumsum(sizes)
    cuts = np.searchsorted(ends, np.arange(budget, int(ends[-1]) if len(ends) else 0, budget), side="right")
    bounds = sorted(set([0, *cuts.tolist(), len(sizes)]))
    return list(pairwise(bounds))


class _Postings:
    """(document x term) counts gathered a slice of documents at a time, then turned
    term-major. Holds int32 arrays only, never the tokens."""

    def __init__(self) -> None:
        self.terms: list[np.ndarray] = []
        self.counts: list[np.ndarray] = []
        self.row_nnz: list[np.ndarray] = []
        self.doc_len: list[np.ndarray] = []

    def add(self, term_ids: np.ndarray, lengths: np.ndarray, n_terms: int) -> None:
        """`term_ids` of consecutive documents (none dropped), `lengths` their token counts."""
        from scipy.sparse import csr_matrix

        indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        m = csr_matrix((np.ones(len(term_ids), dtype=np.int32), term_ids, indptr), shape=(len(lengths), max(n_terms, 1)))
        m.sum_duplicates()  # sorts each row's terms and adds up repeats: tf per (document, term)
        self.terms.append(m.indices.astype(np.int32, copy=False))
        self.counts.append(m.data)
        self.row_nnz.append(np.diff(m.indptr))
        self.doc_len.append(np.asarray(lengths, dtype=np.float64))

    def by_term(self, n_terms: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(indptr over terms, document ids, tf, document lengths); documents ascending
        within each term."""
        from scipy.sparse import csr_matrix

        doc_len = np.concatenate(self.doc_len) if self.doc_len else np.zeros(0)
        n = len(doc_len)
        indptr = np.zeros(n + 1, dtype=np.int64)
        if n:
            np.cumsum(np.concatenate(self.row_nnz), out=indptr[1:])
        terms = np.concatenate(self.terms) if self.terms else np.zeros(0, dtype=np.int32)
        counts = np.concatenate(self.counts) if self.counts else np.zeros(0, dtype=np.int32)
        self.terms, self.counts, self.row_nnz, self.doc_len = [], [], [], []
        rows = csr_matrix((counts, terms, indptr), shape=(n, n_terms))
        del terms, counts
        cols = rows.tocsc()  # scipy's counting sort: O(postings + terms), stable in document order
        del rows
        return cols.indptr.astype(np.int64), cols.indices.astype(np.int32, copy=False), cols.data, doc_len


class BM25Index:
    """Sparse BM25 over a fixed list of documents (rows = positions 0..n-1)."""

    # Text tokenized per slice when building: big enough that the per-slice numpy and
    # scipy calls cost nothing, small enough that a slice's words list stays small.
    BUILD_SLICE_CHARS = 1 << 22

    # The road of a block of queries is the cheaper by this model (ns; measured with
    # bench/bm25_scale.py's synthetic corpora at 10^3..10^6 documents and bench/bm25.py's
    # Cranfield): the accumulator pays per query, per query term and per posting read;
    # the product pays for a dense score row per query (twice as much when the rows are
    # not kept dense). Cranfield (1,400 documents, ~9 terms a query) stays on the product,
    # 10^4+ documents take the accumulator.
    COST_ACCUMULATE = {"query": 25_000, "term": 4_000, "posting": 15}
    COST_PRODUCT_PER_DOC = {"dense": 13, "sparse": 25}
    # Below this many documents a block of queries is what one product keeps in cache
    # (~1 MB of scores, 8+ queries); from it on, up to 256 queries are tokenized together
    # (the per-block costs spread thin) and a product, if chosen, takes them a slice at a time.
    SMALL_CORPUS_DOCS = 1 << 14
    PRODUCT_SCORES = 1 << 17  # 1 MB of float64 scores

    def __init__(self, config: BM25Config | None = None) -> None:
        self.config = config or BM25Config()
        self.tokenizer = Tokenizer(self.config.stem, self.config.stopwords)
        self.vocab: dict[str, int] = {}
        self.n_docs = 0
        self.indptr = np.zeros(1, dtype=np.int64)  # CSC over terms
        self.doc_ids = np.zeros(0, dtype=np.int32)
        self.weights = np.zeros(0, dtype=np.float64)
        self._reset_caches()

    def _reset_caches(self) -> None:
        self._word_cache: dict[str, int] | None = None
        self._matrix = None
        self._dense: np.ndarray | None = None
        self._negative: bool | None = None
        # zeroed accumulators, one per thread in flight (list.pop/append are atomic)
        self._accumulators: list[np.ndarray] = []

    # ---- building -------------------------------------------------------------------
    def fit(self, texts: list[str]) -> "BM25Index":
        """Index `texts`; the same index as ``fit_tokens(self.tokenizer.many(texts))``."""
        vocab: dict[str, int] = {}
        # word -> term id (-1 stopword, -2 the separator): stems each distinct word once
        word_ids: dict[str, int] = {_SEP_WORD: -2}

        def new_words(new: list[str]) -> list[int]:
            return [-1 if t is None else vocab.setdefault(t, len(vocab)) for t in self.tokenizer.terms(new)]

        postings = _Postings()
        sizes = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        for lo, hi in _slices(sizes + 1, self.BUILD_SLICE_CHARS):
            joined = _SEP.join(map(str.lower, texts[lo:hi]))
            if joined.isascii() and "'" not in joined:
                slice_words = words(joined)
            else:  # one odd document must not send the whole slice down words()'s slow road
                slice_words = list(chain.from_iterable(words(t) + [_SEP_WORD] for t in joined.split(_SEP)))
                slice_words.pop()
            del joined
            t = _lookup(slice_words, word_ids, new_words)
            del slice_words
            doc = np.cumsum(t == -2)  # document (within the slice) of every word
            keep = t >= 0
            postings.add(t[keep], np.bincount(doc[keep], minlength=hi - lo), len(vocab))
        return self._finish(vocab, postings)

    def fit_tokens(self, corpus: list[list[str]]) -> "BM25Index":  # noqa: V105 (public: callers with their own tokens)
        """Index documents given as their terms."""
        vocab: dict[str, int] = {}
        postings = _Postings()
        sizes = np.fromiter(map(len, corpus), dtype=np.int64, count=len(corpus))
        for lo, hi in _slices(sizes + 1, self.BUILD_SLICE_CHARS // 8):
            flat = list(chain.from_iterable(corpus[lo:hi]))
            postings.add(_lookup(flat, vocab, lambda new: range(len(vocab), len(vocab) + len(new))), sizes[lo:hi], len(vocab))
        return self._finish(vocab, postings)

    def _finish(self, vocab: dict[str, int], postings: _Postings) -> "BM25Index":
        cfg = self.config
        indptr, doc_ids, tf, doc_len = postings.by_term(len(vocab))
        n = len(doc_len)
        df = np.diff(indptr).astype(np.float64)
        idf = np.log(n - df + 0.5) - np.log(df + 0.5)
        if len(idf):
            floor = cfg.epsilon * (idf.sum() / len(idf))
            idf = np.where(idf < 0, floor, idf)
        avgdl = doc_len.sum() / n if n else 0.0
        norm = cfg.k1 * (1 - cfg.b + cfg.b * doc_len / avgdl) if avgdl > 0 else np.full(n, cfg.k1)
        del doc_len
        # float64: the same sums, in the same precision, as rank-bm25; computed a block of
        # terms at a time so the temporaries stay a few tens of MB
        weights = np.empty(len(doc_ids), dtype=np.float64)
        t0, n_terms, block = 0, len(vocab), 1 << 21
        while t0 < n_terms:
            t1 = max(t0 + 1, int(np.searchsorted(indptr, indptr[t0] + block, side="right")) - 1)
            t1 = min(t1, n_terms)
            lo, hi = int(indptr[t0]), int(indptr[t1])
            f = tf[lo:hi].astype(np.float64)
            # grouped as rank-bm25 groups it: idf * (tf * (k1 + 1) / (tf + norm))
            weights[lo:hi] = np.repeat(idf[t0:t1], np.diff(indptr[t0:t1 + 1])) * (
                f * (cfg.k1 + 1) / (f + norm[doc_ids[lo:hi]]))
            t0 = t1
        self.vocab = vocab
        self.n_docs = n
        self.indptr = indptr
        self.doc_ids = doc_ids
        self.weights = weights
        self._reset_caches()
        return self

    # ---- scoring --------------------------------------------------------------------
    def _term_ids(self, text: str) -> list[int]:
        """The vocabulary id of each word of `text` (lower-cased): -1 for a word outside
        the vocabulary or a stopword, -2 for the separator; memoised per word."""
        cache = self._word_ids
        cache[_SEP_WORD] = -2
        qwords = words(text)
        tids = list(map(cache.get, qwords))
        if None in tids:
            new = list(dict.fromkeys(w for w, t in zip(qwords, tids) if t is None))
            cache.update(zip(new, (-1 if t is None else self.vocab.get(t, -1) for t in self.tokenizer.terms(new))))
            tids = list(map(cache.__getitem__, qwords))
        return tids

    def _term_counts(self, query: str) -> dict[int, int]:
        """Query term ids (in the vocabulary) with their counts."""
        counts = Counter(self._term_ids(query.lower()))
        counts.pop(-1, None)
        return counts

    def scores(self, query: str) -> np.ndarray:
        """BM25 score of every document (float64, like rank-bm25's get_scores)."""
        return self._scores(sorted(self._term_counts(query).items()))

    def _scores(self, counts: list[tuple[int, int]]) -> np.ndarray:
        out = np.zeros(self.n_docs, dtype=np.float64)
        # terms in id order: the same additions, in the same order, as search_arrays
        for tid, c in counts:
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

    def _accumulate_pays(self, n_queries: int, terms: np.ndarray | list[int]) -> bool:
        """Whether the accumulator beats the product for `n_queries` queries holding the
        term ids `terms` (repeats across queries counted)."""
        c = self.COST_ACCUMULATE
        dense = len(self.vocab) * self.n_docs <= self.DENSE_ROWS_LIMIT
        product = n_queries * self.n_docs * self.COST_PRODUCT_PER_DOC["dense" if dense else "sparse"]
        acc = n_queries * c["query"] + len(terms) * c["term"]
        if acc >= product:  # small corpora: decided without reading the postings' sizes
            return False
        terms = np.asarray(terms, dtype=np.int64)
        return acc + int((self.indptr[terms + 1] - self.indptr[terms]).sum()) * c["posting"] < product

    def search_arrays(self, queries: list[str], k: int = 10, threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k of a batch of queries as FAISS returns them: (positions, scores), both
        (len(queries), k), best first, ties by position; -1 / 0.0 past a query's results.

        A block of queries is tokenized in one pass and scored with one sparse x dense
        product or term at a time through an accumulator, whichever the cost model says
        is cheaper; blocks are sized so a product's score matrix stays in cache (~1 MB)
        and run on `threads` threads (default: the CPUs, at most 4; numpy and scipy
        release the GIL for the heavy parts). Results do not depend on the road, the
        blocking or the threads."""
        n, nq = self.n_docs, len(queries)
        k = max(0, min(k, n))
        if nq == 0 or k == 0:
            return np.full((nq, k), -1, dtype=np.int64), np.zeros((nq, k))
        if nq == 1:
            # One query: its few terms' postings (a small part of the index) rather than a
            # tokenized block; the same additions in the same order, the same top k.
            counts = sorted(self._term_counts(queries[0]).items())
            terms = [t for t, _ in counts]
            if self._accumulate_pays(1, terms):
                from scipy.sparse import csr_matrix

                qm = csr_matrix((np.array([c for _, c in counts], dtype=np.float64), terms, [0, len(terms)]),
                                shape=(1, len(self.vocab)))
                return self._accumulate(qm, k)
            scores = self._scores(counts)[None, :]
            if self._negative_weights:
                scores[scores == 0] = -np.inf
            return self._select(scores, k)
        if threads is None:
            threads = min(4, os.cpu_count() or 1)
        block = self._product_rows if n < self.SMALL_CORPUS_DOCS else max(1, min(256, -(-nq // threads)))
        blocks = [queries[b0:b0 + block] for b0 in range(0, nq, block)]
        if threads > 1 and len(blocks) > 1:
            self._dense_rows()  # built once here (if the corpus is small), not raced for by the threads
            parts = list(_pool(threads).map(lambda qs: self._search_block(qs, k), blocks))
        else:
            parts = [self._search_block(qs, k) for qs in blocks]
        if len(parts) == 1:
            return parts[0]
        return np.concatenate([p for p, _ in parts]), np.concatenate([s_ for _, s_ in parts])

    def _search_block(self, queries: list[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top k of a block of queries. The whole block is tokenized in one word-split pass
        and one dict lookup pass: a separator word between queries marks where each ends,
        so tokenizing runs no Python code per query or per word."""
        from scipy.sparse import csr_matrix

        nq, nv = len(queries), len(self.vocab)
        t = np.asarray(self._term_ids(_SEP.join(map(str.lower, queries))), dtype=np.int64)
        qidx = np.cumsum(t == -2)  # query number of every word
        keep = t >= 0
        keys, counts = np.unique(qidx[keep] * nv + t[keep], return_counts=True)
        if len(keys) == 0:
            return np.full((nq, k), -1, dtype=np.int64), np.zeros((nq, k))
        # (query, term) -> count as a CSR matrix; np.unique sorted it by query, then term
        indptr = np.searchsorted(keys // nv, np.arange(nq + 1))
        qm = csr_matrix((counts.astype(np.float64), keys % nv, indptr), shape=(nq, nv))
        if self._accumulate_pays(nq, qm.indices):
            return self._accumulate(qm, k)
        step = self._product_rows
        if nq <= step:
            return self._top_k(qm, k)
        parts = [self._top_k(qm[r0:r0 + step], k) for r0 in range(0, nq, step)]
        return np.concatenate([p for p, _ in parts]), np.concatenate([s_ for _, s_ in parts])

    @property
    def _product_rows(self) -> int:
        """Queries per product: a (queries x documents) score matrix of PRODUCT_SCORES
        float64s, which stays in cache; at least 8 (the per-product costs)."""
        return max(8, min(512, self.PRODUCT_SCORES // max(self.n_docs, 1)))

    def _accumulate(self, qm, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top k of each query row of `qm` (query x term counts, terms ascending), term at
        a time: the additions of the product, restricted to the documents touched."""
        nq = qm.shape[0]
        positions = np.full((nq, k), -1, dtype=np.int64)
        top = np.zeros((nq, k))
        acc = self._accumulators.pop() if self._accumulators else np.zeros(self.n_docs)
        doc_ids, weights, negative = self.doc_ids, self.weights, self._negative_weights
        terms = zip(self.indptr[qm.indices].tolist(), self.indptr[qm.indices + 1].tolist(), qm.data.tolist())
        for i, (a, b) in enumerate(pairwise(qm.indptr.tolist())):
            touched = []
            for lo, hi, c in islice(terms, b - a):
                ids = doc_ids[lo:hi]
                # c * w as the product adds it (1.0 * w is w: skip the multiply)
                acc[ids] += weights[lo:hi] if c == 1 else c * weights[lo:hi]
                touched.append(ids)
            if not touched:
                continue
            ids = np.concatenate(touched) if len(touched) > 1 else touched[0]
            s = acc[ids]
            acc[ids] = 0  # only what this query touched: the accumulator is zero again
            docs, vals = self._top_touched(ids, s, k, len(touched), negative)
            positions[i, :len(docs)] = docs
            top[i, :len(docs)] = vals
        self._accumulators.append(acc)
        return positions, top

    @staticmethod
    def _top_touched(ids: np.ndarray, s: np.ndarray, k: int, n_terms: int,
                     negative: bool) -> tuple[np.ndarray, np.ndarray]:
        """Top k (score desc, then position) of the touched documents `ids` with their
        scores `s`, as `_select` picks them; a document touched by several terms appears
        once per term, always with its one score."""
        if negative:
            s[s == 0] = -np.inf  # as _select: a 0 is no result even when others are below it
        # Each document appears at most n_terms times, so the k * n_terms largest entries
        # hold at least k distinct documents: the k-th best document scores at least the
        # smallest of them, and every entry at or above it (ties included) is a candidate.
        m = min(len(s), k * n_terms)
        if m < len(s):
            keep = s >= np.partition(s, len(s) - m)[len(s) - m]
            ids, s = ids[keep], s[keep]
        order = np.lexsort((ids, -s))
        ids, s = ids[order], s[order]
        if n_terms > 1:  # a document's copies carry one score, so they are now adjacent
            first = np.empty(len(ids), dtype=bool)
            first[0] = True
            np.not_equal(ids[1:], ids[:-1], out=first[1:])
            ids, s = ids[first], s[first]
        ids, s = ids[:k], s[:k]
        # 0 (no result) and -inf sort after every result: the results are a prefix
        n_ok = len(s) - int(np.count_nonzero((s == 0) | (s == -np.inf)))
        return ids[:n_ok], s[:n_ok]

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
