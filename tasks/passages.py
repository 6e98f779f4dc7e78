"""Retrieved passages in a prompt: one formatter for every grounded prompt.

Grounded training prompts (`train.grounding`), search-in-the-loop rollouts
(`tasks.search_loop`, inside ``<information>`` blocks) and RAG QA evaluation
(`eval.suites.spec`, and the knowledge-world task) all number passages the same way,
``[1] text``, with whitespace collapsed, and ask the same question the same way -- so a
model trained to cite ``[n]`` is evaluated on exactly the format it learned.
"""

from __future__ import annotations

from typing import Sequence

GROUNDED_INSTRUCTION = (
    "Answer the question using only the numbered passages below. Answer in a few words, then cite "
    "each passage you used by its number in brackets, like [1]. If the passages do not give the "
    "answer, say that they do not say."
)
GROUNDED_TEMPLATE = "{instruction}\n\n{passages}\n\nQuestion: {question}"
# How a search-in-the-loop prompt tells the model to search (tasks.search_loop pastes the
# results; the RAG QA task's search mode asks with it).
SEARCH_INSTRUCTIONS = (
    "You can search a knowledge base. To search, write <search>your query</search>; the results "
    "come back between <information> and </information>, numbered [1], [2], .... Search as often as "
    "you need, then give the final answer between <answer> and </answer>, citing sources like [1]."
)
# How search results are pasted into a search-in-the-loop completion: the rollout
# (tasks.search_loop) pastes them and the programmatic search traces SFT teaches from
# (tasks.rag_qa) are written with the same block, so the two never drift apart.
INFORMATION_TEMPLATE = "\n<information>{passages}</information>\n"
INFORMATION_PASSAGE_CHARS = 600


def information_block(texts: Sequence[str], *, start: int = 1, max_chars: int | None = INFORMATION_PASSAGE_CHARS,
                      template: str = INFORMATION_TEMPLATE) -> str:
    """One search's results as pasted into the completion: ``[n] text`` lines, numbered on
    from `start` (passages keep their numbers across searches), inside `template`."""
    body = format_passages(texts, start=start, max_chars=max_chars, sep="\n") if texts else "No results."
    return template.replace("{passages}", body)


def format_passages(texts: Sequence[str], *, start: int = 1, max_chars: int | None = None, sep: str = "\n\n") -> str:
    """``[start] text`` for each passage, whitespace collapsed, each cut to `max_chars`."""
    out = []
    for n, text in enumerate(texts, start):
        flat = " ".join(str(text).split())
        out.append(f"[{n}] {flat[:max_chars] if max_chars else flat}")
    return sep.join(out)


def grounded_prompt(question: str, passages: Sequence[str], template: str = GROUNDED_TEMPLATE) -> str:
    """The user message of a grounded prompt: instruction, numbered passages, question.
    `template` may name {instruction}, {passages} (or {context}) and {question}."""
    body = format_passages(passages)
    return (template.replace("{instruction}", GROUNDED_INSTRUCTION).replace("{passages}", body)
            .replace("{context}", body).replace("{question}", question))
