"""DPO preference pairs from verifier outcomes.

For each prompt: sample k completions with the model, score them with assay's rewards, and
pair a passing completion (weighted total >= threshold) as `chosen` with a failing one as
`rejected`. Prompts where every sample passes or every sample fails give no pair (there is
nothing to prefer). The output is JSONL that `assay train dpo` reads as `data.source`:
`question`, `prompt`, `chosen`, `rejected`, their scores, and the row's gold fields.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.files import atomic_open
from train.config import RunConfig


@dataclass
class PrefsConfig:
    k: int = 4
    """Completions sampled per prompt."""
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 256
    threshold: float = 1.0
    """A completion passes when its weighted reward total is at least this."""
    pairs_per_prompt: int = 1
    batch_size: int = 8
    seed: int = 0


def build_pairs(prompts: list[dict], completions: list[list[str]], totals: list[list[float]],
                opts: PrefsConfig) -> tuple[list[dict], dict[str, int]]:
    """Pair the best passing completions with the worst failing ones, per prompt."""
    pairs: list[dict] = []
    stats = {"all_pass": 0, "all_fail": 0, "paired_prompts": 0}
    for row, comps, scores in zip(prompts, completions, totals):
        seen: set[str] = set()
        unique = []
        for c, s in zip(comps, scores):
            if c not in seen:
                seen.add(c)
                unique.append((c, s))
        passing = sorted([u for u in unique if u[1] >= opts.threshold], key=lambda u: -u[1])
        failing = sorted([u for u in unique if u[1] < opts.threshold], key=lambda u: u[1])
        if not failing:
            stats["all_pass"] += 1
            continue
        if not passing:
            stats["all_fail"] += 1
            continue
        stats["paired_prompts"] += 1
        gold = {k: v for k, v in row.items() if k not in ("prompt", "chosen", "rejected", "completion")}
        for (c, cs), (r, rs) in list(zip(passing, failing))[: opts.pairs_per_prompt]:
            pairs.append({**gold, "prompt": row["prompt"], "chosen": c, "rejected": r,
                          "chosen_score": cs, "rejected_score": rs})
    return pairs, stats


def make_prefs(cfg: RunConfig, out: str | Path, opts: PrefsConfig) -> dict[str, Any]:
    from train import data
    from train.generate import generate
    from train.scoring import RewardSet
    from train.trainers import load_model

    if not cfg.rewards:
        from core.config import ConfigError

        raise ConfigError("assay data prefs needs rewards (--rewards math or a config with a rewards section)")
    rset = RewardSet(cfg.rewards, cfg.rewards_backend)
    model, tok = load_model(cfg)
    rows = data.load_rows(cfg.data)
    rows, _ = data.split_rows(rows, cfg.data)
    prompts = data.to_prompts(rows, cfg.data, cfg.model, tok)
    t0 = time.perf_counter()
    outs = generate(model, tok, [r["prompt"] for r in prompts], max_new_tokens=opts.max_new_tokens, samples=opts.k,
                    temperature=opts.temperature, top_p=opts.top_p, batch_size=opts.batch_size, seed=opts.seed)
    gen_s = time.perf_counter() - t0
    flat_c = [c for cs in outs for c in cs]
    flat_r = [r for r, cs in zip(prompts, outs) for _ in cs]
    t1 = time.perf_counter()
    flat_t, means = rset.score(flat_c, flat_r)
    score_s = time.perf_counter() - t1
    totals, i = [], 0
    for cs in outs:
        totals.append(flat_t[i:i + len(cs)])
        i += len(cs)
    pairs, stats = build_pairs(prompts, outs, totals, opts)
    with atomic_open(out, "w") as fh:
        for p in pairs:
            fh.write(json.dumps(p, ensure_ascii=False, default=str) + "\n")
    passed = sum(t >= opts.threshold for t in flat_t)
    return {"out": str(out), "prompts": len(prompts), "completions": len(flat_c), "pass_rate": passed / max(1, len(flat_c)),
            "pairs": len(pairs), **stats, "reward_means": means,
            "generate_seconds": round(gen_s, 2), "score_seconds": round(score_s, 2)}
