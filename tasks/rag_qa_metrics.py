"""RAG QA metrics: pure functions over strings and ids (no torch, no model).

- ``exact_match`` / ``token_f1``: SQuAD v1.1's official definitions (evaluate-v1.1.py):
  normalise by lower-casing, removing punctuation, removing the articles a/an/the and
  collapsing whitespace, in that order; EM compares the normalised strings, F1 the bags
  of normalised tokens (0 when they share no token -- so an empty prediction scores 0,
  as in v1.1, not 1 as in v2.0's no-answer rule); the score of a prediction is its
  maximum over the accepted answers. No accepted answers (an unanswerable question)
  scores 0: use the abstention functions for those.
- ``cited_passages`` (`rewards.conventions`): the passage numbers a response cites as
  ``[n]`` (also ``[1, 3]``, ``[1; 3]``, ``[1][2]``, ``[1-3]``), 1-based positions in the
  passages shown to the model -- read exactly as the ``grounding`` reward reads them.
- ``citation_scores``: a cited passage is correct when it is one of the gold documents or
  contains an accepted answer (normalised, on token boundaries). Precision = correct
  citations / citations (a number outside the shown passages counts as a wrong citation;
  no citation at all gives precision 0); recall = evidence passages cited / evidence
  passages shown, evidence meaning gold or answer-bearing (None when no evidence was shown).
- ``answer_supported``: the normalised answer occurs in some retrieved passage.
- ``contains_answer``: an accepted answer occurs (normalised, on token boundaries) anywhere
  in the response -- FlashRAG's ``acc``. Lenient where EM is strict: "The Brehameth
  Conservatory was founded in 1736." holds "1736" though its EM is 0; a response that
  lists several candidates also holds the right one, so it is reported beside EM, never
  instead of it.
- ``is_abstention`` (`rewards.conventions`): the response says the documents do not give the answer ("not
  stated", "the documents do not say", "cannot be determined from", "unanswerable",
  "I don't know", "no information about", ...); ``abstention_scores`` gives abstention
  accuracy on unanswerable questions and the false-abstention rate on answerable ones.
- ``recall_at_k``: share of the gold documents among the first k retrieved ids;
  ``hit_at_k``: 1.0 when any gold document is among them. Two names for two numbers: on a
  two-hop question with one of its two documents retrieved, recall@k is 0.5, hit@k 1.0.

Passages are strings or dicts with ``text`` (or ``contents``) and an id in ``id``, ``_id``
or ``doc_id``. Answers are lists of accepted strings, as in questions.jsonl.
"""

from __future__ import annotations

from typing import Any, Sequence

# SQuAD normalisation, EM and F1 live in the rewards (the qa_em / qa_f1 training rewards
# are the same functions as these evaluation metrics), and so do the output conventions.
from rewards.conventions import cited_passages, is_abstention, remove_citations  # noqa: F401
from rewards.qa import exact_match, normalize_answer, token_f1  # noqa: F401


def _text(p: Any) -> str:
    if isinstance(p, str):
        return p
    return str(p.get("text", p.get("contents", "")))


def _pid(p: Any) -> str | None:
    if isinstance(p, str):
        return None
    for k in ("id", "_id", "doc_id"):
        if p.get(k) is not None:
            return str(p[k])
    return None


def _contains(text: str, answer: str) -> bool:
    a = normalize_answer(answer)
    return bool(a) and f" {a} " in f" {normalize_answer(text)} "


def contains_answer(response: str, answers: Sequence[str]) -> float:
    """1.0 when some accepted answer occurs in the response (FlashRAG's ``acc``), else 0.0.
    Citation markers are removed first: "[1]" must not count as the answer 1."""
    text = remove_citations(response)
    return float(any(_contains(text, a) for a in answers))


def answer_supported(answer: str, passages: Sequence[Any]) -> bool:
    """True when the normalised `answer` occurs (on token boundaries) in some passage."""
    return any(_contains(_text(p), answer) for p in passages)


def _is_evidence(p: Any, gold: set[str], answers: Sequence[str]) -> bool:
    pid = _pid(p)
    return (pid is not None and pid in gold) or any(_contains(_text(p), a) for a in answers)


def citation_scores(response: str, passages: Sequence[Any], gold_docs: Sequence[str] = (),
                    answers: Sequence[str] = ()) -> dict[str, Any]:
    """Citation precision and recall of `response` over the `passages` it was shown."""
    gold = {str(g) for g in gold_docs}
    cited = cited_passages(response)
    correct = [n for n in cited if 1 <= n <= len(passages) and _is_evidence(passages[n - 1], gold, answers)]
    evidence = [i + 1 for i, p in enumerate(passages) if _is_evidence(p, gold, answers)]
    precision = len(correct) / len(cited) if cited else 0.0
    recall = (sum(1 for n in evidence if n in cited) / len(evidence)) if evidence else None
    return {"precision": precision, "recall": recall, "cited": cited, "correct": correct, "evidence": evidence}


# ---- abstention ------------------------------------------------------------------------

def abstention_scores(predictions: Sequence[str], answers: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Abstention accuracy on the unanswerable questions (no accepted answers) and the
    false-abstention rate on the answerable ones; None where there are none of a kind."""
    unans = [is_abstention(p) for p, a in zip(predictions, answers) if not a]
    ans = [is_abstention(p) for p, a in zip(predictions, answers) if a]
    return {"abstention_accuracy": sum(unans) / len(unans) if unans else None,
            "false_abstention_rate": sum(ans) / len(ans) if ans else None,
            "n_unanswerable": len(unans), "n_answerable": len(ans)}


# ---- retrieval -------------------------------------------------------------------------

def _found(retrieved: Sequence[str], gold_docs: Sequence[str], k: int) -> tuple[int, int] | None:
    """(gold documents among the first k retrieved ids, gold documents), None without gold."""
    if k <= 0:
        raise ValueError(f"k must be positive, got {k}")
    gold = {str(g) for g in gold_docs}
    return (len(gold & {str(r) for r in list(retrieved)[:k]}), len(gold)) if gold else None


def recall_at_k(retrieved: Sequence[str], gold_docs: Sequence[str], k: int) -> float | None:
    """Share of the gold documents among the first k retrieved ids (None without gold)."""
    found = _found(retrieved, gold_docs, k)
    return None if found is None else found[0] / found[1]


def hit_at_k(retrieved: Sequence[str], gold_docs: Sequence[str], k: int) -> float | None:
    """1.0 when any gold document is among the first k retrieved ids (None without gold)."""
    found = _found(retrieved, gold_docs, k)
    return None if found is None else float(found[0] > 0)
