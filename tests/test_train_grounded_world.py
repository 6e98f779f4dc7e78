"""Recipe (a), SFT on grounded knowledge-world prompts, end to end on a tiny model built
from a config: the shipped config runs, the run directory is complete, the loss falls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains a real (tiny) model end to end

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from tasks.knowledge_world import WorldConfig, generate, write_world

    out = tmp_path_factory.mktemp("kw") / "world"
    write_world(generate(WorldConfig(seed=2, docs=150, questions=120)), out)
    return out


def test_recipe_a_trains_on_grounded_world_prompts(world, tiny_lm, tmp_path):
    from train.trainers import run

    out = tmp_path / "sft"
    summary = run("sft", CONFIGS / "sft-grounded-world.yaml", out=out, overrides=[
        f"model.name={tiny_lm}", f"data.source=world:{world}:retrieve:k=2:types=single,comparison,unanswerable",
        "sft.max_steps=12", "sft.save_steps=6", "sft.warmup_steps=0", "sft.learning_rate=3.0e-3",
        "time_limit_minutes=null", "logging.plot=true"])
    assert summary["global_step"] == 12
    for name in ("config.yaml", "metrics.jsonl", "summary.json", "curves.png"):
        assert (out / name).exists(), name
    assert (out / "model" / "adapter_config.json").exists()  # LoRA, as the recipe says
    losses = [r["loss"] for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]
    assert len(losses) == 12
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3, losses
    # the rows it trained on are the task's: grounded prompts whose targets cite a passage
    import tasks

    task = tasks.get_task(f"world:{world}:train:retrieve:k=2:types=single,comparison,unanswerable")
    targets = [task.target(r) for r in task.load()]
    assert any(t.endswith("]") for t in targets) and "The passages do not say." in targets


def test_world_recipes_are_valid_configs():
    from train.config import load_run_config

    for trainer, name in (("sft", "sft-grounded-world.yaml"), ("grpo", "grpo-grounded-world.yaml"),
                          ("grpo", "grpo-search-world.yaml")):
        cfg = load_run_config(trainer, CONFIGS / name)
        assert cfg.data.source.startswith("world:") and cfg.lora.enabled
    search = load_run_config("grpo", CONFIGS / "grpo-search-world.yaml")
    assert search.retrieval.search_in_loop and not search.retrieval.search.get("instructions")
