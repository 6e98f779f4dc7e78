"""Retrieval-grounded prompts: put the top-k chunks for each question into its prompt.

    rows = build_grounded_prompts(rows, "idx/", k=4)
    rows[0]["prompt"]      # the sources numbered [1]..[k], then the question
    rows[0]["contexts"]    # the chunk texts, in that order (what the `grounding` reward reads)
    rows[0]["citations"]   # per source: n, doc_id, chunk_id, start, end, score

The question is the row's `question` field when present, else its prompt (the last user
message of a chat prompt). A string prompt stays a string; a chat prompt keeps its other
messages and gets its last user message rewritten; a row with only a `question` gets a
one-message chat prompt. Rows are copied, never modified in place.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from core.errors import UserError
from tasks.passages import GROUNDED_TEMPLATE, grounded_prompt

DEFAULT_TEMPLATE = GROUNDED_TEMPLATE  # the one grounded prompt (tasks.passages), as RAG QA evaluation asks it


class GroundingError(UserError, ValueError):
    pass


def question_of(row: dict, i: int) -> str:
    q = row.get("question")
    if isinstance(q, str) and q.strip():
        return q
    prompt = row.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        return prompt
    if isinstance(prompt, list):
        for msg in reversed(prompt):
            if isinstance(msg, dict) and msg.get("role") == "user" and isinstance(msg.get("content"), str):
                return msg["content"]
    raise GroundingError(f"row {i}: no question to retrieve for (needs a 'question' or a 'prompt' field)")


def ground_rows(rows: Sequence[dict], retrieve_many: Callable[[list[str], int], list[list[Any]]], k: int,
                template: str | None = None) -> list[dict]:
    """The core, over any retriever: `retrieve_many(questions, k)` -> per question a list of hits
    (objects with `.chunk.text/.doc_id/.id/.start/.end` and `.score`, as rag.Hit)."""
    template = template or DEFAULT_TEMPLATE
    if "{question}" not in template or ("{context}" not in template and "{passages}" not in template):
        raise GroundingError(f"grounding template must contain {{passages}} (or {{context}}) and {{question}}: "
                             f"{template[:80]!r}")
    if k < 1:
        raise GroundingError(f"k must be >= 1, got {k}")
    questions = [question_of(r, i) for i, r in enumerate(rows)]
    hit_lists = retrieve_many(questions, k) if rows else []
    out = []
    for row, question, hits in zip(rows, questions, hit_lists):
        texts = [h.chunk.text for h in hits]
        rendered = grounded_prompt(question, texts, template)
        new = dict(row)
        prompt = row.get("prompt")
        if isinstance(prompt, list):
            msgs = [dict(m) for m in prompt]
            last_user = max((j for j, m in enumerate(msgs) if m.get("role") == "user"), default=None)
            if last_user is None:
                msgs.append({"role": "user", "content": rendered})
            else:
                msgs[last_user]["content"] = rendered
            new["prompt"] = msgs
        elif isinstance(prompt, str):
            new["prompt"] = rendered
        else:
            new["prompt"] = [{"role": "user", "content": rendered}]
        new["contexts"] = texts
        new["citations"] = [{"n": n, "doc_id": h.chunk.doc_id, "chunk_id": h.chunk.id, "start": h.chunk.start,
                             "end": h.chunk.end, "score": float(h.score)} for n, h in enumerate(hits, 1)]
        out.append(new)
    return out


def build_grounded_prompts(rows: Sequence[dict], index_dir: str, k: int = 4, template: str | None = None, *,
                           mode: str = "hybrid", batch_size: int = 64) -> list[dict]:
    """Retrieve the top-k chunks from the assay index at `index_dir` for each row's question and
    build its grounded prompt (see the module doc). `template` needs {context} and {question}."""
    from rag.index import Index

    index = Index.open(index_dir)

    def retrieve_many(questions: list[str], k: int) -> list[list[Any]]:
        out = []
        for i in range(0, len(questions), batch_size):
            out.extend(index.search_many(questions[i : i + batch_size], k=k, mode=mode))
        return out

    return ground_rows(rows, retrieve_many, k, template)
