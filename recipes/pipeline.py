"""Multi-stage recipes as one resumable run: DeepSeek-R1's SFT -> RL -> rejection sampling -> SFT -> RL -> eval.

    assay pipeline run data/configs/r1-arith.yaml --out runs/r1-arith [--from STAGE]

A pipeline file names its stages in order. Each is one of assay's own steps, run through
its front door -- `sft`, `grpo`, `ppo`, `dpo` (`train.trainers.run` on a run config),
`sample` (`recipes.sampling.sample`) and `eval` (`eval.runner.run` on held-out items) --
and a later stage takes an earlier one's output by reference::

    stages:
      - {name: cold, kind: sft, config: sft-cold.yaml}
      - {name: rl, kind: grpo, config: grpo.yaml, set: {model.name: "${cold.model}"}}
      - {name: rs, kind: sample, sample: {task: gsm8k, model: "${rl.model}", k: 8}}
      - {name: sft2, kind: sft, config: sft.yaml, set: {data.source: "${rs.sft}"}}
      - {name: eval, kind: eval, eval: {task: gsm8k, models: {cold: "${cold.model}", rl: "${rl.model}"}}}

Outputs a reference may name: a training stage's ``model`` (a LoRA adapter is merged into a
plain model folder first, so any later stage loads it), a sample stage's ``sft``, ``pairs``
and ``dir``, an eval stage's ``dir``. References are checked before anything runs.

Resuming. Every stage writes ``stages/NAME/stage.json``: a fingerprint of what it was
given (its settings with references replaced by the fingerprints of the stages they name,
and the content of its config file), whether it finished, its outputs, wall and CPU
seconds. A rerun skips a finished stage whose fingerprint is unchanged, so editing one
stage redoes it and everything that depends on it, and nothing else; ``--from STAGE``
redoes that stage and all after it. A run killed inside a stage resumes there: a training
stage from its last checkpoint, a sample stage from the generation cache.

The run directory gets ``report.md``/``report.html`` (`recipes.report`): every eval stage's
models side by side with 95% bootstrap intervals, each sample stage's counts, each training
stage's curves, and the time and CPU seconds of every stage.
"""

from __future__ import annotations

import hashlib
import json
import re
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from core.config import ConfigError
from train.config import TRAINERS as _TRAINER_TABLE

TRAINERS = tuple(t for t in _TRAINER_TABLE if t != "reward")  # a stage trains a policy; a reward model is no stage yet
KINDS = (*TRAINERS, "sample", "eval")
OUTPUTS = {**{k: ("model",) for k in TRAINERS}, "sample": ("sft", "pairs", "dir"), "eval": ("dir",)}
_REF_RE = re.compile(r"\$\{([A-Za-z0-9_-]+)\.([A-Za-z0-9_]+)\}")


@dataclass
class EvalStageConfig:
    task: str = ""
    """The task or suite evaluated (held-out rows: the first `limit` after `offset`)."""
    models: dict[str, str] = field(default_factory=dict)
    """Label -> model (a name, a path, or a reference like ${sft.model}); evaluated side by side."""
    limit: int | None = 100
    samples: int = 4
    """Completions per item (mean@k, pass@k, maj@k)."""
    temperature: float = 0.8
    max_new_tokens: int | None = None
    """None: the task's own budget."""
    seed: int = 0
    batch_size: int = 16


@dataclass
class StageConfig:
    name: str = ""
    """Unique within the pipeline; what references name."""
    kind: str = ""
    """sft, grpo, ppo, dpo, sample or eval."""
    config: str | None = None
    """Training stages: a run config file (relative to the pipeline file)."""
    set: dict[str, Any] = field(default_factory=dict)
    """Training stages: `--set` overrides, dotted keys (values may be references)."""
    sample: dict[str, Any] = field(default_factory=dict)
    """Sample stages: `recipes.sampling.SampleConfig` fields (`filters:` a FilterConfig mapping)."""
    eval: EvalStageConfig = field(default_factory=EvalStageConfig)
    """Eval stages: what is evaluated, on which items."""


@dataclass
class PipelineConfig:
    name: str = ""
    description: str = ""
    stages: list[StageConfig] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.stages:
            raise ConfigError("a pipeline needs at least one stage")
        seen: dict[str, str] = {}
        for i, st in enumerate(self.stages):
            where = f"stages[{i}]"
            if not st.name or not re.fullmatch(r"[A-Za-z0-9_-]+", st.name):
                raise ConfigError(f"{where}: name must be letters, digits, _ or - (got {st.name!r})")
            if st.name in seen:
                raise ConfigError(f"{where}: stage name {st.name!r} is used twice")
            if st.kind not in KINDS:
                import difflib

                close = difflib.get_close_matches(st.kind, KINDS, n=1)
                raise ConfigError(f"{where} ({st.name}): kind {st.kind!r} is not one of {', '.join(KINDS)}"
                                  + (f"; did you mean {close[0]!r}?" if close else ""))
            if st.kind in TRAINERS and not st.config:
                raise ConfigError(f"{where} ({st.name}): a {st.kind} stage needs `config: FILE`")
            if st.kind == "sample" and not st.sample:
                raise ConfigError(f"{where} ({st.name}): a sample stage needs `sample: {{task: ..., model: ...}}`")
            if st.kind == "eval" and (not st.eval.task or not st.eval.models):
                raise ConfigError(f"{where} ({st.name}): an eval stage needs `eval: {{task: ..., models: {{label: model}}}}`")
            for ref_stage, ref_out in references(_settings(st)):
                if ref_stage not in seen:
                    later = any(s.name == ref_stage for s in self.stages)
                    raise ConfigError(f"{where} ({st.name}): ${{{ref_stage}.{ref_out}}} names "
                                      + ("a later stage" if later else f"no stage (stages before it: "
                                         f"{', '.join(seen) or 'none'})"))
                if ref_out not in OUTPUTS[seen[ref_stage]]:
                    raise ConfigError(f"{where} ({st.name}): a {seen[ref_stage]} stage has no output {ref_out!r} "
                                      f"(it has {', '.join(OUTPUTS[seen[ref_stage]])})")
            seen[st.name] = st.kind


def _settings(stage: StageConfig) -> dict[str, Any]:
    """What a stage is given, as plain data (the part references and fingerprints read)."""
    from core.config import to_dict

    if stage.kind in TRAINERS:
        return {"config": stage.config, "set": stage.set}
    return {"sample": stage.sample} if stage.kind == "sample" else {"eval": to_dict(stage.eval)}


def references(value: Any) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return _REF_RE.findall(value)
    if isinstance(value, dict):
        return [r for v in value.values() for r in references(v)]
    if isinstance(value, list):
        return [r for v in value for r in references(v)]
    return []


def resolve(value: Any, outputs: dict[str, dict[str, str]]) -> Any:
    """`value` with every ${stage.output} replaced by that stage's output."""
    if isinstance(value, str):
        return _REF_RE.sub(lambda m: str(outputs[m.group(1)][m.group(2)]), value)
    if isinstance(value, dict):
        return {k: resolve(v, outputs) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, outputs) for v in value]
    return value


def load_pipeline(path: str | Path) -> PipelineConfig:
    from core.config import load_config

    return load_config(PipelineConfig, path)


# ---- running -------------------------------------------------------------------------------

def _cpu_seconds() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def fingerprint(stage: StageConfig, base: Path, fingerprints: dict[str, str]) -> str:
    """What decides a stage's result: its settings (references by the fingerprint of the stage
    they name) and its config file's content."""
    settings = _settings(stage)
    marked = _REF_RE.sub(lambda m: f"<{fingerprints[m.group(1)]}.{m.group(2)}>", json.dumps(settings, sort_keys=True))
    h = hashlib.sha256(f"{stage.kind}\x00{marked}".encode())
    if stage.config:
        h.update((base / stage.config).read_bytes())
    return h.hexdigest()[:20]


class Pipeline:
    """One pipeline file run into one directory (module doc)."""

    def __init__(self, path: str | Path, out: str | Path, *, progress: bool = True, cache: Any = None,
                 data_root: str | None = None) -> None:
        self.path = Path(path)
        self.base = self.path.parent
        self.config = load_pipeline(self.path)
        for st in self.config.stages:
            if st.config and not (self.base / st.config).is_file():
                raise ConfigError(f"{self.path}: stage {st.name}: config {st.config} does not exist "
                                  f"(paths are relative to the pipeline file)")
        self.out = Path(out)
        self.progress, self.cache, self.data_root = progress, cache, data_root

    def stage_dir(self, name: str) -> Path:
        return self.out / "stages" / name

    def state(self, name: str) -> dict[str, Any] | None:
        path = self.stage_dir(name) / "stage.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None

    def _write_state(self, name: str, state: dict[str, Any]) -> None:
        from core.files import atomic_write_json

        atomic_write_json(self.stage_dir(name) / "stage.json", state)

    def run(self, *, redo_from: str | None = None) -> dict[str, Any]:
        names = [s.name for s in self.config.stages]
        if redo_from is not None and redo_from not in names:
            import difflib

            close = difflib.get_close_matches(redo_from, names, n=1)
            raise ConfigError(f"--from {redo_from!r}: no such stage (stages: {', '.join(names)})"
                              + (f"; did you mean {close[0]!r}?" if close else ""))
        self.out.mkdir(parents=True, exist_ok=True)
        outputs: dict[str, dict[str, str]] = {}
        fps: dict[str, str] = {}
        results: list[dict[str, Any]] = []
        redo = False
        for stage in self.config.stages:
            redo = redo or stage.name == redo_from
            fp = fingerprint(stage, self.base, fps)
            fps[stage.name] = fp
            state = self.state(stage.name)
            if state and state.get("done") and state.get("fingerprint") == fp and not redo:
                self._say(f"[{stage.name}] done before, unchanged: skipped")
                outputs[stage.name] = state["outputs"]
                results.append({**state, "skipped": True})
                continue
            resume = bool(state) and not state.get("done") and state.get("fingerprint") == fp and not redo
            self._write_state(stage.name, {"name": stage.name, "kind": stage.kind, "fingerprint": fp, "done": False})
            self._say(f"[{stage.name}] {stage.kind}" + (" (resuming)" if resume else ""))
            t0, c0 = time.perf_counter(), _cpu_seconds()
            outs, summary = self._run_stage(stage, resolve(_settings(stage), outputs), resume)
            state = {"name": stage.name, "kind": stage.kind, "fingerprint": fp, "done": True, "outputs": outs,
                     "wall_s": round(time.perf_counter() - t0, 1), "cpu_s": round(_cpu_seconds() - c0, 1),
                     "summary": summary}
            self._write_state(stage.name, state)
            outputs[stage.name] = outs
            results.append(state)
        from recipes.report import write_pipeline_report

        report = write_pipeline_report(self.out, self.config, results)
        return {"out": str(self.out), "stages": [{k: r.get(k) for k in ("name", "kind", "wall_s", "cpu_s", "skipped")}
                                                  for r in results], "report": str(report)}

    def _say(self, line: str) -> None:
        if self.progress:
            import sys

            print(line, file=sys.stderr, flush=True)

    def _task_path(self, task: str) -> str:
        """A YAML suite named relative to the pipeline file (like its configs), else as given."""
        if re.search(r"\.ya?ml$", task) and (self.base / task).is_file():
            return str(self.base / task)
        return task

    # ---- the stages ----------------------------------------------------------------------
    def _run_stage(self, stage: StageConfig, settings: dict[str, Any], resume: bool) -> tuple[dict[str, str], dict]:
        if stage.kind in TRAINERS:
            return self._train(stage, settings, resume)
        if stage.kind == "sample":
            return self._sample(stage, settings["sample"])
        return self._eval(stage, settings["eval"])

    def _train(self, stage: StageConfig, settings: dict[str, Any], resume: bool) -> tuple[dict[str, str], dict]:
        from train.trainers import run

        run_dir = self.stage_dir(stage.name) / "run"
        overrides = [f"{k}={json.dumps(v) if not isinstance(v, str) else v}" for k, v in settings["set"].items()]
        resume = resume and (run_dir / "checkpoints").is_dir()
        summary = run(stage.kind, self.base / settings["config"], out=run_dir, overrides=overrides, resume=resume,
                      fresh=not resume, progress=self.progress)
        model = run_dir / "model"
        if (model / "adapter_config.json").is_file():  # a later stage loads a plain model folder
            from train.export import export_merged

            model = export_merged(model, self.stage_dir(stage.name) / "merged")
        keep = ("global_step", "wall_seconds", "heldout_reward_before", "heldout_reward_after", "loss_first", "loss_last",
                "reward_first", "reward_last", "plot")
        return {"model": str(model)}, {k: v for k, v in summary.items() if k in keep or k.startswith(("loss", "reward"))}

    def _sample(self, stage: StageConfig, settings: dict[str, Any]) -> tuple[dict[str, str], dict]:
        from core.config import from_dict
        from recipes.sampling import SampleConfig, sample

        settings = {**settings, "task": self._task_path(settings.get("task", ""))}
        cfg = from_dict(SampleConfig, settings, f"{self.path}: stage {stage.name}: sample")
        out = self.stage_dir(stage.name) / "data"
        manifest = sample(cfg, out, data_root=self.data_root, cache=self.cache, progress=self.progress)
        keep = {k: manifest[k] for k in manifest if k.startswith("pass@") or k in ("counts", "task")}
        return {"sft": str(out / "sft.jsonl"), "pairs": str(out / "pairs.jsonl"), "dir": str(out)}, keep

    def _eval(self, stage: StageConfig, settings: dict[str, Any]) -> tuple[dict[str, str], dict]:
        from core.files import iter_jsonl
        from eval.generation import GenerationConfig
        from eval.runner import run
        from eval.suites import load_suite

        suite = load_suite(self._task_path(settings["task"]), data_root=self.data_root)
        cfg = GenerationConfig(temperature=settings["temperature"], seed=settings["seed"],
                               batch_size=settings["batch_size"],
                               max_new_tokens=settings["max_new_tokens"] or suite.max_new_tokens or 512)
        out = self.stage_dir(stage.name)
        summaries = {}
        for label, model in settings["models"].items():
            from train.trainers import model_path

            s = run(suite, model_path(str(model)), limit=settings["limit"], samples=settings["samples"],
                    out=out / label, config=cfg, cache=self.cache, data_root=self.data_root, progress=self.progress)
            summaries[label] = {k: v for k, v in s.items()
                                if isinstance(v, (int, float)) and not isinstance(v, bool) or k in ("ci95", "model")}
            # each item's mean score, in item order: the report's paired differences between models
            summaries[label]["items"] = [r.get("mean_score", r.get("score")) or 0.0
                                         for _, r in iter_jsonl(out / label / "samples.jsonl")]
        return {"dir": str(out)}, {"task": settings["task"], "models": summaries}
