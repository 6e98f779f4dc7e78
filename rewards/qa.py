"""Short-answer QA rewards: SQuAD exact match and token F1, with abstention for unanswerable questions.

    rewards.score("qa_em,qa_f1", ["Varno Keltis [2]"], [{"answers": ["Varno Keltis"]}])

The gold field is ``answers``: a list of accepted strings (a single string is taken as a
one-item list). An empty list marks an unanswerable question: the reward is 1 for an
abstention ("The passages do not say.", see `is_abstention`) and 0 for anything else.
On an answerable question an abstention scores 0 like any other wrong answer.

The answer a completion commits to is `rewards.conventions.short_answer`, and an
abstention is `rewards.conventions.is_abstention`: the output conventions live once, so the
RAG QA metrics read a completion exactly as these rewards do.

Normalisation and the two scores are SQuAD v1.1's official definitions (evaluate-v1.1.py):
lower-case, drop punctuation, drop the articles a/an/the, collapse whitespace; EM compares
the normalised strings, F1 the bags of normalised tokens (0 when they share none -- also
when both are empty, as the official v1.1 script computes it; v2.0's no-answer rule would
give 1 there, and assay scores unanswerable questions by abstention instead); the score is
the maximum over the accepted answers. `tasks.rag_qa_metrics` and `eval.metrics` use
these very functions (rewards import nothing of assay but core, so they live here).
"""

from __future__ import annotations

import collections
import re
import string
from typing import Any, Sequence

from rewards.base import RewardError, RewardResult, register
from rewards.conventions import claim, is_abstention, short_answer

_PUNCT = set(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1: lower case, drop punctuation, drop articles, collapse whitespace."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in _PUNCT)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals some normalised answer, else 0.0."""
    p = normalize_answer(prediction)
    return 1.0 if any(p == normalize_answer(a) for a in answers) else 0.0


def _f1(prediction: str, answer: str) -> float:
    pred, gold = normalize_answer(prediction).split(), normalize_answer(answer).split()
    same = sum((collections.Counter(pred) & collections.Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, answers: Sequence[str]) -> float:
    """SQuAD v1.1 token F1, the maximum over the accepted answers."""
    return max((_f1(prediction, a) for a in answers), default=0.0)


def answers_of(row: dict, i: int) -> list[str]:
    if "answers" not in row:
        raise RewardError(f"row {i}: missing field 'answers' (a list of accepted answers; [] = unanswerable)")
    value = row["answers"]
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)):
        raise RewardError(f"row {i}: field 'answers' must be a list of strings, got {type(value).__name__}")
    return [str(v) for v in value]


def _score(completion: str, answers: list[str], metric: str) -> RewardResult:
    pred = short_answer(completion)
    if not answers:
        ok = is_abstention(claim(completion))  # pasted search results are not the model's words
        return RewardResult(1.0 if ok else 0.0, "abstained (unanswerable)" if ok else f"answered {pred[:40]!r} to an unanswerable question",
                            {"extracted": pred, "abstained": ok})
    s = exact_match(pred, answers) if metric == "em" else token_f1(pred, answers)
    reason = ("matches" if s >= 1 else f"expected {answers[0]!r}") if metric == "em" else f"token F1 {s:.2f}"
    return RewardResult(round(s, 6), reason, {"extracted": pred})


@register("qa_em", fields=("answers",))
def qa_em(completions: Sequence[str], rows: Sequence[dict], **_: Any) -> list[RewardResult]:
    """SQuAD exact match of the short answer against `answers` ([] = unanswerable: 1 for abstaining)."""
    return [_score(c, answers_of(r, i), "em") for i, (c, r) in enumerate(zip(completions, rows))]


@register("qa_f1", fields=("answers",))
def qa_f1(completions: Sequence[str], rows: Sequence[dict], **_: Any) -> list[RewardResult]:
    """SQuAD token F1 of the short answer against `answers` ([] = unanswerable: 1 for abstaining)."""
    return [_score(c, answers_of(r, i), "f1") for i, (c, r) in enumerate(zip(completions, rows))]
