"""The demo's grounded-training moment: a tiny knowledge world, recipe (a) briefly, base vs trained.

    from train.grounded_demo import run
    result = run("runs/demo-grounded", quick=True)
    result["base_em"], result["trained_em"], result["flips"][:3]

Generates a small knowledge world (tasks.knowledge_world, fixed seed), builds its index,
trains recipe (a) (data/configs/sft-grounded-world.yaml: SFT with LoRA on grounded prompts,
targets "answer [n]" or "The passages do not say.") for a few steps, then answers the same
held-out test questions with the base model and the trained one -- the same grounded
prompts (tasks.rag_qa, retrieve mode), greedy -- and returns EM (abstention counts as right on
unanswerable questions) and the per-question flips. `quick` trades steps and questions for time.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CONFIG = Path(__file__).resolve().parent.parent / "data" / "configs" / "sft-grounded-world.yaml"


def run(out_dir: str | Path, quick: bool = True, *, model: str = "SmolLM2-135M-Instruct") -> dict[str, Any]:
    """Train recipe (a) on a tiny world under `out_dir`; return base vs trained EM and flips."""
    import time

    import tasks
    from tasks.knowledge_world import WorldConfig, generate, write_world
    from train.generate import generate as sample
    from train.trainers import run as train_run

    t0 = time.perf_counter()
    out = Path(out_dir)
    world = out / "world"
    if not (world / "questions.jsonl").exists():
        write_world(generate(WorldConfig(seed=0, docs=300 if quick else 1500, questions=400 if quick else 3000)),
                    world, force=True)
    types = "single,comparison,unanswerable"
    steps, n_test = (30, 24) if quick else (80, 100)
    run_dir = out / "sft"
    overrides = [f"model.name={model}", f"data.source=world:{world}:retrieve:k=3:types={types}",
                 f"sft.max_steps={steps}", "sft.save_steps=1000", "time_limit_minutes=null"]
    if not (run_dir / "model").exists():
        train_run("sft", CONFIG, out=run_dir, overrides=overrides, fresh=True)
    task = tasks.get_task(f"world:{world}:test:retrieve:k=3:types={types}")
    rows = task.load(limit=n_test)
    prompts = [task.prompt(r) for r in rows]

    def answer(path: str) -> list[str]:
        from core.models import load_causal_lm

        mdl, tok = load_causal_lm(path, dtype="float32")
        return [o[0] for o in sample(mdl, tok, prompts, max_new_tokens=32, batch_size=8)]

    merged = run_dir / "merged"
    if not (merged / "config.json").exists():
        from train.export import export_merged

        export_merged(run_dir / "model", merged)
    base = task.score(answer(model), rows)
    trained = task.score(answer(str(merged)), rows)
    flips = [{"question": r["question"], "answers": r["answers"], "type": r["type"], "base": b.extracted,
              "trained": t.extracted, "flip": "gained" if t.score and not b.score else "lost"}
             for r, b, t in zip(rows, base, trained) if bool(b.score) != bool(t.score)]
    mean = lambda xs: sum(x.score or 0.0 for x in xs) / max(1, len(xs))  # noqa: E731
    return {"base_em": round(mean(base), 4), "trained_em": round(mean(trained), 4), "n": len(rows),
            "flips": flips, "run_dir": str(run_dir), "seconds": round(time.perf_counter() - t0, 1)}
