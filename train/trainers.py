"""Config in, TRL trainer (or assay's PPO) built, run directory filled.

    summary = train.run("grpo", "data/configs/grpo-smoke.yaml", out="runs/grpo-smoke")

The layer is thin on purpose: the trainer's section of the config becomes TRL's own
config object, the model comes from the shared resolver (`core.models.resolve`), LoRA is a
`peft.LoraConfig` handed to the TRL trainer, assay's rewards are TRL reward functions.
What assay adds around it: device and precision picked for the machine (float32 on a CPU,
where TRL's bf16 default fails), held-out evaluation before/after, metrics.jsonl and
samples, atomic checkpoints, resume, a clean stop on Ctrl-C, plots and summary.json.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import shutil
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.config import ConfigError, from_dict, to_dict
from core.files import atomic_write_json
from train.config import TRAINERS, RunConfig, load_run_config, trl_config_class
from train.runs import RunDir


# ----------------------------------------------------------------------------- models
def model_path(name: str) -> str:
    """A loadable path for a model name: `toy:lucky` is built here, the rest resolved by core.models."""
    if name.startswith("toy:"):
        from train.toy import TASKS, toy_model

        if name[4:] not in TASKS:
            raise ConfigError(f"model.name {name!r}: unknown toy model; known: toy:{', toy:'.join(TASKS)}")
        return str(toy_model())
    from core.models import resolve

    return resolve(name)


def precision(dtype_name: str) -> tuple[Any, str, bool, bool]:
    """(torch dtype, device, bf16 flag, fp16 flag) for this machine; half precision on a CPU is refused."""
    import torch

    from core.models import pick_device, torch_dtype

    device = pick_device()
    dtype = torch_dtype(dtype_name, device)
    if device == "cpu":
        if dtype != torch.float32:
            raise ConfigError(f"model.dtype {dtype_name!r}: this machine trains on the CPU, in float32 only")
        return dtype, device, False, False
    bf16 = torch.cuda.is_bf16_supported()
    return dtype, device, bf16, not bf16


def load_model(cfg: RunConfig, *, head: str = "causal"):
    """(model, tokenizer) ready for a TRL trainer; `head="reward"` gives a 1-label classifier."""
    from core.models import load_pretrained

    dtype, _, _, _ = precision(cfg.model.dtype)
    return load_pretrained(model_path(cfg.model.name), dtype=dtype, head=head)


def lora_config(cfg: RunConfig, *, task_type: str = "CAUSAL_LM"):
    if not cfg.lora.enabled:
        return None
    from peft import LoraConfig

    lo = cfg.lora
    return LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout, target_modules=lo.target_modules,
                      modules_to_save=lo.modules_to_save, task_type=task_type)


def report_to(cfg: RunConfig) -> list[str]:
    if cfg.logging.report_to is not None:
        return list(cfg.logging.report_to)
    return [name for name in ("tensorboard", "trackio") if importlib.util.find_spec(name) is not None]


def trl_args(trainer: str, cfg: RunConfig, staging: Path, run: RunDir, *, has_eval: bool):
    """TRL's config object for `trainer`, from the trainer's section plus what assay manages."""
    kw = dict(getattr(cfg, trainer))
    _, device, bf16, fp16 = precision(cfg.model.dtype)
    if device == "cpu":
        for flag in ("bf16", "fp16"):
            if kw.get(flag):
                raise ConfigError(f"{trainer}.{flag}: mixed precision needs a GPU; on this CPU assay trains in float32")
        kw["bf16"] = kw["fp16"] = False
        kw["use_cpu"] = True
    else:
        kw.setdefault("bf16", bf16)
        kw.setdefault("fp16", fp16 and not kw["bf16"])
    if kw.get("use_vllm") and importlib.util.find_spec("vllm") is None:
        raise ConfigError(f"{trainer}.use_vllm: vLLM is not installed here (pip install 'assay[vllm]' on a GPU machine)")
    targets = report_to(cfg)
    kw.update(output_dir=str(staging), seed=cfg.seed, logging_steps=cfg.logging.steps, report_to=targets or "none")
    if "tensorboard" in targets:
        kw["logging_dir"] = str(run.path / "tensorboard")
    kw.setdefault("save_strategy", "steps")
    kw.setdefault("save_steps", 50)
    kw.setdefault("save_total_limit", 2)
    if "gradient_checkpointing" not in kw and "activation_checkpointing" not in kw:
        kw["activation_checkpointing"] = device != "cpu"  # on a CPU it costs time and saves little
    if has_eval and TRAINERS[trainer].eval_loss:
        kw.setdefault("eval_strategy", "steps")
        kw.setdefault("eval_steps", kw.get("save_steps", 50))
    if TRAINERS[trainer].trl_class == "GRPOTrainer":
        kw.setdefault("log_completions", False)  # assay writes its own samples.jsonl
    try:
        return trl_config_class(trainer)(**kw)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{trainer}: {exc}") from None


# --------------------------------------------------------------------------- run dirs
def default_out(trainer: str, config: str | Path | None) -> Path:
    stem = Path(config).stem if isinstance(config, (str, Path)) else trainer
    return Path("runs") / stem


def _seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _save_final(trainer, run: RunDir) -> Path | None:
    """trainer.save_model into a temporary sibling, then rename: run/model is whole or absent."""
    if not trainer.accelerator.is_main_process:
        trainer.save_model(str(run.path / ".model.tmp"))
        return None
    tmp = run.path / ".model.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    trainer.save_model(str(tmp))
    target = run.path / "model"
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def evaluate(model, tok, rows: list[dict], cfg: RunConfig) -> dict[str, Any]:
    """Greedy completions for held-out prompt rows, scored with the run's rewards."""
    from train.generate import generate
    from train.scoring import RewardSet

    t0 = time.perf_counter()
    outs = generate(model, tok, [r["prompt"] for r in rows], max_new_tokens=cfg.eval.max_new_tokens,
                    batch_size=cfg.eval.batch_size)
    completions = [o[0] for o in outs]
    totals, means = RewardSet(cfg.rewards, cfg.rewards_backend).score(completions, rows)
    return {"n": len(rows), "reward": sum(totals) / max(1, len(totals)),
            **{f"rewards/{k}": v for k, v in means.items()},
            "seconds": round(time.perf_counter() - t0, 2),
            "examples": [{"prompt": str(r.get("question", ""))[:200], "completion": c[:300]}
                         for r, c in zip(rows[:3], completions[:3])]}


def _curve_summary(run: RunDir, trainer: str) -> dict[str, Any]:
    # training steps only: not evaluations, nor TRL's end-of-training record (train_runtime, ...)
    rows = [r for r in run.metrics() if "train_runtime" not in r and not any(k.startswith("eval_") for k in r)]
    out: dict[str, Any] = {"logged_steps": len(rows)}

    def series(*names: str) -> list[float]:
        """Per record, the first of `names` it has (TRL runs log step_seconds, peak_mem_mb and
        reward_share; train.ppo step_time, peak_memory_mb and reward_time_share)."""
        values = []
        for r in rows:
            for n in names:
                if isinstance(r.get(n), (int, float)):
                    values.append(r[n])
                    break
        return values

    secs = series("step_seconds", "step_time")
    if secs:
        out["seconds_per_step"] = round(sum(secs) / len(secs), 4)
    mem = series("peak_mem_mb", "peak_memory_mb")
    if mem:
        out["peak_mem_mb"] = max(mem)
    key = TRAINERS[trainer].curve_key
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
    if vals:
        # 10 steps each, or half the steps when fewer than 20 ran: the windows never overlap
        n = min(10, max(1, len(vals) // 2))
        out[f"{key}_first10"] = sum(vals[:n]) / n
        out[f"{key}_last10"] = sum(vals[-n:]) / n
        out[f"{key}_window"] = n
    share = series("reward_share", "reward_time_share")
    if share:
        out["reward_share"] = round(sum(share) / len(share), 4)
    return out


# ------------------------------------------------------------------------------ runs
RUN_FILES = ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints")


def process_rank() -> int:
    """This process's rank when launched by torchrun / accelerate (RANK), else 0."""
    return int(os.environ.get("RANK", "0") or 0)


def is_run_dir(path: Path) -> bool:
    return any((path / name).exists() for name in RUN_FILES)


def _check_trainer_section(trainer: str, cfg: RunConfig) -> None:
    """Build the trainer's config object once, on a throwaway directory, so its own
    validation speaks before a model is loaded or a run directory is made."""
    import tempfile

    if TRAINERS[trainer].trl_class is None:
        from train.ppo import PPOConfig

        from_dict(PPOConfig, {**cfg.ppo, "seed": cfg.seed}, "ppo")
        return
    import warnings

    kw = dict(getattr(cfg, trainer))
    kw.update(bf16=False, fp16=False, use_cpu=True, report_to="none")
    if "gradient_checkpointing" not in kw and "activation_checkpointing" not in kw:
        kw["activation_checkpointing"] = False  # as trl_args decides it; no deprecation notice either way
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a throwaway object: its notices are the real run's to give
        try:
            args = trl_config_class(trainer)(output_dir=tmp, **kw)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{trainer}: {str(exc).splitlines()[0]}") from None
    # What TRL leaves to the optimizer or the first step to discover, minutes later.
    for name, low, strict in (("learning_rate", 0.0, True), ("per_device_train_batch_size", 1, False),
                              ("gradient_accumulation_steps", 1, False), ("num_train_epochs", 0.0, True)):
        value = getattr(args, name, None)
        if value is not None and (value < low or (strict and value == low)):
            raise ConfigError(f"{trainer}.{name}: must be {'>' if strict else '>='} {low:g}, got {value!r}")


def _claim_out(out: Path, *, resume: bool, fresh: bool) -> None:
    """An existing run is continued (--resume) or replaced as a whole (--fresh), never
    silently restarted with its metrics.jsonl appended to."""
    if resume and fresh:
        raise ConfigError("--resume continues a run and --fresh replaces it: give one of them")
    if resume:
        if not (out / "config.yaml").exists():
            raise ConfigError(f"--resume: {out} is not a run directory (no config.yaml)")
        return
    if not is_run_dir(out):
        return
    if not fresh:
        raise ConfigError(f"--out {out} already holds a training run: --resume continues it, "
                          f"--fresh replaces it (or choose another --out)")
    old = out.with_name(f".{out.name}.replaced-{os.getpid()}")
    os.replace(out, old)  # the old run disappears at once and whole
    shutil.rmtree(old, ignore_errors=True)


def run(trainer: str, config: str | Path | dict | RunConfig, *, out: str | Path | None = None,
        overrides: list[str] | None = None, resume: bool = False, fresh: bool = False,
        callbacks: list | None = None, progress: bool = False, imports: list[str] | None = None) -> dict[str, Any]:
    """Train; return the summary (also written to OUT/summary.json). An OUT that already
    holds a run needs `resume` (continue it) or `fresh` (replace it). `callbacks`: extra
    transformers TrainerCallbacks for the TRL trainers; `progress`: a line per logged step
    on stderr."""
    cfg = config if isinstance(config, RunConfig) else load_run_config(trainer, config, overrides)
    out = Path(out) if out else default_out(trainer, config if not isinstance(config, (dict, RunConfig)) else None)
    cfg.rewards_import = [*cfg.rewards_import, *(m for m in imports or [] if m not in cfg.rewards_import)]
    if cfg.rewards_import:
        from rewards.base import import_modules

        here = [Path(config).parent] if isinstance(config, (str, Path)) else []
        import_modules(cfg.rewards_import, search=here, what="rewards_import:")
    if cfg.rewards:
        from train.scoring import RewardSet

        RewardSet(cfg.rewards, cfg.rewards_backend)  # an unknown reward fails now, before a model is loaded or a file written
    _check_trainer_section(trainer, cfg)  # TRL's own checks (a negative learning rate...) before anything is written
    from train.data import check_source

    check_source(cfg.data)  # a missing data file is "no such file", and no run directory is left behind
    rank = process_rank()  # under torchrun/accelerate: only rank 0 writes the run directory
    if rank == 0:
        _claim_out(out, resume=resume, fresh=fresh)
    run_dir = RunDir(out, to_dict(cfg) if rank == 0 else None)
    _seed_everything(cfg.seed)
    t0 = time.perf_counter()
    with quiet():
        if TRAINERS[trainer].trl_class is None:
            summary = _run_ppo(cfg, run_dir, resume=resume, progress=progress)
        else:
            summary = _run_trl(trainer, cfg, run_dir, resume=resume, callbacks=callbacks or [], progress=progress)
    summary = {"trainer": trainer, "out": str(run_dir.path), "wall_seconds": round(time.perf_counter() - t0, 2),
               **summary, **_curve_summary(run_dir, trainer)}
    if rank != 0:
        return {**summary, "rank": rank}
    if cfg.logging.plot:
        plot = run_dir.plot(list(TRAINERS[trainer].plot_keys))
        if plot:
            summary["plot"] = str(plot)
    atomic_write_json(run_dir.path / "summary.json", summary)
    return summary


@contextmanager
def quiet():
    """While assay trains: no `datasets` progress bars (TRL's "Tokenizing train dataset"
    and co., one per preprocessing pass) and no FutureWarning about transformers'
    `is_gradient_checkpointing` (called by TRL, not by assay); both restored after."""
    import warnings

    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*is_gradient_checkpointing.* is deprecated",
                                    category=FutureWarning)
            yield
    finally:
        if bars:
            datasets.enable_progress_bars()


def _prepare_rows(trainer: str, cfg: RunConfig, tok) -> tuple[list[dict], list[dict]]:
    from train import data

    rows = data.load_rows(cfg.data)
    train_rows, held = data.split_rows(rows, cfg.data)
    if not train_rows:
        raise data.TrainingDataError(f"data.source {cfg.data.source!r} gave no training rows")
    shape = TRAINERS[trainer].rows
    if shape == "sft":
        return data.to_sft(train_rows, cfg.data, cfg.model, tok), held
    if shape == "preferences":
        return (data.to_preferences(train_rows, cfg.data, cfg.model, tok),
                data.to_preferences(held, cfg.data, cfg.model, tok) if held else [])
    return ground(data.to_prompts(train_rows, cfg.data, cfg.model, tok), cfg), \
        ground(data.to_prompts(held, cfg.data, cfg.model, tok), cfg)


def ground(rows: list[dict], cfg: RunConfig) -> list[dict]:
    """With retrieval.grounded_prompts: the top-k chunks in each prompt, and a `contexts` column."""
    if not (cfg.retrieval.grounded_prompts and rows):
        return rows
    from train.grounding import build_grounded_prompts

    return build_grounded_prompts(rows, cfg.retrieval.index, cfg.retrieval.k, cfg.retrieval.template)


def _truncate_metrics(run: RunDir, step: int) -> None:
    """On resume, drop records logged after the checkpoint: they are about to be redone."""
    from core.files import atomic_write_text

    for name in ("metrics.jsonl", "samples.jsonl"):
        path = run.path / name
        if not path.exists():
            continue
        keep = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:
                break
        atomic_write_text(path, "".join(line + "\n" for line in keep))


def _resume_point(run: RunDir, resume: bool) -> str | None:
    if not resume:
        return None
    last = run.last_checkpoint()
    if last is None:
        print(f"assay train: no checkpoint in {run.checkpoints}; starting from the beginning")
        return None
    state = last / "trainer_state.json"
    if not state.exists():
        raise ConfigError(f"--resume: {last} has no trainer_state.json; delete it to resume from an earlier one")
    if process_rank() == 0:
        _truncate_metrics(run, json.loads(state.read_text())["global_step"])
    return str(last)


def _no_log_printing(tr: Any) -> None:
    """transformers prints every log dict to stdout (PrinterCallback, or the progress
    bar's tqdm.write): noise that also breaks `--json`'s one object on stdout. assay's own
    callback already writes each step to metrics.jsonl; the progress bar stays."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    tr.remove_callback(PrinterCallback)
    for cb in tr.callback_handler.callbacks:
        if isinstance(cb, ProgressCallback):
            cb.on_log = lambda *args, **kwargs: None


def _run_trl(trainer: str, cfg: RunConfig, run: RunDir, *, resume: bool, callbacks: list,
             progress: bool = False) -> dict[str, Any]:
    from train import data
    from train.callbacks import AssayCallback, RewardRecorder, graceful_sigint

    spec = TRAINERS[trainer]
    model, tok = load_model(cfg, head=spec.head)
    train_rows, held_rows = _prepare_rows(trainer, cfg, tok)
    to_dataset = data.to_dataset
    staging = run.checkpoints / ".incoming"
    args = trl_args(trainer, cfg, staging, run, has_eval=bool(held_rows))
    peft = lora_config(cfg, task_type=spec.peft_task)
    recorder = RewardRecorder() if spec.rows == "prompts" else None
    callback = AssayCallback(run, recorder=recorder, samples=cfg.logging.samples, staging=staging,
                             keep=args.save_total_limit,
                             time_limit=cfg.time_limit_minutes * 60 if cfg.time_limit_minutes else None,
                             progress=progress, preflight_steps=cfg.grpo_preflight_steps if trainer == "grpo" else 0)
    summary: dict[str, Any] = {}
    resume_from = _resume_point(run, resume)

    evaluate_gen = spec.eval_generation and held_rows and cfg.rewards
    if evaluate_gen:
        eval_rows = held_rows if spec.rows == "prompts" else data.to_prompts(held_rows, cfg.data, cfg.model, tok)
        before_path = run.path / "eval_before.json"
        if cfg.eval.before and not before_path.exists() and process_rank() == 0:
            atomic_write_json(before_path, evaluate(model, tok, eval_rows, cfg))

    common = dict(args=args, train_dataset=to_dataset(train_rows), processing_class=tok, peft_config=peft,
                  callbacks=[callback, *callbacks])
    import trl

    kwargs: dict[str, Any] = {}
    if spec.rows == "prompts":  # GRPO: the rewards, and search in the loop when asked
        from train.scoring import RewardSet

        rset = RewardSet(cfg.rewards, cfg.rewards_backend)
        args.reward_weights = rset.weights
        tok.padding_side = "left"
        kwargs["reward_funcs"] = [recorder.wrap(f) for f in rset.trl_funcs()]
        if cfg.retrieval.search_in_loop:
            from train.rollouts import SearchConfig, make_search_rollout

            search = from_dict(SearchConfig, cfg.retrieval.search, "retrieval.search")
            kwargs["rollout_func"] = make_search_rollout(cfg.retrieval.index, search)
    elif held_rows:  # the held-out rows TRL evaluates the loss on, shaped like the training rows
        held = data.to_sft(held_rows, cfg.data, cfg.model, tok) if spec.rows == "sft" else held_rows
        kwargs["eval_dataset"] = to_dataset(held)
    tr = getattr(trl, spec.trl_class)(model=model, **common, **kwargs)

    _no_log_printing(tr)
    if held_rows and spec.eval_loss and resume_from is None:
        summary["eval_before"] = _clean(tr.evaluate())
    with graceful_sigint(callback):
        tr.train(resume_from_checkpoint=resume_from)
    summary.update(callback.summary)
    if callback.stop_requested:
        last = run.last_checkpoint()
        summary["checkpoint"] = str(last) if last else None
        return summary
    final = _save_final(tr, run)
    if final:
        summary["model"] = str(final)
    if held_rows and spec.eval_loss:
        summary["eval_after"] = _clean(tr.evaluate())
    if evaluate_gen and process_rank() == 0:
        after = evaluate(tr.model, tok, eval_rows, cfg)
        atomic_write_json(run.path / "eval_after.json", after)
        before = json.loads((run.path / "eval_before.json").read_text()) if (run.path / "eval_before.json").exists() else None
        summary["heldout_reward_before"] = before["reward"] if before else None
        summary["heldout_reward_after"] = after["reward"]
        for label, ev in (("before", before), ("after", after)):  # per reward: math is the accuracy
            if ev:
                summary[f"heldout_{label}"] = {k: v for k, v in ev.items() if k.startswith("rewards/")}
    return summary


def _clean(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if isinstance(v, (int, float, str)) or v is None}


def _run_ppo(cfg: RunConfig, run: RunDir, *, resume: bool, progress: bool = False) -> dict[str, Any]:
    import sys

    from train import data
    from train.ppo import PPOConfig, train_ppo
    from train.runs import progress_line
    from train.scoring import RewardSet

    ppo_cfg = from_dict(PPOConfig, {**cfg.ppo, "seed": cfg.seed}, "ppo")
    if progress:
        run.on_log = lambda record: print(progress_line(record, ppo_cfg.steps), file=sys.stderr, flush=True)
    path = model_path(cfg.model.name)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(path)
    rows = data.load_rows(cfg.data)
    train_rows, held = data.split_rows(rows, cfg.data)
    prompts = ground(data.to_prompts(train_rows, cfg.data, cfg.model, tok), cfg)
    lora = None
    if cfg.lora.enabled:
        lo = cfg.lora
        lora = {"r": lo.r, "lora_alpha": lo.alpha, "lora_dropout": lo.dropout, "target_modules": lo.target_modules}
    reward_fn = RewardSet(cfg.rewards, cfg.rewards_backend).reward_fn() if cfg.rewards else None
    search = None
    if cfg.retrieval.search_in_loop:
        from train.rollouts import SearchConfig

        search = from_dict(SearchConfig, cfg.retrieval.search, "retrieval.search")
    result = train_ppo(path, prompts, reward_fn, ppo_cfg, run, lora=lora, resume=resume, reward_model=cfg.reward_model,
                       search=search, search_index=cfg.retrieval.index if search else None)
    return dict(result or {})


__all__ = ["run", "load_model", "model_path", "precision", "trl_args", "lora_config", "evaluate"]
