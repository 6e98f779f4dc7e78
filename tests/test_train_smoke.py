"""Smoke runs on the CPU with fixed seeds: the toy task (train/toy.py) on the tiny toy model.

GRPO must learn it (mean reward of the last 10 steps >= 2x the first 10), DPO must prefer
the right answer on held-out pairs (accuracy >= 0.9), SFT and the reward model must train;
runs write the run directory, resume, stop cleanly on SIGINT, and LoRA adapters export.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from train.trainers import run

pytestmark = pytest.mark.slow  # trains or runs a real model end to end (the fast loop: -m 'not slow')

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"


def _metrics(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def grpo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo") / "run"
    return out, run("grpo", CONFIGS / "grpo-smoke.yaml", out=out)


def test_grpo_learns_the_toy_task(grpo_run):
    out, summary = grpo_run
    rows = [r for r in _metrics(out) if "reward" in r]
    assert len(rows) == 30
    first = sum(r["reward"] for r in rows[:10]) / 10
    last = sum(r["reward"] for r in rows[-10:]) / 10
    assert last >= 2 * first, (first, last, [round(r["reward"], 2) for r in rows])
    assert summary["heldout_reward_after"] > summary["heldout_reward_before"]


def test_grpo_run_directory_and_logging(grpo_run):
    out, summary = grpo_run
    rows = [r for r in _metrics(out) if "reward" in r]
    for key in ("step", "loss", "reward", "rewards/math/mean", "rewards/math/std", "frac_reward_zero_std", "kl",
                "entropy", "clip_ratio/region_mean", "completions/mean_length", "step_seconds", "reward_seconds",
                "reward_share", "peak_mem_mb"):
        assert key in rows[-1], key
    assert [r["step"] for r in rows] == list(range(1, 31))
    # reward scoring is a small share of a step (target <= 5%)
    assert summary["reward_share"] <= 0.05, summary["reward_share"]
    samples = [json.loads(line) for line in (out / "samples.jsonl").read_text().splitlines()]
    assert samples and {"step", "prompt", "completion", "rewards"} <= set(samples[0])
    assert (out / "config.yaml").exists() and (out / "curves.png").stat().st_size > 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith(".")) == \
        ["step-000020", "step-000030"]  # save_total_limit 2
    assert (out / "model" / "model.safetensors").exists()
    assert json.loads((out / "summary.json").read_text())["global_step"] == 30


def test_dpo_preference_accuracy_on_held_out_pairs(tmp_path, capsys):
    summary = run("dpo", CONFIGS / "dpo-smoke.yaml", out=tmp_path / "dpo")
    # transformers' log printing is off: stdout stays free for `--json`'s one object
    assert "'loss'" not in capsys.readouterr().out
    assert summary["eval_before"]["eval_rewards/accuracies"] < 0.5  # policy == reference: no preference yet
    assert summary["eval_after"]["eval_rewards/accuracies"] >= 0.9, summary["eval_after"]
    assert any("loss" in r for r in _metrics(tmp_path / "dpo"))


def test_reward_model_learns_the_pairs(tmp_path):
    summary = run("reward", CONFIGS / "reward-smoke.yaml", out=tmp_path / "rm")
    assert summary["eval_after"]["eval_accuracy"] >= 0.9, summary["eval_after"]
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm" / "model")
    assert model.config.num_labels == 1


def test_sft_trains_resumes_and_metrics_stay_consistent(tmp_path):
    out = tmp_path / "sft"
    sets = ["sft.max_steps=4", "sft.save_steps=2", "data.eval_size=0", "logging.plot=false"]
    first = run("sft", CONFIGS / "sft-smoke.yaml", out=out, overrides=sets)
    losses = [r["loss"] for r in _metrics(out) if "loss" in r]
    assert first["global_step"] == 4 and losses[-1] < losses[0]
    # Resume from the last checkpoint (step 4) and continue to step 6.
    resumed = run("sft", CONFIGS / "sft-smoke.yaml", out=out, overrides=["sft.max_steps=6", *sets[1:]], resume=True)
    assert resumed["global_step"] == 6
    steps = [r["step"] for r in _metrics(out) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]


def test_sigint_saves_a_checkpoint_and_stops(tmp_path):
    from transformers import TrainerCallback

    class CtrlC(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw):
            if state.global_step == 2:  # during step 3
                os.kill(os.getpid(), signal.SIGINT)  # the real signal, through assay's handler

    out = tmp_path / "sig"
    summary = run("sft", CONFIGS / "sft-smoke.yaml", out=out, callbacks=[CtrlC()],
                  overrides=["sft.max_steps=50", "sft.save_steps=100", "data.eval_size=0", "logging.plot=false"])
    assert summary["interrupted"] is True and summary["global_step"] == 3  # step 3 finishes, then it stops
    assert summary["checkpoint"].endswith("step-000003")
    assert (Path(summary["checkpoint"]) / "trainer_state.json").exists()
    assert not (out / "model").exists()  # a stopped run keeps its checkpoint, not a final model
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_lora_adapter_exports_to_a_plain_model(tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from train.export import export_merged

    out = tmp_path / "lora"
    run("sft", CONFIGS / "sft-smoke.yaml", out=out,
        overrides=["sft.max_steps=2", "sft.save_strategy=no", "data.eval_size=0", "lora.enabled=true", "lora.r=4",
                   "logging.plot=false"])
    adapter = out / "model"
    assert (adapter / "adapter_config.json").exists()
    merged = export_merged(adapter, tmp_path / "merged")
    assert not (merged / "adapter_config.json").exists()
    plain = AutoModelForCausalLM.from_pretrained(merged)
    base_path = json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"]
    with_adapter = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base_path), adapter)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        assert torch.allclose(plain(ids).logits, with_adapter(ids).logits, atol=1e-4)


