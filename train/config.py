"""One YAML (or TOML) file per training run, mapped onto `RunConfig`.

    model:     {name: SmolLM2-135M-Instruct, dtype: auto}
    data:      {source: "reasoning_gym:basic_arithmetic", options: {size: 500}, eval_size: 50}
    rewards:   [{name: math, weight: 1.0, options: {lenient: true}}, {name: format, weight: 0.2}]
    rewards_import: [my_rewards]      # modules that register rewards of your own
    retrieval: {index: runs/index, k: 3, grounded_prompts: true}
    lora:      {enabled: true, r: 16}
    logging:   {steps: 1, samples: 4}
    grpo:      {learning_rate: 1.0e-5, num_generations: 8, loss_type: dapo, max_steps: 200}

The algorithm section is named after the trainer (`sft`, `dpo`, `grpo`, `reward`, `ppo`).
For the TRL trainers it holds keyword arguments of TRL's own config class (`GRPOConfig`,
`DPOConfig`, ...), checked key by key against that class, so every TRL option (loss types,
vLLM, DeepSpeed, ...) is reachable without assay re-declaring it. For `ppo` it holds
`train.ppo.PPOConfig` fields. Errors (unknown key with the closest known one, wrong type,
missing file) are `core.config.ConfigError`s naming the file and key.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import ConfigError, check_value, load_config, to_dict


@dataclass(frozen=True)
class TrainerSpec:
    """What differs between trainers, in one place: config checks and `train.trainers.run`
    look a trainer up here instead of comparing its name in a dozen places."""

    name: str
    rows: str  # how rows are shaped: "sft" (prompt/completion), "preferences", "prompts" (RL)
    head: str = "causal"  # "reward": a one-label classifier head on the same weights
    eval_loss: bool = False  # TRL's evaluate() on the held-out rows, before and after
    eval_generation: bool = False  # generate on held-out prompts and score them with the rewards
    plot_keys: tuple[str, ...] = ("loss", "eval_loss", "rewards/accuracies", "accuracy")
    curve_key: str = "loss"  # what "first 10 / last 10" in the summary is about
    trl_class: str | None = None  # the TRL trainer; None: assay's own runner (PPO)

    @property
    def peft_task(self) -> str:
        return "SEQ_CLS" if self.head == "reward" else "CAUSAL_LM"


TRAINERS: dict[str, TrainerSpec] = {t.name: t for t in (
    TrainerSpec("sft", rows="sft", eval_loss=True, eval_generation=True, trl_class="SFTTrainer"),
    TrainerSpec("dpo", rows="preferences", eval_loss=True, trl_class="DPOTrainer"),
    TrainerSpec("reward", rows="preferences", head="reward", eval_loss=True, trl_class="RewardTrainer"),
    TrainerSpec("grpo", rows="prompts", eval_generation=True, plot_keys=("reward", "kl"), curve_key="reward",
                trl_class="GRPOTrainer"),
    TrainerSpec("ppo", rows="prompts", plot_keys=("reward", "kl"), curve_key="reward"),
)}
RL_TRAINERS = tuple(name for name, spec in TRAINERS.items() if spec.rows == "prompts")


@dataclass
class ModelConfig:
    name: str = "SmolLM2-135M-Instruct"
    """Logical name (core.models), hub id or local path; `toy:lucky` builds the smoke-test model."""
    dtype: str = "auto"
    """auto (float32 on CPU, bfloat16 on a GPU that has it), float32, bfloat16 or float16."""
    chat: bool | None = None
    """Wrap prompts as chat messages; None: when the tokenizer has a chat template."""
    system: str | None = None
    """System message for chat prompts."""


@dataclass
class DataConfig:
    source: str = ""
    """A .jsonl/.json/.parquet file, a hub dataset id, or a built-in: `reasoning_gym:<task>`,
    `gsm8k`, `math500`, `humaneval`, `toy:lucky`."""
    split: str = "train"
    """Split of a hub dataset or of gsm8k (train/test); ignored where there is one."""
    options: dict[str, Any] = field(default_factory=dict)
    """Options of a built-in source (reasoning_gym: size, seed and the task's own settings)."""
    shared_dir: str | None = None
    """Where gsm8k/math500 live (default: `core.files.shared_data_root()`)."""
    skip: int = 0
    """Drop the source's first rows before anything else (e.g. the rows an eval suite holds out)."""
    limit: int | None = None
    """Use at most this many training rows (after the held-out rows are set aside)."""
    eval_size: int = 0
    """Rows held out (taken from the end) for evaluation before/after training."""
    template: str = "{question}"
    """Prompt text, formatted with the row's fields."""
    completion_template: str | None = None
    """SFT target, formatted with the row's fields (default: the row's `completion`/`answer`)."""
    repeat: dict[str, dict[str, int]] = field(default_factory=dict)
    """Repeat rows by the value of a field, e.g. {type: {unanswerable: 3}}: each unanswerable
    question appears three times (before shuffling), to teach a rare behaviour more often."""
    shuffle: bool = True
    seed: int = 0


@dataclass
class RewardConfig:
    name: str = ""
    """A registered assay reward (see `assay score --help`), or `module:function`."""
    weight: float = 1.0
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options for the reward (e.g. math: {lenient: true})."""


@dataclass
class RetrievalConfig:
    index: str | None = None
    """An assay index directory (built with `assay index`)."""
    k: int = 3
    """Chunks retrieved per question for grounded prompts."""
    grounded_prompts: bool = False
    """Put the top-k chunks, with citation markers, in each prompt (adds a `contexts` column)."""
    template: str | None = None
    """Grounded prompt template (train.grounding's default when None)."""
    search_in_loop: bool = False
    """GRPO: let the policy call <search>query</search> during its rollouts."""
    search: dict[str, Any] = field(default_factory=dict)
    """train.rollouts.SearchConfig fields (turns, k, ...)."""


@dataclass
class AdapterConfig:
    enabled: bool = False
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | str = "all-linear"
    modules_to_save: list[str] | None = None


@dataclass
class LoggingConfig:
    steps: int = 1
    """Log every this many optimizer steps."""
    samples: int = 4
    """Completions written to samples.jsonl at each log (RL trainers)."""
    report_to: list[str] | None = None
    """TRL/transformers integrations; None: tensorboard and trackio when installed.
    metrics.jsonl is always written."""
    plot: bool = True
    """PNG of the reward/KL (or loss) curves at the end."""


@dataclass
class EvalConfig:
    max_new_tokens: int = 64
    """Greedy generation length for the held-out accuracy check (RL and SFT)."""
    batch_size: int = 16
    before: bool = True
    """Also measure before training (the 'before' of before/after)."""


@dataclass
class RewardsBackendConfig:
    backend: str = "local"
    """Where the rewards run: local (this process's worker pool and sandbox) or ray (one
    reward host per node of a Ray cluster; see `rewards.ray_hosts`)."""
    address: str | None = None
    """The Ray cluster for backend ray (None: $RAY_ADDRESS, a running cluster, or a new local one)."""


@dataclass
class RunConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    rewards: list[RewardConfig] = field(default_factory=list)
    rewards_backend: RewardsBackendConfig = field(default_factory=RewardsBackendConfig)
    """`{backend: ray, address: ...}` scores the rewards on a Ray cluster's reward hosts."""
    rewards_import: list[str] = field(default_factory=list)
    """Modules that register rewards of your own (dotted names, looked up beside this config
    file and in the current directory, or .py paths); `assay train --import` adds to it."""
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    lora: AdapterConfig = field(default_factory=AdapterConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    seed: int = 0
    time_limit_minutes: float | None = None
    """Stop (saving a checkpoint, then evaluating as usual) once training has run this long."""
    grpo_preflight_steps: int = 5
    """GRPO: stop after this many logged steps when every completion hit the token budget or
    every group's rewards were equal (nothing to learn); 0 turns the check off."""
    reward_model: str | None = None
    """PPO: a sequence-classification reward model whose score is added to the rewards."""
    sft: dict[str, Any] = field(default_factory=dict)
    dpo: dict[str, Any] = field(default_factory=dict)
    grpo: dict[str, Any] = field(default_factory=dict)
    reward: dict[str, Any] = field(default_factory=dict)
    ppo: dict[str, Any] = field(default_factory=dict)


def trl_config_class(trainer: str) -> type:
    import trl

    return {"sft": trl.SFTConfig, "dpo": trl.DPOConfig, "grpo": trl.GRPOConfig, "reward": trl.RewardConfig}[trainer]


def section_class(trainer: str) -> type:
    """The dataclass the trainer's section maps onto."""
    if trainer == "ppo":
        from train.ppo import PPOConfig

        return PPOConfig
    return trl_config_class(trainer)


# Keys assay sets itself from other sections; a user value there would be silently replaced.
_MANAGED = {"output_dir", "logging_dir", "seed", "logging_steps", "report_to", "peft_config"}


def check_section(trainer: str, section: dict[str, Any], where: str) -> dict[str, Any]:
    """Check every key of a trainer section against its class: unknown keys and wrong types."""
    cls = section_class(trainer)
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls) if f.init}
    out = {}
    for key, value in section.items():
        if key in _MANAGED:
            other = {"seed": "seed", "logging_steps": "logging.steps", "report_to": "logging.report_to",
                     "peft_config": "lora"}.get(key, "--out")
            raise ConfigError(f"{where}.{key}: set by assay; use {other!r} instead")
        if key not in fields:
            close = difflib.get_close_matches(str(key), sorted(fields), n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {key!r} for {cls.__name__}{hint}")
        if isinstance(value, bool) and not _allows_bool(hints[key]):
            value = "yes" if value else "no"  # YAML 1.1 reads `save_strategy: no` as false
        out[key] = check_value(value, hints[key], f"{where}.{key}")
    return out


def _allows_bool(tp: Any) -> bool:
    if tp is bool or tp is Any:
        return True
    return any(_allows_bool(a) for a in typing.get_args(tp))


def load_run_config(trainer: str, source: str | Path | dict | None, overrides: list[str] | None = None) -> RunConfig:
    """Read and check a run config for `trainer`; every mistake is a ConfigError."""
    if trainer not in TRAINERS:
        raise ConfigError(f"unknown trainer {trainer!r}; one of {', '.join(TRAINERS)}")
    cfg: RunConfig = load_config(RunConfig, source, overrides)
    where = str(source) if isinstance(source, (str, Path)) else "config"
    for other in TRAINERS:
        if other != trainer and getattr(cfg, other):
            raise ConfigError(f"{where}: section {other!r} is for `assay train {other}`, not {trainer}")
    setattr(cfg, trainer, check_section(trainer, getattr(cfg, trainer), f"{where}: {trainer}"))
    if not cfg.data.source:
        raise ConfigError(f"{where}: data.source is required (a file, a hub id, or a built-in such as gsm8k)")
    if trainer in RL_TRAINERS and not cfg.rewards and not (trainer == "ppo" and cfg.reward_model):
        raise ConfigError(f"{where}: {trainer} needs at least one entry under 'rewards'")
    for key, counts in cfg.data.repeat.items():
        for value, times in counts.items():
            if times < 1:
                raise ConfigError(f"{where}: data.repeat.{key}.{value} must be a whole number >= 1, got {times}")
    for i, r in enumerate(cfg.rewards):
        if not r.name:
            raise ConfigError(f"{where}: rewards[{i}].name is required")
    if cfg.rewards_backend.backend not in ("local", "ray"):
        raise ConfigError(f"{where}: rewards_backend.backend must be 'local' or 'ray', not {cfg.rewards_backend.backend!r}")
    if cfg.retrieval.search_in_loop and trainer not in RL_TRAINERS:
        raise ConfigError(f"{where}: retrieval.search_in_loop is for the RL trainers (grpo, ppo)")
    if (cfg.retrieval.grounded_prompts or cfg.retrieval.search_in_loop) and not cfg.retrieval.index:
        raise ConfigError(f"{where}: retrieval.index is required for grounded prompts / search in the loop")
    return cfg


__all__ = [
    "ConfigError", "DataConfig", "EvalConfig", "LoggingConfig", "AdapterConfig", "ModelConfig", "RetrievalConfig",
    "RewardConfig", "RewardsBackendConfig", "RunConfig", "TRAINERS", "check_section", "load_run_config", "section_class", "to_dict",
    "trl_config_class",
]
