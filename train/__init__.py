"""train: SFT, DPO, GRPO (on TRL), PPO and reward-model training, LoRA,
retrieval-grounded prompts and search-in-the-loop rollouts. Builds on `rag` and `rewards`.

Front door (loads nothing heavy until called)::

    import train
    summary = train.run("grpo", "data/configs/grpo-smoke.yaml", out="runs/grpo-smoke")
    cfg = train.load_run_config("dpo", "data/configs/dpo-smoke.yaml", ["dpo.beta=0.2"])

`assay train {sft,dpo,grpo,ppo,reward} --config FILE` is the same call from the shell.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports

if TYPE_CHECKING:  # what editors and type checkers see; nothing loads at run time
    from train.config import load_run_config  # noqa: F401
    from train.trainers import run  # noqa: F401

_LAZY = {
    "run": "train.trainers",  # run(trainer, config, *, out, overrides, resume, fresh, callbacks, progress)
    "load_run_config": "train.config",
}
__all__ = sorted(_LAZY)
__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
