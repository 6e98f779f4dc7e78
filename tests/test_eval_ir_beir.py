"""BEIR layout loading: the real Cranfield files, and errors naming file and line."""

from __future__ import annotations

import json

import pytest

from eval.beir import (
    BeirDoc,
    BeirError,
    load,
    load_corpus,
    load_qrels,
    load_queries,
    split_queries,
)


def _write(root, corpus, queries, qrels_text):
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (root / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (root / "qrels" / "test.tsv").write_text(qrels_text)


def test_cranfield_loads(shared_data):
    col = load(shared_data / "cranfield")
    assert len(col.corpus) == 1400 and len(col.queries) == 225
    assert len(col.qrels) == 225 and sum(len(j) for j in col.qrels.values()) == 1612
    assert col.qrels["1"]["184"] == 3
    assert not col.warnings


def test_small_collection_and_header_and_trec_format(tmp_path):
    _write(tmp_path, [{"_id": 1, "title": "T", "text": "body"}, {"_id": "2", "text": "x"}],
           [{"_id": "q1", "text": "what"}], "query-id\tcorpus-id\tscore\nq1\t1\t2\n")
    col = load(tmp_path)
    assert col.corpus["1"] == BeirDoc("1", "T", "body") and col.qrels == {"q1": {"1": 2}}
    assert col.corpus["1"].full_text() == "T\n\nbody"
    assert BeirDoc("3", "Wing", "wing flutter").full_text() == "wing flutter"  # already starts with it
    assert BeirDoc("3", "Wing", "flutter").full_text("skip") == "flutter"
    (tmp_path / "qrels" / "test.tsv").write_text("q1 0 1 2\nq1 0 2 0\n")
    assert load_qrels(tmp_path / "qrels" / "test.tsv") == {"q1": {"1": 2, "2": 0}}


@pytest.mark.parametrize("line, message", [
    ('{"_id": "1", "text": "a"\n', "corpus.jsonl:2: invalid JSON"),
    ('{"title": "x", "text": "a"}\n', "corpus.jsonl:2: missing field '_id'"),
    ('{"_id": "9", "text": 3}\n', "corpus.jsonl:2: field 'text' must be a string"),
    ('{"_id": "0", "text": "dup"}\n', "corpus.jsonl:2: duplicate document id '0'"),
    ('[1, 2]\n', "corpus.jsonl:2: expected a JSON object"),
])
def test_corpus_errors_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"_id": "0", "text": "fine"}\n' + line)
    with pytest.raises(BeirError, match=message):
        load_corpus(path)


def test_queries_and_qrels_errors(tmp_path):
    q = tmp_path / "queries.jsonl"
    q.write_text('{"_id": "1", "text": "a"}\n\n{"_id": "2"}\n')
    with pytest.raises(BeirError, match="queries.jsonl:3: missing field 'text'"):
        load_queries(q)
    r = tmp_path / "qrels.tsv"
    r.write_text("query-id\tcorpus-id\tscore\n1\t2\t1\n1\t3\thigh\n")
    with pytest.raises(BeirError, match="qrels.tsv:3: relevance 'high' is not an integer"):
        load_qrels(r)
    r.write_text("1\t2\n")
    with pytest.raises(BeirError, match="qrels.tsv:1: expected 3 tab-separated columns"):
        load_qrels(r)
    with pytest.raises(BeirError, match="not a directory"):
        load(tmp_path / "nope")


def test_judged_queries_must_exist(tmp_path):
    _write(tmp_path, [{"_id": "1", "text": "a"}], [{"_id": "q1", "text": "a"}], "q2\t1\t1\nq1\t7\t1\n")
    with pytest.raises(BeirError, match="1 judged queries are not in queries.jsonl"):
        load(tmp_path)
    (tmp_path / "qrels" / "test.tsv").write_text("q1\t7\t1\n")
    assert "1 judged documents are not in corpus.jsonl" in load(tmp_path).warnings[0]


def test_split_is_seeded_disjoint_and_covering():
    qids = [str(i) for i in range(225)]
    dev, test = split_queries(qids, 0.5, seed=0)
    assert split_queries(qids, 0.5, seed=0) == (dev, test)
    assert split_queries(qids, 0.5, seed=1) != (dev, test)
    assert not set(dev) & set(test) and sorted(dev + test, key=int) == qids
    assert len(dev) == 112 and dev == sorted(dev, key=int)
