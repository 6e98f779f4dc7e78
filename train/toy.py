"""The toy verifiable task of the smoke runs, and the tiny model that learns it on a CPU.

Task `toy:lucky`: "Pick the lucky number for <word> <word>:" -> the gold answer is always
7, checked by assay's own `math` reward (lenient: the last number counts). A policy that
answers with a uniformly random digit scores 0.1; one that learned the task scores 1.

A tiny random model cannot start RL on it: its next-token distribution is uniform over the
49,152-token vocabulary, so a digit is almost never sampled and every group's reward is 0.
`toy_model` therefore builds the tiny model (`core.models.build_tiny_causal_lm`) and gives
it the answer *format* with a few dozen plain-torch steps on random digits — like the SFT
stage before R1's RL — so sampling yields each digit ~10% of the time. RL then has to
find which digit is rewarded. The result is cached (keyed by its settings) like any model.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from pathlib import Path

WORDS = ("apple river stone cloud green table music light north paper"
         " tiger glass candle forest silver window garden rocket violet ocean").split()
LUCKY = "7"
TASKS = ("lucky",)


def prompt_text(rng: random.Random) -> str:
    return f"Pick the lucky number for {rng.choice(WORDS)} {rng.choice(WORDS)}:"


def rows(task: str = "lucky", size: int = 256, seed: int = 0) -> list[dict]:
    """Prompt rows with the gold `answer`, plus a `completion` (the right answer) for SFT and
    `chosen`/`rejected` (the lucky digit vs another one) for DPO and reward models."""
    if task not in TASKS:
        raise ValueError(f"unknown toy task {task!r}; known: {', '.join(TASKS)}")
    rng = random.Random(seed)
    out = []
    for _ in range(size):
        text = prompt_text(rng)
        wrong = rng.choice([d for d in "0123456789" if d != LUCKY])
        out.append({"question": text, "answer": LUCKY, "completion": f" {LUCKY}",
                    "chosen": f" {LUCKY}", "rejected": f" {wrong}"})
    return out


def toy_model(path: str | Path | None = None, *, seed: int = 0, steps: int = 60, lr: float = 1e-2) -> Path:
    """A tiny Llama (SmolLM2's tokenizer) that answers `toy:lucky` prompts with one random digit."""
    import torch

    from core.models import build_tiny_causal_lm, cache_dir

    path = Path(path) if path else cache_dir() / "models" / f"toy-lucky-s{seed}-n{steps}"
    if (path / "config.json").exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        base = build_tiny_causal_lm(work / "base", seed=seed)
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(base)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
        torch.manual_seed(seed)
        rng = random.Random(seed)
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
        model.train()
        for _ in range(steps):
            seqs, starts = [], []
            for _ in range(32):
                p = tok(prompt_text(rng), add_special_tokens=False)["input_ids"]
                c = tok(f" {rng.randrange(10)}", add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
                seqs.append(p + c)
                starts.append(len(p))
            width = max(len(q) for q in seqs)
            ids = torch.tensor([q + [tok.pad_token_id] * (width - len(q)) for q in seqs])
            mask = torch.tensor([[1] * len(q) + [0] * (width - len(q)) for q in seqs])
            hidden = model.model(input_ids=ids, attention_mask=mask).last_hidden_state
            # logits only where an answer token is predicted: the 49k-way head is the cost
            rows_, cols = zip(*[(b, t) for b, (q, s) in enumerate(zip(seqs, starts)) for t in range(s - 1, len(q) - 1)])
            logits = model.lm_head(hidden[list(rows_), list(cols)])
            loss = torch.nn.functional.cross_entropy(logits, ids[list(rows_), [c + 1 for c in cols]])
            loss.backward()
            opt.step()
            opt.zero_grad()
        model.eval()
        model.save_pretrained(work / "model", safe_serialization=True)
        tok.save_pretrained(work / "model")
        if path.exists():
            shutil.rmtree(path)
        (work / "model").rename(path)  # same directory: atomic
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return path
