"""Retrieved passages in a prompt: one formatter for every grounded prompt.

Grounded training prompts (`train.grounding`), search-in-the-loop rollouts
(`tasks.search_loop`, inside ``<information>`` blocks) and RAG QA evaluation
(`eval.suites.spec`, and the knowledge-world task) all number passages the same way,
``[1] text``, with whitespace collapsed (`rewards.conventions.format_passages`, beside the
``<information>`` block that search results are pasted in and read back from), and ask the
same question the same way -- so a model trained to cite ``[n]`` is evaluated on exactly
the format it learned.
"""

from __future__ import annotations

from typing import Sequence

from rewards.conventions import format_passages

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


def grounded_prompt(question: str, passages: Sequence[str], template: str = GROUNDED_TEMPLATE) -> str:
    """The user message of a grounded prompt: instruction, numbered passages, question.
    `template` may name {instruction}, {passages} (or {context}) and {question}."""
    body = format_passages(passages)
    return (template.replace("{instruction}", GROUNDED_INSTRUCTION).replace("{passages}", body)
            .replace("{context}", body).replace("{question}", question))
