"""Search in the loop for TRL: the policy may call a retriever while it writes.

    rollout = make_search_rollout("idx/", SearchConfig(max_turns=2, top_k=3))
    GRPOTrainer(..., rollout_func=rollout)                    # TRL 1.16
    train_ppo(..., search=SearchConfig(), search_index="idx/")  # assay's PPO

The loop itself (turns, retrieval, the pasted ``<information>`` blocks and the policy mask
that keeps retrieved tokens out of the loss) is `tasks.search_loop`, shared with
evaluation; its names are re-exported here. This module adapts it to TRL 1.16's
`rollout_func`: TRL takes the per-token ``env_mask`` and multiplies it into the loss mask.
"""

from __future__ import annotations

from typing import Any, Sequence

from core.config import ConfigError
from tasks.search_loop import (  # noqa: F401 - re-exported: train.ppo, train.trainers and tests import them from here
    Passage,
    Retriever,
    SearchConfig,
    SearchGeneration,
    SearchRollout,
    index_retriever,
)


def prompt_texts(prompts: Sequence[Any], tokenizer, instructions: str | None, chat_template_kwargs: dict) -> list[str]:
    texts = []
    for p in prompts:
        if isinstance(p, str):
            texts.append(f"{instructions}\n\n{p}" if instructions else p)
        elif isinstance(p, list):
            msgs = [dict(m) for m in p]
            if instructions:
                users = [j for j, m in enumerate(msgs) if m.get("role") == "user"]
                if users:
                    msgs[users[-1]]["content"] = f"{instructions}\n\n{msgs[users[-1]]['content']}"
            texts.append(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True,
                                                       **chat_template_kwargs))
        else:
            raise ConfigError(f"a prompt must be a string or chat messages, got {type(p).__name__}")
    return texts


def make_search_rollout(index_dir: str | None, config: SearchConfig | None = None, *,
                        retrieve: Retriever | None = None, generate_kwargs: dict | None = None):
    """A TRL 1.16 `rollout_func(prompts, trainer) -> dict` doing search-in-the-loop generation.

    Returns prompt_ids, completion_ids, logprobs, and `env_mask` (0 on retrieved tokens:
    TRL multiplies it into the loss mask), plus per-completion fields the reward functions
    receive as keyword arguments: `contexts` (the retrieved chunk texts, numbered as the
    policy saw them, so the `grounding` reward can check citations), `search_queries`
    and `search_calls`. TRL hands the function the per-process prompts already repeated
    `num_generations` times, so it returns one completion per prompt it receives.
    `retrieve` replaces the index (any `retrieve(query, k) -> [Passage]`).
    """
    config = config or SearchConfig()
    if retrieve is None:
        if not index_dir:
            raise ConfigError("search in the loop needs retrieval.index (an assay index directory)")
        retrieve = index_retriever(index_dir, config.mode)
    rollout = SearchRollout(retrieve, config)

    def rollout_func(prompts: list, trainer) -> dict[str, list]:
        import torch

        tokenizer = getattr(trainer.processing_class, "tokenizer", None) or trainer.processing_class
        model = trainer.accelerator.unwrap_model(trainer.model)
        texts = prompt_texts(prompts, tokenizer, config.instructions, getattr(trainer, "chat_template_kwargs", {}) or {})
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad():
                gen = rollout.generate(
                    model, tokenizer, texts, max_new_tokens=trainer.max_completion_length,
                    temperature=trainer.temperature, top_k=trainer.top_k or 0,
                    top_p=trainer.top_p if trainer.top_p is not None else 1.0,
                    max_prompt_length=getattr(trainer.args, "max_prompt_length", None),
                    generate_kwargs=generate_kwargs)
        finally:
            model.train(was_training)
        return {
            "prompt_ids": gen.prompt_ids,
            "completion_ids": gen.completion_ids,
            "logprobs": gen.logprobs,
            "env_mask": gen.policy_mask,
            "contexts": [[p.text for p in ps] for ps in gen.passages],
            "search_queries": gen.queries,
            "search_calls": gen.search_calls_list,
        }

    rollout_func.search_rollout = rollout  # for inspection and tests
    return rollout_func
