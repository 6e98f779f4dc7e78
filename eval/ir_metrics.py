"""IR metrics with trec_eval's conventions: nDCG@k, Recall@k, MRR@k, MAP@k.

A *run* maps query id -> {doc id: score}; *qrels* map query id -> {doc id: graded relevance}.
The conventions, each checked in tests against hand-computed cases (and against
pytrec_eval, trec_eval's Python binding, where it is installed):

- Ranking: documents are sorted by score, descending; ties are broken by doc id in
  *descending* string order, exactly as trec_eval does (it ignores the run's own ranks).
- Relevance: a judgment ``rel >= 1`` is relevant (trec_eval's default relevance level 1);
  ``rel <= 0`` is judged non-relevant and gains nothing.
- nDCG@k (trec_eval ``ndcg_cut.k``): linear graded gains (gain = ``rel``), discount
  ``log2(rank + 1)``; the ideal DCG is over *all* judged relevant documents of the query
  sorted by gain, cut at k — not only over the retrieved ones.
- Recall@k: relevant documents in the top k / all relevant documents of the query.
- MAP@k (``map_cut.k``): the sum of precision@r over the ranks r <= k that hold a relevant
  document, divided by the number of relevant documents of the query (not min(R, k)).
- MRR@k: 1 / rank of the first relevant document within the top k, else 0 (BEIR's MRR@k;
  trec_eval's ``recip_rank`` is the uncut version).
- Which queries count: every query in the qrels. A query missing from the run (or with an
  empty result list) scores 0 on every metric (``trec_eval -c``); a query whose judgments
  are all non-relevant scores 0 as well (trec_eval keeps it in the mean). Queries in the run
  but not in the qrels are ignored. ``evaluate(..., skip_unjudged=True)`` instead drops
  queries without a relevant document from the mean.
"""

from __future__ import annotations

import math
import re
from typing import Iterable, Mapping

from core.errors import UserError

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]

DEFAULT_METRICS = ("ndcg@10", "recall@100", "mrr@10", "map@100")
_METRIC = re.compile(r"^(ndcg|recall|mrr|map|p|precision)@(\d+)$")


class MetricError(UserError, ValueError):
    pass


def parse_metric(name: str) -> tuple[str, int]:
    """'ndcg@10' -> ('ndcg', 10). Known: ndcg, recall, mrr, map, p (precision)."""
    m = _METRIC.match(name.strip().lower())
    if not m:
        raise MetricError(f"unknown metric {name!r}; use ndcg@K, recall@K, mrr@K, map@K or p@K")
    kind, k = m.group(1), int(m.group(2))
    if k < 1:
        raise MetricError(f"{name}: the cutoff must be at least 1")
    return ("p" if kind == "precision" else kind), k


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Doc ids in trec_eval order: score descending, ties by doc id descending."""
    # Two stable sorts: first by doc id descending, then by score descending.
    ids = sorted(scores, reverse=True)
    ids.sort(key=lambda d: scores[d], reverse=True)
    return ids


def ndcg_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    gains = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(i + 2) for i, g in enumerate(gains))
    if ideal <= 0:
        return 0.0
    dcg = 0.0
    for i, doc in enumerate(ranking[:k]):
        g = judged.get(doc, 0)
        if g > 0:
            dcg += g / math.log2(i + 2)
    return dcg / ideal


def recall_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    n_rel = sum(1 for g in judged.values() if g > 0)
    if n_rel == 0:
        return 0.0
    return sum(1 for d in ranking[:k] if judged.get(d, 0) > 0) / n_rel


def precision_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    # trec_eval P.k divides by k even when fewer than k documents were retrieved.
    return sum(1 for d in ranking[:k] if judged.get(d, 0) > 0) / k


def mrr_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    for i, doc in enumerate(ranking[:k]):
        if judged.get(doc, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def map_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    n_rel = sum(1 for g in judged.values() if g > 0)
    if n_rel == 0:
        return 0.0
    found, total = 0, 0.0
    for i, doc in enumerate(ranking[:k]):
        if judged.get(doc, 0) > 0:
            found += 1
            total += found / (i + 1)
    return total / n_rel


_FUNCS = {"ndcg": ndcg_at, "recall": recall_at, "mrr": mrr_at, "map": map_at, "p": precision_at}


def per_query(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS) -> dict[str, dict[str, float]]:
    """query id -> {metric name: value} for every query in the qrels."""
    parsed = [(name, *parse_metric(name)) for name in metrics]
    out: dict[str, dict[str, float]] = {}
    for qid, judged in qrels.items():
        ranking = ranked(run.get(qid) or {})
        out[qid] = {name: _FUNCS[kind](ranking, judged, k) for name, kind, k in parsed}
    return out


def evaluate(qrels: Qrels, run: Run, metrics: Iterable[str] = DEFAULT_METRICS, *,
             skip_unjudged: bool = False) -> dict[str, float]:
    """Mean of each metric over the qrels' queries (see the module docstring for which)."""
    metrics = list(metrics)
    table = per_query(qrels, run, metrics)
    if skip_unjudged:
        table = {q: v for q, v in table.items() if any(g > 0 for g in qrels[q].values())}
    n = len(table)
    return {name: (sum(v[name] for v in table.values()) / n if n else 0.0) for name in metrics}


def run_from_ranked(ranked_ids: Mapping[str, list[str]]) -> dict[str, dict[str, float]]:
    """A run from ranked lists (best first): scores that keep the order, without ties."""
    return {q: {d: float(len(ids) - i) for i, d in enumerate(ids)} for q, ids in ranked_ids.items()}
