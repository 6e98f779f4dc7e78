"""Batched sampling with a causal LM — for held-out evaluation and preference-pair building."""

from __future__ import annotations

from typing import Any


def prompt_text(tokenizer, prompt: Any) -> str:
    """A prompt as the model sees it: chat messages through the chat template."""
    if isinstance(prompt, list):
        return tokenizer.apply_chat_template(prompt, tokenize=False, add_generation_prompt=True)
    return str(prompt)


def generate(model, tokenizer, prompts: list[Any], *, max_new_tokens: int = 64, samples: int = 1,
             temperature: float = 0.0, top_p: float = 1.0, batch_size: int = 16, seed: int | None = None) -> list[list[str]]:
    """`samples` completions per prompt (greedy when temperature is 0), as decoded strings."""
    import torch

    if seed is not None:
        torch.manual_seed(seed)
    side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    out: list[list[str]] = []
    try:
        for i in range(0, len(prompts), batch_size):
            texts = [prompt_text(tokenizer, p) for p in prompts[i: i + batch_size]]
            # a chat template already holds the special tokens; plain prompts get the tokenizer's own
            enc = tokenizer(texts, return_tensors="pt", padding=True,
                            add_special_tokens=not isinstance(prompts[i], list)).to(device)
            kwargs: dict[str, Any] = dict(max_new_tokens=max_new_tokens, num_return_sequences=samples,
                                          pad_token_id=tokenizer.pad_token_id)
            if temperature > 0:
                kwargs.update(do_sample=True, temperature=temperature, top_p=top_p)
            else:
                kwargs.update(do_sample=False)
            with torch.no_grad():
                ids = model.generate(**enc, **kwargs)
            width = enc["input_ids"].shape[1]
            decoded = tokenizer.batch_decode(ids[:, width:], skip_special_tokens=True)
            for j in range(len(texts)):
                out.append(decoded[j * samples:(j + 1) * samples])
    finally:
        tokenizer.padding_side = side
        model.train(was_training)
    return out
