"""Run configs: every shipped config loads; mistakes are ConfigErrors naming file and key;
device/precision, vLLM and accelerate settings are checked at the config level (no GPU here)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from core.config import ConfigError
from train.config import RunConfig, load_run_config
from train.runs import RunDir

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"
TRAINERS = ("sft", "dpo", "grpo", "ppo", "reward")


def _trainer_of(path: Path) -> str:
    return path.stem.split("-")[0]


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path):
    if "stages" in yaml.safe_load(path.read_text()):  # a pipeline (assay pipeline run): its own loader
        from recipes.pipeline import load_pipeline

        assert load_pipeline(path).stages
        return
    trainer = _trainer_of(path)
    assert trainer in TRAINERS, f"{path.name}: name it <trainer>-<what>.yaml"
    cfg = load_run_config(trainer, path)
    assert isinstance(cfg, RunConfig) and cfg.data.source


def test_every_trainer_has_a_shipped_config():
    have = {_trainer_of(p) for p in CONFIGS.glob("*.yaml") if "stages" not in yaml.safe_load(p.read_text())}
    assert set(TRAINERS) <= have
    assert (CONFIGS / "grpo-smoke.yaml").exists()


def _write(tmp_path, data: dict) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


BASE = {"data": {"source": "toy:lucky"}, "rewards": [{"name": "math"}]}


def test_unknown_top_level_key_names_file_and_suggests(tmp_path):
    path = _write(tmp_path, {**BASE, "modle": {"name": "x"}})
    with pytest.raises(ConfigError, match=r"run\.yaml.*unknown key 'modle'.*did you mean 'model'"):
        load_run_config("grpo", path)


def test_unknown_trainer_key_is_checked_against_trl(tmp_path):
    path = _write(tmp_path, {**BASE, "grpo": {"learning_rat": 1e-5}})
    with pytest.raises(ConfigError, match=r"unknown key 'learning_rat' for GRPOConfig.*'learning_rate'"):
        load_run_config("grpo", path)


def test_wrong_types_are_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"grpo\.max_steps: expected an integer"):
        load_run_config("grpo", _write(tmp_path, {**BASE, "grpo": {"max_steps": "many"}}))
    with pytest.raises(ConfigError, match=r"lora\.r: expected an integer"):
        load_run_config("grpo", _write(tmp_path, {**BASE, "lora": {"r": "big"}}))
    with pytest.raises(ConfigError, match=r"rewards\[0\]\.weight: expected a number"):
        load_run_config("grpo", _write(tmp_path, {**BASE, "rewards": [{"name": "math", "weight": "heavy"}]}))


def test_missing_file_and_missing_pieces(tmp_path):
    with pytest.raises(ConfigError, match="no such config file"):
        load_run_config("sft", tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="data.source is required"):
        load_run_config("sft", _write(tmp_path, {"model": {"name": "x"}}))
    with pytest.raises(ConfigError, match="needs at least one entry under 'rewards'"):
        load_run_config("grpo", _write(tmp_path, {"data": {"source": "gsm8k"}}))
    with pytest.raises(ConfigError, match="section 'dpo' is for `assay train dpo`"):
        load_run_config("grpo", _write(tmp_path, {**BASE, "dpo": {"beta": 0.1}}))
    with pytest.raises(ConfigError, match="retrieval.index is required"):
        load_run_config("grpo", _write(tmp_path, {**BASE, "retrieval": {"grounded_prompts": True}}))


def test_keys_assay_manages_point_elsewhere(tmp_path):
    with pytest.raises(ConfigError, match=r"grpo\.output_dir: set by assay; use '--out'"):
        load_run_config("grpo", _write(tmp_path, {**BASE, "grpo": {"output_dir": "x"}}))
    with pytest.raises(ConfigError, match=r"grpo\.seed: set by assay; use 'seed'"):
        load_run_config("grpo", _write(tmp_path, {**BASE, "grpo": {"seed": 3}}))


def test_overrides_reach_nested_and_trainer_keys():
    cfg = load_run_config("grpo", CONFIGS / "grpo-smoke.yaml",
                          ["grpo.max_steps=3", "lora.enabled=true", "rewards=[{name: format, weight: 0.5}]"])
    assert cfg.grpo["max_steps"] == 3 and cfg.lora.enabled
    assert [(r.name, r.weight) for r in cfg.rewards] == [("format", 0.5)]


def test_yaml_no_is_a_strategy_not_a_boolean(tmp_path):
    cfg = load_run_config("sft", _write(tmp_path, {"data": {"source": "gsm8k"}, "sft": {"save_strategy": False}}))
    assert cfg.sft["save_strategy"] == "no"
    cfg = load_run_config("grpo", _write(tmp_path, {**BASE, "grpo": {"use_vllm": False}}))
    assert cfg.grpo["use_vllm"] is False


def test_dpo_loss_variants_and_grpo_loss_types_pass_through():
    cfg = load_run_config("dpo", CONFIGS / "dpo-smoke.yaml", ["dpo.loss_type=[ipo]"])
    assert cfg.dpo["loss_type"] == ["ipo"]
    cfg = load_run_config("grpo", CONFIGS / "grpo-smoke.yaml", ["grpo.loss_type=dr_grpo"])
    assert cfg.grpo["loss_type"] == "dr_grpo"


def test_cpu_precision_never_bf16(tmp_path):
    from train.trainers import trl_args

    cfg = load_run_config("grpo", CONFIGS / "grpo-smoke.yaml")
    run = RunDir(tmp_path / "run")
    args = trl_args("grpo", cfg, tmp_path / "stage", run, has_eval=False)
    assert args.bf16 is False and args.fp16 is False  # TRL's own default is bf16=True
    assert args.report_to in ([], ["none"], "none")  # nothing installed here; metrics.jsonl is assay's own
    cfg = load_run_config("grpo", CONFIGS / "grpo-smoke.yaml", ["grpo.bf16=true"])
    with pytest.raises(ConfigError, match="mixed precision needs a GPU"):
        trl_args("grpo", cfg, tmp_path / "stage", run, has_eval=False)
    cfg = load_run_config("grpo", CONFIGS / "grpo-smoke.yaml", ["model.dtype=bfloat16"])
    with pytest.raises(ConfigError, match="float32 only"):
        trl_args("grpo", cfg, tmp_path / "stage", run, has_eval=False)


def test_vllm_switch_is_wired(tmp_path, monkeypatch):
    """use_vllm reaches GRPOConfig where vLLM is installed, and is a clear error where it is not."""
    import importlib.util

    from train import trainers

    cfg = load_run_config("grpo", CONFIGS / "grpo-smoke.yaml", ["grpo.use_vllm=true", "grpo.vllm_mode=colocate"])
    run = RunDir(tmp_path / "run")
    if importlib.util.find_spec("vllm") is None:
        with pytest.raises(ConfigError, match="vLLM is not installed"):
            trainers.trl_args("grpo", cfg, tmp_path / "stage", run, has_eval=False)
        real = importlib.util.find_spec
        monkeypatch.setattr(trainers.importlib.util, "find_spec",
                            lambda name, *a: object() if name == "vllm" else real(name, *a))
    args = trainers.trl_args("grpo", cfg, tmp_path / "stage", run, has_eval=False)
    assert args.use_vllm is True and args.vllm_mode == "colocate"


@pytest.mark.parametrize("path", sorted((CONFIGS / "accelerate").glob("*.yaml")), ids=lambda p: p.name)
def test_accelerate_configs_are_valid(path):
    """Each multi-GPU config is one accelerate itself accepts (`accelerate launch --config_file`)."""
    from accelerate.commands.config.config_args import ClusterConfig

    cfg = ClusterConfig.from_yaml_file(str(path))
    assert str(cfg.distributed_type).split(".")[-1] in ("MULTI_GPU", "DEEPSPEED", "FSDP")
    assert cfg.mixed_precision == "bf16" and cfg.num_processes >= 1
    if "deepspeed" in path.name:
        assert cfg.deepspeed_config["zero_stage"] in (2, 3)


def test_cli_parses_train_and_prefs():
    from assay.cli import build_parser

    p = build_parser()
    a = p.parse_args(["train", "grpo", "--config", "c.yaml", "--set", "grpo.max_steps=2", "--set", "seed=1",
                      "--out", "o", "--resume"])
    assert (a.trainer, a.config, a.overrides, a.out, a.resume) == ("grpo", "c.yaml", ["grpo.max_steps=2", "seed=1"], "o", True)
    a = p.parse_args(["train", "export", "--adapter", "a", "--out", "b"])
    assert a.adapter == "a"
    a = p.parse_args(["data", "prefs", "--model", "m", "--data", "gsm8k", "--k", "3", "--out", "x.jsonl"])
    assert a.k == 3 and a.data == "gsm8k"


def test_cli_config_error_is_one_line_exit_2(tmp_path, capsys):
    from assay.cli import main

    path = _write(tmp_path, {**BASE, "grpo": {"num_generatoins": 4}})
    assert main(["train", "grpo", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'num_generatoins'" in err and "num_generations" in err and "Traceback" not in err


def test_dataset_accepts_a_field_that_is_a_list_in_some_rows_only():
    from train.data import to_dataset

    ds = to_dataset([{"q": "a", "answer": "Mercury"}, {"q": "b", "answer": ["Tim Berners-Lee", "Berners-Lee"]}])
    assert ds[0]["answer"] == ["Mercury"] and ds[1]["answer"] == ["Tim Berners-Lee", "Berners-Lee"]


def test_grpo_preflight_stops_a_run_that_cannot_learn(tmp_path):
    """The check reads what TRL logs: five steps of all-truncated completions, or of groups
    with equal rewards, stop the run with the setting to change."""
    from train.callbacks import AssayCallback, PreflightError
    from train.runs import RunDir

    def callback():
        return AssayCallback(RunDir(tmp_path / "run", {}), preflight_steps=5)

    cut = {"frac_reward_zero_std": 0.5, "completions/clipped_ratio": 1.0, "completions/mean_length": 16.0}
    cb = callback()
    for _ in range(4):
        cb._check_preflight(cut)
    with pytest.raises(PreflightError, match="raise grpo.max_completion_length"):
        cb._check_preflight(cut)
    flat = {"frac_reward_zero_std": 1.0, "completions/clipped_ratio": 0.2, "reward": 0.0}
    cb = callback()
    for _ in range(4):
        cb._check_preflight(flat)
    with pytest.raises(PreflightError, match="equal rewards"):
        cb._check_preflight(flat)
    cb = callback()  # one learning step among the five is enough
    for r in (flat, flat, {**flat, "frac_reward_zero_std": 0.5}, flat, flat):
        cb._check_preflight(r)


def test_a_missing_data_file_is_no_such_file_and_leaves_no_run(tmp_path, capsys):
    from assay.cli import main

    path = _write(tmp_path, {**BASE, "data": {"source": "runs/nowhere/sft.jsonl"}})
    out = tmp_path / "run"
    assert main(["train", "grpo", "--config", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "runs/nowhere/sft.jsonl: no such file" in err and "hub" not in err and "Traceback" not in err
    assert not out.exists()
