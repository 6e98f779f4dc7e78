"""What every TRL run shares: metrics.jsonl, completion samples, reward timing, atomic
checkpoints and a clean stop on Ctrl-C. One `transformers.TrainerCallback`.

- metrics.jsonl: every `Trainer.log` record (TRL's own keys: `loss`, `reward`,
  `rewards/<name>/mean|std`, `frac_reward_zero_std`, `kl`, `entropy`, `clip_ratio/*`,
  `completions/*`, `eval_*`) plus `step`, `step_seconds` (wall time of an optimizer step,
  averaged since the last log), `reward_seconds` (time spent inside reward functions per
  step), `reward_share` (their ratio) and `peak_mem_mb`.
- samples.jsonl (RL): a few prompts/completions with their rewards at each log.
- Checkpoints: the Trainer saves `checkpoint-N` into a staging directory
  (`checkpoints/.incoming`); once it has finished writing, `on_save` renames it to
  `checkpoints/step-00000N` — a rename within one filesystem is atomic, so a visible
  checkpoint is always complete, and `RunDir.last_checkpoint` never sees a torn one.
- Progress (`progress=True`, the CLI without --json): one line per logged step on stderr,
  since the shipped configs turn transformers' progress bar off (`disable_tqdm`).
- GRPO preflight (`grpo_preflight_steps`, default 5): a run that cannot learn says so early. If
  over the first logged steps every completion was cut at the token budget
  (`completions/clipped_ratio` 1), or every group's rewards were equal
  (`frac_reward_zero_std` 1: no advantage, no gradient), training stops with one line
  naming the setting to change (TRL #3857, #5697: runs that "learn nothing" for hours).
- SIGINT: the first Ctrl-C asks the Trainer to save a checkpoint and stop at the end of the
  current step; a second one interrupts at once.
"""

from __future__ import annotations

import os
import resource
import shutil
import signal
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

from transformers import TrainerCallback

from core.errors import UserError
from train.runs import RunDir, progress_line


class PreflightError(UserError):
    """A GRPO run that cannot learn, stopped in its first steps."""


def peak_memory_mb() -> float:
    """Peak resident memory of this process (CPU) or peak CUDA allocation, in MB."""
    try:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            return torch.cuda.max_memory_allocated() / 2**20
    except ImportError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


class RewardRecorder:
    """Wraps TRL reward functions: times each call and keeps the last batch for samples."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.seconds = 0.0
        self.last: dict[str, Any] = {}

    def wrap(self, fn: Callable) -> Callable:
        name = getattr(fn, "__name__", "reward")

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            dt = time.perf_counter() - t0
            with self._lock:
                self.seconds += dt
                self.last["prompts"] = kwargs.get("prompts")
                self.last["completions"] = kwargs.get("completions")
                self.last.setdefault("rewards", {})[name] = list(out)
            return out

        timed.__name__ = name
        timed.__qualname__ = name
        return timed

    def take(self) -> tuple[float, dict[str, Any]]:
        with self._lock:
            seconds, last = self.seconds, self.last
            self.seconds, self.last = 0.0, {}
        return seconds, last


def _text(x: Any) -> Any:
    if isinstance(x, list):  # chat messages: keep the content only
        return "\n".join(str(m.get("content", "")) if isinstance(m, dict) else str(m) for m in x)
    return x


class AssayCallback(TrainerCallback):
    def __init__(self, run: RunDir, *, recorder: RewardRecorder | None = None, samples: int = 4,
                 staging: Path | None = None, keep: int | None = None, time_limit: float | None = None,
                 progress: bool = False, preflight_steps: int = 0):
        self.run = run
        self.preflight_steps = preflight_steps  # GRPO: logged steps checked for a run that cannot learn
        self._preflight: list[dict[str, Any]] = []
        self.progress = progress  # a line per logged training step on stderr
        self.time_limit = time_limit  # seconds
        self.timed_out = False
        self._t_train = time.perf_counter()
        self.recorder = recorder
        self.samples = samples
        self.staging = staging
        self.keep = keep
        self.stop_requested = False
        self._t_step = None
        self._step_seconds: list[float] = []
        self.summary: dict[str, Any] = {}

    # -- timing
    def on_train_begin(self, args, state, control, **kw):
        self._t_train = time.perf_counter()

    def on_step_begin(self, args, state, control, **kw):
        self._t_step = time.perf_counter()

    def on_step_end(self, args, state, control, **kw):
        if self._t_step is not None:
            self._step_seconds.append(time.perf_counter() - self._t_step)
            self._t_step = None
        if self.time_limit is not None and time.perf_counter() - self._t_train > self.time_limit:
            self.timed_out = True
        if self.stop_requested or self.timed_out:
            control.should_save = True
            control.should_training_stop = True
        return control

    # -- metrics
    def on_log(self, args, state, control, logs=None, **kw):
        if not state.is_world_process_zero or not logs:
            return
        record: dict[str, Any] = {"step": state.global_step}
        for k, v in logs.items():
            if isinstance(v, (int, float, str, bool)) or v is None:
                record[k] = v
        if self._step_seconds and not any(k.startswith("eval_") for k in logs):
            steps = self._step_seconds
            record["step_seconds"] = sum(steps) / len(steps)
            if self.recorder is not None:
                reward_s, last = self.recorder.take()
                record["reward_seconds"] = reward_s / len(steps)
                record["reward_share"] = reward_s / max(sum(steps), 1e-9)
                self._write_samples(state.global_step, last)
            self._step_seconds = []
        record["peak_mem_mb"] = round(peak_memory_mb(), 1)
        self.run.log(record)
        if self.progress and "train_runtime" not in logs and not any(k.startswith("eval_") for k in logs):
            print(progress_line(record, state.max_steps), file=sys.stderr, flush=True)
        if self.preflight_steps and "frac_reward_zero_std" in record:
            self._check_preflight(record)

    def _check_preflight(self, record: dict[str, Any]) -> None:
        self._preflight.append(record)
        if len(self._preflight) != self.preflight_steps:
            return
        steps = self._preflight
        if all(r.get("completions/clipped_ratio", 0) >= 1.0 for r in steps):
            raise PreflightError(
                f"every completion of the first {len(steps)} steps was cut at the token budget (mean length "
                f"{steps[-1].get('completions/mean_length', 0):.0f} tokens): raise grpo.max_completion_length, or teach "
                f"the format first (an SFT stage); metrics so far: {self.run.path / 'metrics.jsonl'}")
        if all(r.get("frac_reward_zero_std", 0) >= 1.0 for r in steps):
            reward = steps[-1].get("reward")
            raise PreflightError(
                f"every group of the first {len(steps)} steps had equal rewards (mean reward {reward}): no advantage, "
                f"nothing to learn -- raise grpo.temperature or grpo.num_generations, check the rewards on a few "
                f"completions (`assay score`), or start from an SFT stage; set grpo_preflight_steps: 0 to train anyway")

    def _write_samples(self, step: int, last: dict[str, Any]) -> None:
        completions = last.get("completions") or []
        if not completions or self.samples <= 0:
            return
        import json

        prompts = last.get("prompts") or [None] * len(completions)
        rewards = last.get("rewards", {})
        with open(self.run.path / "samples.jsonl", "a", encoding="utf-8") as fh:
            for i in range(min(self.samples, len(completions))):
                fh.write(json.dumps({"step": step, "prompt": _text(prompts[i]), "completion": _text(completions[i]),
                                     "rewards": {k: v[i] for k, v in rewards.items() if i < len(v)}},
                                    default=str) + "\n")

    # -- checkpoints
    def on_save(self, args, state, control, **kw):
        if self.staging is None or not state.is_world_process_zero:
            return
        src = self.staging / f"checkpoint-{state.global_step}"
        if not src.is_dir():
            return
        dst = self.run.checkpoint_dir(state.global_step)
        dst.parent.mkdir(parents=True, exist_ok=True)
        if dst.exists():
            shutil.rmtree(dst)
        os.replace(src, dst)
        if self.keep:
            done = sorted(p for p in self.run.checkpoints.iterdir() if p.is_dir() and not p.name.startswith("."))
            for old in done[: -self.keep]:
                shutil.rmtree(old, ignore_errors=True)

    def on_train_end(self, args, state, control, **kw):
        self.summary = {"global_step": state.global_step, "max_steps": state.max_steps,
                        "interrupted": self.stop_requested, "time_limit_reached": self.timed_out}


@contextmanager
def graceful_sigint(callback: AssayCallback):
    """First Ctrl-C: save and stop after this step. Second: KeyboardInterrupt now."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)

    def handler(signum, frame):
        if callback.stop_requested:
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        callback.stop_requested = True
        print("\nassay train: interrupted — saving a checkpoint at the end of this step "
              "(Ctrl-C again to quit at once)", file=sys.stderr, flush=True)

    signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
