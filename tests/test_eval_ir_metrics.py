"""IR metrics against hand-computed cases and trec_eval's conventions."""

from __future__ import annotations

import math
import random

import pytest

from eval.ir_metrics import MetricError, evaluate, parse_metric, per_query, ranked

L2 = math.log2

QRELS = {"q1": {"a": 3, "b": 2, "c": 1, "d": 0}}
RUN = {"q1": {"x": 0.9, "a": 0.8, "c": 0.7, "b": 0.1, "d": 0.05}}  # ranking x a c b d


def test_hand_computed_graded_ndcg_recall_mrr_map():
    m = per_query(QRELS, RUN, ["ndcg@10", "ndcg@2", "recall@2", "recall@100", "mrr@10", "mrr@1",
                                "map@100", "map@2", "p@2"])["q1"]
    idcg = 3 / L2(2) + 2 / L2(3) + 1 / L2(4)
    assert m["ndcg@10"] == pytest.approx((3 / L2(3) + 1 / L2(4) + 2 / L2(5)) / idcg)
    # the ideal at 2 is over the two best judged docs (a, b), not over what was retrieved
    assert m["ndcg@2"] == pytest.approx((3 / L2(3)) / (3 / L2(2) + 2 / L2(3)))
    assert m["recall@2"] == pytest.approx(1 / 3)
    assert m["recall@100"] == pytest.approx(1.0)
    assert m["mrr@10"] == pytest.approx(1 / 2)
    assert m["mrr@1"] == 0.0
    assert m["map@100"] == pytest.approx((1 / 2 + 2 / 3 + 3 / 4) / 3)
    assert m["map@2"] == pytest.approx((1 / 2) / 3)  # divided by all relevant, not min(R, k)
    assert m["p@2"] == pytest.approx(1 / 2)


def test_ideal_dcg_counts_judged_docs_never_retrieved():
    qrels = {"q": {"a": 1, "b": 1, "c": 1}}
    run = {"q": {"a": 1.0}}
    assert per_query(qrels, run, ["ndcg@10"])["q"]["ndcg@10"] == pytest.approx(1 / (1 + 1 / L2(3) + 1 / L2(4)))


def test_ties_are_broken_by_doc_id_descending_like_trec_eval():
    assert ranked({"a": 1.0, "b": 1.0, "c": 2.0, "aa": 1.0}) == ["c", "b", "aa", "a"]
    # 'b' outranks 'a' on the tie, so the relevant 'a' is at rank 2
    m = per_query({"q": {"a": 1}}, {"q": {"a": 0.5, "b": 0.5}}, ["mrr@10"])["q"]
    assert m["mrr@10"] == 0.5


def test_non_positive_judgments_gain_nothing_and_queries_without_relevant_docs_count_as_zero():
    qrels = {"q1": {"a": 1}, "q2": {"z": 0, "y": -1}}
    run = {"q1": {"a": 1.0}, "q2": {"z": 1.0, "y": 0.5}}
    means = evaluate(qrels, run, ["ndcg@10", "recall@100", "mrr@10", "map@100"])
    assert means == {"ndcg@10": 0.5, "recall@100": 0.5, "mrr@10": 0.5, "map@100": 0.5}
    means = evaluate(qrels, run, ["ndcg@10"], skip_unjudged=True)
    assert means == {"ndcg@10": 1.0}


def test_queries_missing_from_the_run_score_zero_and_extra_run_queries_are_ignored():
    qrels = {"q1": {"a": 2}, "q2": {"b": 1}}
    run = {"q1": {"a": 3.0}, "q9": {"b": 1.0}}
    assert evaluate(qrels, run, ["ndcg@10", "mrr@10"]) == {"ndcg@10": 0.5, "mrr@10": 0.5}


def test_cutoff_applies():
    qrels = {"q": {"d11": 1}}
    run = {"q": {f"d{i:02d}": 100.0 - i for i in range(20)}}  # d11 at rank 12
    m = per_query(qrels, run, ["ndcg@10", "mrr@10", "recall@10", "recall@100", "map@100"])["q"]
    assert m["ndcg@10"] == m["mrr@10"] == m["recall@10"] == 0.0
    assert m["recall@100"] == 1.0 and m["map@100"] == pytest.approx(1 / 12)


def test_metric_names():
    assert parse_metric("nDCG@10") == ("ndcg", 10)
    with pytest.raises(MetricError):
        parse_metric("ndcg")
    with pytest.raises(MetricError):
        parse_metric("bpref@10")


def test_agrees_with_pytrec_eval_on_random_runs_with_ties():
    pytrec_eval = pytest.importorskip("pytrec_eval")
    rng = random.Random(7)
    docs = [f"d{i}" for i in range(150)]
    qrels, run = {}, {}
    for q in range(30):
        qid = f"q{q}"
        judged = rng.sample(docs, rng.randint(1, 25))
        qrels[qid] = {d: rng.choice([0, 1, 1, 2, 3, 4]) for d in judged}
        retrieved = rng.sample(docs, rng.randint(5, 140))
        # coarse scores so that ties are frequent
        run[qid] = {d: float(rng.randint(0, 30)) for d in retrieved}
    ours = per_query(qrels, run, ["ndcg@10", "recall@100", "map@100", "mrr@1000", "p@5"])
    ref = pytrec_eval.RelevanceEvaluator(qrels, {"ndcg_cut.10", "recall.100", "map_cut.100", "recip_rank", "P.5"})
    theirs = ref.evaluate(run)
    for qid in qrels:
        assert ours[qid]["ndcg@10"] == pytest.approx(theirs[qid]["ndcg_cut_10"], abs=1e-9), qid
        assert ours[qid]["recall@100"] == pytest.approx(theirs[qid]["recall_100"], abs=1e-9), qid
        assert ours[qid]["map@100"] == pytest.approx(theirs[qid]["map_cut_100"], abs=1e-9), qid
        assert ours[qid]["mrr@1000"] == pytest.approx(theirs[qid]["recip_rank"], abs=1e-9), qid
        assert ours[qid]["p@5"] == pytest.approx(theirs[qid]["P_5"], abs=1e-9), qid
