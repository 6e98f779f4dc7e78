"""Training benchmark (not CI): GRPO with LoRA on SmolLM2-135M-Instruct, reasoning-gym arithmetic.

    python bench/train.py [--out runs/bench-train] [--minutes 16] [--trainer-steps 4] [--skip-others]

1. GRPO (data/configs/grpo-smollm2-arith.yaml): held-out greedy accuracy before and after
   training, reward/KL curve PNG, seconds per step, reward scoring's share of step time.
   Training stops after `--minutes` (a checkpoint is saved, then the model is evaluated).
2. Seconds per step and peak memory of every trainer: short runs (`--trainer-steps`) of SFT,
   DPO, the reward model and PPO on the same model with LoRA, each in its own process so its
   peak resident memory is its own.

Everything runs through `assay train` in subprocesses, exactly as a user would. Writes
OUT/bench.json and OUT/report.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
MODEL = "SmolLM2-135M-Instruct"
LORA = {"enabled": True, "r": 16, "alpha": 32, "dropout": 0.0}


def assay_train(trainer: str, config: Path, out: Path, sets: list[str], log) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "assay", "train", trainer, "--config", str(config), "--out", str(out), "--json"]
    for s in sets:
        cmd += ["--set", s]
    print("$", " ".join(cmd[2:]), flush=True)
    t0 = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=log, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 130):
        raise SystemExit(f"{trainer} failed (exit {proc.returncode}); see {log.name}")
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    summary["process_cpu_seconds"] = round(cpu, 1)
    summary["process_wall_seconds"] = round(time.perf_counter() - t0, 1)
    return summary, cpu


def speed_configs(steps: int) -> dict[str, dict]:
    """Short runs for seconds-per-step and peak memory, one per trainer."""
    common = {"model": {"name": MODEL}, "lora": LORA, "logging": {"steps": 1, "plot": False}, "seed": 0}
    arith = {"source": "reasoning_gym:basic_arithmetic",
             "options": {"size": 64, "seed": 2, "min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}}
    trl_common = {"max_steps": steps, "save_strategy": "no", "disable_tqdm": True}
    return {
        "sft": {**common, "data": {"source": "gsm8k", "limit": 64, "completion_template": "{solution}"},
                "sft": {**trl_common, "per_device_train_batch_size": 4, "max_length": 256, "learning_rate": 1e-4}},
        "dpo": {**common, "data": {"source": "toy:lucky", "options": {"size": 64}},
                "dpo": {**trl_common, "per_device_train_batch_size": 4, "learning_rate": 1e-4}},
        "reward": {**common, "data": {"source": "toy:lucky", "options": {"size": 64}},
                   "reward": {**trl_common, "per_device_train_batch_size": 4, "learning_rate": 1e-4}},
        "ppo": {**common, "data": arith, "rewards": [{"name": "math", "options": {"lenient": True}}],
                "ppo": {"steps": steps, "batch_size": 8, "mini_batch_size": 4, "ppo_epochs": 2,
                        "learning_rate": 1e-4, "max_new_tokens": 32, "save_every": 0}},
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="runs/bench-train")
    ap.add_argument("--minutes", type=float, default=12.0, help="GRPO training time budget")
    ap.add_argument("--trainer-steps", type=int, default=3, help="steps of each speed run")
    ap.add_argument("--skip-others", action="store_true", help="GRPO only")
    ap.add_argument("--skip-grpo", action="store_true", help="speed runs only")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # On a shared, oversubscribed CPU one thread per process beats two that wait on each other.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    results: dict = {"model": MODEL, "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    with open(out / "bench.log", "a") as log:
        if not args.skip_grpo:
            grpo, _ = assay_train("grpo", REPO / "data/configs/grpo-smollm2-arith.yaml", out / "grpo",
                                  [f"time_limit_minutes={args.minutes}"], log)
            results["grpo"] = grpo
            print(json.dumps({k: grpo.get(k) for k in ("heldout_before", "heldout_after", "global_step",
                                                         "seconds_per_step", "reward_share", "peak_mem_mb")}), flush=True)
        if not args.skip_others:
            speed = {}
            for trainer, cfg in speed_configs(args.trainer_steps).items():
                path = out / f"{trainer}-speed.yaml"
                path.write_text(yaml.safe_dump(cfg, sort_keys=False))
                summary, _ = assay_train(trainer, path, out / f"{trainer}-speed", [], log)
                speed[trainer] = summary
                print(trainer, json.dumps({k: summary.get(k) for k in ("seconds_per_step", "peak_mem_mb")}), flush=True)
            results["speed"] = speed
    (out / "bench.json").write_text(json.dumps(results, indent=2, default=str))
    (out / "report.md").write_text(report(results))
    print(report(results))
    return 0


def report(r: dict) -> str:
    lines = [f"# bench/train.py — {r['model']}, started {r['started']}", ""]
    g = r.get("grpo")
    if g:
        lines += ["## GRPO + LoRA, reasoning-gym basic_arithmetic (held-out: 40 questions, greedy, 16 new tokens)", "",
                  f"- accuracy (math reward) before: {(g.get('heldout_before') or {}).get('rewards/math')}",
                  f"- accuracy (math reward) after: {(g.get('heldout_after') or {}).get('rewards/math')}",
                  f"- weighted held-out reward before/after: {g.get('heldout_reward_before')} / {g.get('heldout_reward_after')}",
                  f"- steps: {g.get('global_step')} (time limit reached: {g.get('time_limit_reached')})",
                  f"- train reward, first 10 steps: {g.get('reward_first10')}; last 10: {g.get('reward_last10')}",
                  f"- seconds per step: {g.get('seconds_per_step')}; reward scoring share of step time: {g.get('reward_share')}",
                  f"- peak memory: {g.get('peak_mem_mb')} MB; wall {g.get('process_wall_seconds')} s, CPU {g.get('process_cpu_seconds')} s",
                  f"- curves: {g.get('plot')}", ""]
    rows = dict(r.get("speed", {}))
    if g:
        rows = {"grpo": g, **rows}
    if rows:
        lines += ["## Seconds per step and peak memory (SmolLM2-135M-Instruct + LoRA r=16, CPU)", "",
                  "| trainer | steps | s/step | peak MB | process wall s | process CPU s |", "|---|---|---|---|---|---|"]
        for name, s in rows.items():
            lines.append(f"| {name} | {s.get('global_step', s.get('steps'))} | {s.get('seconds_per_step')} | {s.get('peak_mem_mb') and round(s['peak_mem_mb'])} "
                         f"| {s.get('process_wall_seconds')} | {s.get('process_cpu_seconds')} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
