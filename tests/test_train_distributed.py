"""Training across processes on the CPU: `torchrun --standalone --nproc_per_node 2` (gloo,
`use_cpu`) runs SFT and GRPO on the tiny toy model. Both ranks run, each rank scores its
own completions, rank 0 alone writes the run directory (one checkpoint per save, written
once, with both ranks' RNG states), resume continues it, and the 2-process loss curve is
the 1-process one on the same global batch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each run starts two torch processes (~20-40 s)

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def _train(launcher: list[str], trainer: str, out: Path, *sets: str, extra: tuple[str, ...] = (), env=None):
    cmd = [*launcher, "-m", "assay", "train", trainer, "--config", str(CONFIGS / f"{trainer}-smoke.yaml"),
           "--out", str(out), "--json", *extra]
    for s in sets:
        cmd += ["--set", s]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env={**os.environ, **(env or {})})
    assert res.returncode == 0, res.stderr[-4000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def _losses(out: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "loss" in r]


def _checkpoints(out: Path) -> list[str]:
    # (.incoming, the trainer's staging folder, keeps TRL's model card: as in a 1-process run)
    return sorted(p.name for p in (out / "checkpoints").iterdir() if not p.name.startswith("."))


SFT = ["sft.max_steps=4", "sft.save_steps=2", "data.eval_size=0", "logging.plot=false", "sft.use_cpu=true"]


def test_sft_two_processes_one_run_directory_resume_and_the_same_loss_curve(tmp_path):
    two = tmp_path / "two"
    summaries = _train(TORCHRUN, "sft", two, *SFT, "sft.per_device_train_batch_size=8")
    assert sorted(s.get("rank", 0) for s in summaries) == [0, 1]  # both ranks ran to the end
    assert all(s["global_step"] == 4 for s in summaries)
    steps = _checkpoints(two)
    assert steps == ["step-000002", "step-000004"]  # once each
    for step in steps:
        names = {p.name for p in (two / "checkpoints" / step).iterdir()}
        assert {"model.safetensors", "optimizer.pt", "trainer_state.json", "rng_state_0.pth", "rng_state_1.pth"} <= names
    assert (two / "model" / "model.safetensors").exists() and (two / "summary.json").exists()
    assert [s for s, _ in _losses(two)] == [1, 2, 3, 4]  # logged once, by rank 0

    one = tmp_path / "one"
    _train([sys.executable], "sft", one, *SFT, "sft.per_device_train_batch_size=16")  # the same global batch
    a, b = _losses(one), _losses(two)
    print("\nSFT loss 1 process :", [round(x, 4) for _, x in a], "\nSFT loss 2 processes:", [round(x, 4) for _, x in b])
    assert [s for s, _ in a] == [s for s, _ in b]
    assert all(abs(x - y) <= 1e-3 * max(1.0, abs(x)) for (_, x), (_, y) in zip(a, b))

    _train(TORCHRUN, "sft", two, *["sft.max_steps=6", *SFT[1:]], "sft.per_device_train_batch_size=8", extra=("--resume",))
    assert [s for s, _ in _losses(two)] == [1, 2, 3, 4, 5, 6]
    assert _checkpoints(two)[-1] == "step-000006"


PROBE = '''
import os
from rewards.base import RewardResult, register

@register("rank_probe")
def rank_probe(completions, rows, **_):
    with open(os.environ["PROBE_FILE"], "a") as fh:
        fh.write(f"{os.environ.get('RANK', '0')} {len(completions)}\\n")
    return [RewardResult(1.0 if "7" in c else 0.0, "probe") for c in completions]
'''


def test_grpo_two_processes_score_rewards_per_rank(tmp_path):
    (tmp_path / "probe_reward.py").write_text(PROBE)
    probe = tmp_path / "probe.txt"
    out = tmp_path / "grpo"
    summaries = _train(TORCHRUN, "grpo", out, "grpo.max_steps=4", "grpo.save_steps=2", "grpo.per_device_train_batch_size=4",
                       "grpo.use_cpu=true", "data.eval_size=0", "logging.plot=false",
                       f'rewards_import=["{tmp_path / "probe_reward.py"}"]',
                       'rewards=[{"name": "math", "options": {"lenient": true}}, {"name": "rank_probe", "weight": 0.0}]',
                       env={"PROBE_FILE": str(probe)})
    assert sorted(s.get("rank", 0) for s in summaries) == [0, 1]
    calls = [tuple(map(int, line.split())) for line in probe.read_text().splitlines()]
    # 4 steps x 8 completions per global batch: each rank scores its own 4 per step
    assert sorted(calls) == [(0, 4)] * 4 + [(1, 4)] * 4
    assert _checkpoints(out) == ["step-000002", "step-000004"]
    rows = [r for r in map(json.loads, (out / "metrics.jsonl").read_text().splitlines()) if "reward" in r]
    assert [r["step"] for r in rows] == [1, 2, 3, 4]


def test_vllm_server_recipe_config():
    """The GRPO vLLM server-mode recipe is a valid config (vLLM itself needs a GPU)."""
    from train.config import load_run_config

    cfg = load_run_config("grpo", CONFIGS / "grpo-vllm-server.yaml")
    assert cfg.grpo["use_vllm"] is True and cfg.grpo["vllm_mode"] == "server"
    assert cfg.grpo["vllm_server_base_url"].startswith("http://")
    import trl

    from train.config import trl_config_class

    assert trl_config_class("grpo") is trl.GRPOConfig
    fields = set(trl.GRPOConfig.__dataclass_fields__)
    assert {"use_vllm", "vllm_mode", "vllm_server_base_url"} <= fields
