"""A training run's directory: resolved config, metrics.jsonl, checkpoints, plots.

    run = RunDir("runs/grpo-smoke", config_dict)
    run.log({"step": 1, "reward": 0.25, ...})    # one JSON object per logged step
    run.checkpoint_dir(step)                       # runs/.../checkpoints/step-000010
    run.plot(["reward", "kl"])                     # PNG of the curves at the end

Every file is written atomically, so a killed run never leaves a half-written one.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Callable, Iterable

from core.files import atomic_write_text


def progress_line(record: dict[str, Any], max_steps: int | None = None) -> str:
    """One line for a logged training step: step/max, reward mean with each reward's
    mean (RL) or the loss, seconds per step."""
    num = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    step = record.get("step")
    parts = [f"step {step}/{max_steps}" if max_steps else f"step {step}"]
    if num(record.get("reward")):
        per = [(k[len("rewards/"):-len("/mean")], v) for k, v in record.items()
               if k.startswith("rewards/") and k.endswith("/mean") and num(v)]
        if not per and num(record.get("verifier_reward")):
            per = [("verifier", record["verifier_reward"])]
        text = f"reward {record['reward']:.3f}"
        if per:
            text += " (" + ", ".join(f"{n} {v:.3f}" for n, v in per) + ")"
        parts.append(text)
    for key in ("loss", "policy_loss"):
        if num(record.get(key)):
            parts.append(f"{key.replace('_', ' ')} {record[key]:.4g}")
            break
    secs = record.get("step_seconds", record.get("step_time"))
    if num(secs):
        parts.append(f"{secs:.2f} s/step")
    return "train: " + "  ".join(parts)


class RunDir:
    on_log: Callable[[dict[str, Any]], None] | None = None
    """Called with each record after it is written (train.ppo's progress lines)."""

    def __init__(self, path: str | Path, config: dict | None = None):
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self.metrics_path = self.path / "metrics.jsonl"
        if config is not None:
            import yaml

            atomic_write_text(self.path / "config.yaml", yaml.safe_dump(config, sort_keys=False))

    def log(self, record: dict[str, Any]) -> None:
        """Append one metrics record; flushed and fsynced so a crash keeps what was logged."""
        clean = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        with open(self.metrics_path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(clean) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        if self.on_log is not None:
            self.on_log(clean)

    def metrics(self) -> list[dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError:
                    break  # a line cut by a crash ends the readable log
        return rows

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint_dir(self, step: int) -> Path:
        return self.checkpoints / f"step-{step:06d}"

    def last_checkpoint(self) -> Path | None:
        if not self.checkpoints.exists():
            return None
        done = sorted(p for p in self.checkpoints.iterdir() if p.is_dir() and not p.name.startswith("."))
        return done[-1] if done else None

    def plot(self, keys: Iterable[str], filename: str = "curves.png") -> Path | None:
        """Plot each metric key against `step`; keys never logged are skipped."""
        rows = self.metrics()
        keys = [k for k in keys if any(isinstance(r.get(k), (int, float)) for r in rows)]
        if not keys:
            return None
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(len(keys), 1, figsize=(7, 2.6 * len(keys)), squeeze=False)
        for ax, key in zip(axes[:, 0], keys):
            pts = [(r.get("step", i), r[key]) for i, r in enumerate(rows) if isinstance(r.get(key), (int, float))]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", linewidth=1)
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
        axes[-1, 0].set_xlabel("step")
        fig.tight_layout()
        out = self.path / filename
        tmp = out.with_name(f".{out.name}.tmp.png")
        fig.savefig(tmp, dpi=110)
        plt.close(fig)
        os.replace(tmp, out)
        return out
