"""train: SFT, DPO, GRPO (on TRL), PPO and reward-model training, LoRA,
retrieval-grounded prompts and search-in-the-loop rollouts. Builds on `rag` and `rewards`.

Front door (loads nothing heavy until called)::

    import train
    summary = train.run("grpo", "data/configs/grpo-smoke.yaml", out="runs/grpo-smoke")
    cfg = train.load_run_config("dpo", "data/configs/dpo-smoke.yaml", ["dpo.beta=0.2"])

`assay train {sft,dpo,grpo,ppo,reward} --config FILE` is the same call from the shell.
"""

from __future__ import annotations

from typing import Any


def run(trainer: str, config: Any, **kwargs: Any) -> dict:
    """Train with `trainer` (sft, dpo, grpo, ppo, reward) from a config file, dict or RunConfig;
    see `train.trainers.run` for the keywords (out, overrides, resume, callbacks)."""
    from train.trainers import run as _run

    return _run(trainer, config, **kwargs)


def load_run_config(trainer: str, source: Any, overrides: list[str] | None = None):
    from train.config import load_run_config as _load

    return _load(trainer, source, overrides)
