"""BM25 scores equal rank-bm25's BM25Okapi on the same tokens; batch == single; both query roads
(product, accumulator) and every build slicing give the same results; files load."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rag.bm25 import BM25Config, BM25Index, Tokenizer


@pytest.fixture(scope="module")
def cranfield(shared_data):
    docs = [json.loads(line)["text"] for line in open(shared_data / "cranfield" / "corpus.jsonl")][:400]
    queries = [json.loads(line)["text"] for line in open(shared_data / "cranfield" / "queries.jsonl")][:60]
    return docs, queries


def test_scores_and_ranking_match_rank_bm25_on_cranfield(cranfield):
    from rank_bm25 import BM25Okapi

    docs, queries = cranfield
    tok = Tokenizer()
    corpus = [tok(d) for d in docs]
    ours, ref = BM25Index().fit_tokens(corpus), BM25Okapi(corpus)
    results = ours.search_many(queries, k=10)
    for q, hits in zip(queries, results):
        expected = ref.get_scores(tok(q))
        np.testing.assert_allclose(ours.scores(q), expected, rtol=1e-9, atol=1e-9)
        top = np.argsort(-expected, kind="stable")[:10]
        assert [p for p, _ in hits] == [int(i) for i in top if expected[i] != 0][: len(hits)]
        assert hits == ours.search(q, k=10)
    # a query holding the batch separator word itself still gets its own results
    from rag.bm25 import _SEP_WORD

    odd = [queries[0], f"{queries[1]} {_SEP_WORD}", queries[2]]
    got = ours.search_many(odd, k=10)
    assert [[p for p, _ in r] for r in got] == [[p for p, _ in r] for r in results[:3]]
    np.testing.assert_allclose([s for r in got for _, s in r], [s for r in results[:3] for _, s in r], rtol=1e-12)
    # large corpora take the sparse-only path: same results
    sparse = BM25Index().fit_tokens(corpus)
    sparse.DENSE_ROWS_LIMIT = 0
    assert sparse.search_many(queries, k=10) == results and sparse._dense is None
    # the accumulator road (large corpora) returns the very same lists, one query or many
    acc = on_road(BM25Index().fit_tokens(corpus), "accumulator")
    assert acc.search_many(queries, k=10, threads=1) == results
    assert acc.search_many(queries, k=10, threads=2) == results
    assert [acc.search(q, k=10) for q in queries[:10]] == results[:10]
    # large-corpus blocking (256 queries tokenized together, a product taking 8 at a time)
    sliced = on_road(BM25Index().fit_tokens(corpus), "product")
    sliced.SMALL_CORPUS_DOCS, sliced.PRODUCT_SCORES = 0, 1
    assert sliced.search_many(queries, k=10, threads=1) == results


def on_road(index: BM25Index, road: str) -> BM25Index:
    """`index` with its cost model set so every block of queries takes `road`."""
    if road == "accumulator":
        index.COST_ACCUMULATE = {"query": 0, "term": 0, "posting": 0}
    else:
        index.COST_PRODUCT_PER_DOC = {"dense": 0, "sparse": 0}
    return index


def test_building_from_texts_equals_building_from_tokens_in_any_slicing(cranfield):
    docs, queries = cranfield
    docs = docs[:150] + ["", "the of and", "Ünïcode wörds, rock'n'roll isn't 'quoted'", "qqsepqq QQSEPQQ wing"]
    from_tokens = BM25Index().fit_tokens(Tokenizer().many(docs))
    for chars in (BM25Index.BUILD_SLICE_CHARS, 300, 1):
        bm = BM25Index()
        bm.BUILD_SLICE_CHARS = chars
        bm.fit(docs)
        assert bm.vocab == from_tokens.vocab and bm.n_docs == len(docs)
        for name in ("indptr", "doc_ids", "weights"):
            np.testing.assert_array_equal(getattr(bm, name), getattr(from_tokens, name))
    # the separator word is nobody's word: lower-cased, it is an ordinary term
    assert [p for p, _ in bm.search("QQSEPQQ", 10)] == [len(docs) - 1]


words = st.sampled_from(["wing", "wings", "lift", "drag", "flow", "the", "shock", "heat", "slab", "mach"])


@settings(max_examples=60, deadline=None)
@given(corpus=st.lists(st.lists(words, max_size=12).map(" ".join), min_size=1, max_size=12),
       query=st.lists(words, min_size=1, max_size=5).map(" ".join))
def test_matches_rank_bm25_including_negative_idf_floor(corpus, query):
    """Tiny corpora exercise rank-bm25's epsilon floor for terms in most documents."""
    from rank_bm25 import BM25Okapi

    tok = Tokenizer()
    toks = [tok(d) for d in corpus]
    if sum(map(len, toks)) == 0:
        return  # rank-bm25 divides by zero on an all-empty corpus
    ours = BM25Index().fit_tokens(toks)
    np.testing.assert_allclose(ours.scores(query), BM25Okapi(toks).get_scores(tok(query)), rtol=1e-9, atol=1e-9)


@settings(max_examples=80, deadline=None)
@given(corpus=st.lists(st.lists(words, max_size=12).map(" ".join), min_size=1, max_size=12),
       queries=st.lists(st.lists(words, max_size=5).map(" ".join), min_size=1, max_size=6),
       k=st.integers(1, 6))
def test_accumulator_and_product_roads_return_identical_results(corpus, queries, k):
    """Ties, repeated query words, queries matching nothing, negative idf (the epsilon
    floor of words in most documents): the two roads pick the same top k, in the same order."""
    product = on_road(BM25Index().fit(corpus), "product")
    accumulator = on_road(BM25Index().fit(corpus), "accumulator")
    for threads in (1, 2):
        got = accumulator.search_arrays(queries, k, threads=threads)
        want = product.search_arrays(queries, k, threads=threads)
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
    assert [accumulator.search(q, k) for q in queries] == [product.search(q, k) for q in queries]


def test_tokenizer_stems_and_drops_stopwords_without_downloads():
    tok = Tokenizer()
    assert tok("The wings were stalling at the highest angles") == ["wing", "stall", "highest", "angl"]
    assert Tokenizer(stem=False, stopwords=False)("The Wings") == ["the", "wings"]


def test_only_matching_documents_are_returned_and_save_load_roundtrip(tmp_path):
    bm = BM25Index(BM25Config(k1=1.2, b=0.5)).fit(["wing lift", "heat slab", "wing drag wing", "", "mach shock"])
    assert [p for p, _ in bm.search("wing", 10)] == [2, 0]
    assert bm.search("nothing matches", 10) == []
    bm.save(tmp_path / "bm25")
    back = BM25Index.load(tmp_path / "bm25")
    assert back.config.k1 == 1.2 and back.search("wing drag", 3) == bm.search("wing drag", 3)
    assert not list((tmp_path / "bm25").glob("*.pkl"))


@settings(max_examples=3000, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("ab1_ '''-.,\n\tZé")), max_size=40))
def test_fast_word_split_equals_the_regex(text):
    from rag.bm25 import _TOKEN_RE, words

    text = text.lower()
    assert words(text) == _TOKEN_RE.findall(text)
