"""Verified training data from a model's own samples or a teacher's traces (`assay data sample`).

DeepSeek-R1's data stage, as one command: sample k completions per prompt of a task (or
read a teacher's traces), score each with **the task's own scorer** -- the function
`assay eval` grades with, never a second copy -- and keep what is right and readable:

    task rows --prompt--> k completions (cached; a killed run resumes)   | traces FILE
        --task.score--> verified --filters (recipes.filters)--> kept
        --> DIR/sft.jsonl     prompt/completion rows for SFT (chat form where the task chats)
            DIR/pairs.jsonl   DPO pairs: a kept completion (chosen) and a failed one (rejected)
            DIR/dropped.jsonl each dropped sample's id, the filter that dropped it and why
            DIR/manifest.json the model or traces file (with its sha256), sampling settings,
            seed, filters, counts kept and dropped per filter, pass@1 and pass@k

Generation goes through eval's cached generator (`eval.generation.Generator`: transformers
on a CPU, vLLM on a GPU, Ray actors with `--ray`; a RAG QA task in search mode searches
between turns), so a rerun with the same settings generates nothing, and an interrupted
one generates only what is missing. The run directory is written atomically: a failed run
leaves the previous one (or none), never a half-written one.

Ids: a sample of a task row is ``<row id>/<sample index>``; a trace keeps its input row's
``id`` (with several ``completions``, ``<id>/<index>``), or gets ``<line>/<index>``.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from core.config import ConfigError
from core.errors import UserError
from recipes import filters as F
from recipes.decontamination import BENCHMARKS, build
from tasks.base import Scored


class SampleError(UserError, ValueError):
    pass


@dataclass
class SampleConfig:
    """One `assay data sample` run. Every field is a flag of the command."""

    task: str = ""
    """The task whose prompts are sampled and whose scorer verifies (`tasks.get_task` names)."""
    model: str | None = None
    """The model that samples (a name, path or hub id); or give `traces`."""
    traces: str | None = None
    """A JSONL of a teacher's traces: the task's fields plus `completion` or `completions`."""
    split: str | None = None
    """The task's split (default: train where the task has one -- gsm8k, world:DIR -- else its only one)."""
    offset: int = 0
    """Skip this many rows first (e.g. the rows an evaluation uses)."""
    limit: int | None = None
    """Use at most this many prompts."""
    k: int = 8
    """Completions sampled per prompt."""
    temperature: float = 0.8
    top_p: float = 0.95
    max_new_tokens: int = 512
    batch_size: int = 8
    seed: int = 0
    backend: str = "auto"
    """Generation backend: auto, transformers or vllm."""
    language: str = "en"
    """The prompts' language, for the language filter (rows may carry their own `language`)."""
    decontaminate: list[str] = field(default_factory=lambda: ["default"])
    """Benchmarks (gsm8k, math500, aime24, amc23, humaneval, world:DIR) and JSONL files to
    decontaminate against; "default" means every offline benchmark, plus the task's own test
    split for a world task. [] turns the filter off."""
    ngram: int = 13
    """Decontamination n-gram, in words (shorter for short test items: recipes.decontamination)."""
    pairs_per_prompt: int = 1
    """DPO pairs written per prompt that has both a kept and a failed completion."""
    filters: F.FilterConfig = field(default_factory=F.FilterConfig)

    def __post_init__(self) -> None:
        if not self.task:
            raise ConfigError("give the task to sample (--task gsm8k, reasoning_gym:NAME, world:DIR, ...)")
        if (self.model is None) == (self.traces is None):
            raise ConfigError("give exactly one of --model (sample a model) and --traces FILE (a teacher's traces)")
        if self.k < 1 or self.batch_size < 1 or self.max_new_tokens < 1 or self.pairs_per_prompt < 0:
            raise ConfigError("k, batch_size and max_new_tokens must be >= 1, pairs_per_prompt >= 0")
        if self.offset < 0 or (self.limit is not None and self.limit < 1):
            raise ConfigError("offset must be >= 0 and limit >= 1")
        if not 0 <= self.temperature <= 5 or not 0 < self.top_p <= 1:
            raise ConfigError(f"temperature must be in [0, 5] and top_p in (0, 1], got {self.temperature}, {self.top_p}")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def default_split(task: str) -> str | None:
    return "train" if task == "gsm8k" or task.startswith(("world:", "flashrag:")) else None


def against_list(cfg: SampleConfig) -> list[str]:
    out: list[str] = []
    for name in cfg.decontaminate:
        if name == "default":
            out += list(BENCHMARKS)
            if cfg.task.startswith("world:"):
                out.append("world:" + cfg.task.split(":")[1])
        else:
            out.append(name)
    return list(dict.fromkeys(out))


def prompt_text(prompt: Any) -> str:
    """The words a prompt shows the model (chat messages joined), for decontamination."""
    if isinstance(prompt, list):
        return "\n".join(str(m.get("content", "")) for m in prompt if isinstance(m, dict))
    return str(prompt)


# ---- the stages ----------------------------------------------------------------------------

def load_task(cfg: SampleConfig, data_root: str | None):
    """The task by name (`tasks.get_task`, on the split asked for) or a YAML suite (`eval.suites`)."""
    import re

    from tasks import get_task

    try:
        if re.search(r"\.ya?ml$", cfg.task):
            from eval.suites import load_suite

            return load_suite(cfg.task, data_root=data_root)
        return get_task(cfg.task, data_root=data_root, split=cfg.split or default_split(cfg.task))
    except UserError as exc:
        raise SampleError(f"--task {cfg.task!r}: {exc}") from None


def sampled(cfg: SampleConfig, task, rows: list[dict], cache, progress: bool, ray: str | None):
    """(completions, finish reasons, generator identity) of k samples of each row's prompt."""
    from eval.generation import GenerationConfig, Generator
    from eval.search_generation import search_generator

    gcfg = GenerationConfig(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature, top_p=cfg.top_p,
                            stop=list(task.stop), batch_size=cfg.batch_size, seed=cfg.seed, backend=cfg.backend)
    gcfg.validate()
    if ray is not None:
        from eval.ray_generation import RayGenConfig, RayGenerator

        gen = RayGenerator(cfg.model, gcfg, ray=RayGenConfig(address=ray or None), cache=cache, progress=progress)
    else:
        gen = Generator(cfg.model, gcfg, cache=cache, progress=progress)
    gen = search_generator(gen, task)
    gens = gen.generate([task.prompt(r) for r in rows], n=cfg.k)
    return ([[g.text for g in gs] for gs in gens], [[g.finish_reason for g in gs] for gs in gens], gen.identity,
            sum(g.cached for gs in gens for g in gs))


def read_traces(cfg: SampleConfig, task) -> tuple[list[dict], list[list[str]], list[list[str]]]:
    """Rows, completions and ids of a traces file (the task's fields looked up by id where missing)."""
    from eval.runner import join_predictions
    from tasks.data import read_jsonl

    path = Path(cfg.traces)
    if not path.is_file():
        raise SampleError(f"--traces {cfg.traces}: no such file")
    preds = read_jsonl(path)
    if not preds:
        raise SampleError(f"{cfg.traces}: no traces")
    # Rows may carry different numbers of completions: join each group of equal count at once
    # (the task's fields looked up by id where a trace lacks them), then restore the file's order.
    norm = [p if "completions" in p or "completion" not in p else {**p, "completions": [p["completion"]]} for p in preds]
    by_count: dict[int, list[int]] = {}
    for i, p in enumerate(norm):
        cs = p.get("completions")
        by_count.setdefault(len(cs) if isinstance(cs, list) else 0, []).append(i)
    rows: list[dict] = [{}] * len(norm)
    completions: list[list[str]] = [[]] * len(norm)
    for idx in by_count.values():
        r, cs = join_predictions(task, [norm[i] for i in idx], cfg.traces)
        for i, ri, ci in zip(idx, r, cs):
            rows[i], completions[i] = ri, ci
    ids = []
    for p, cs in zip(preds, completions):
        base = str(p["id"]) if p.get("id") is not None else str(p.get("_line", len(ids) + 1))
        ids.append([base] if len(cs) == 1 and p.get("id") is not None else [f"{base}/{j}" for j in range(len(cs))])
    return rows, completions, ids


@dataclass
class Outcome:
    """What happened to one sample."""

    id: str
    completion: str
    scored: Scored
    finish_reason: str | None
    dropped: str | None = None  # the reason, naming its filter


def apply_filters(cfg: SampleConfig, task, rows: list[dict], prompts: list[Any], completions: list[list[str]],
                  scored: list[list[Scored]], finish: list[list[str | None]], ids: list[list[str]],
                  match: Callable[[str], Any] | None) -> list[list[Outcome]]:
    """Every sample's fate: verified, then the per-trace filters, decontamination, near-duplicates."""
    on = cfg.filters.enabled
    writes_code = bool(getattr(task, "writes_code", False))
    out = []
    for i, (row, prompt, cs, ss, fr, sid) in enumerate(zip(rows, prompts, completions, scored, finish, ids)):
        prompt_hit = match(prompt_text(prompt)) if match is not None else None
        dedup = F.NearDuplicates(cfg.filters.dedup_jaccard)
        lang = str(row.get("language") or cfg.language)
        item = []
        for c, s, f, j in zip(cs, ss, fr, sid):
            o = Outcome(j, c, s, f)
            read = F.Words(c)  # read once, shared by every filter
            if "verified" in on and (s.score is None or s.score < cfg.filters.threshold):
                o.dropped = f"verified: score {s.score} ({s.reason})"
            if o.dropped is None and "contaminated" in on and match is not None:
                hit, where = (prompt_hit, "the prompt") if prompt_hit is not None else (match(c, read), "the completion")
                if hit is not None:
                    o.dropped = f"contaminated: {where} " + hit.reason().split(": ", 1)[1]
            if o.dropped is None:
                o.dropped = F.check_trace(c, config=cfg.filters, finish_reason=f, extracted=s.extracted,
                                          target_language=lang, writes_code=writes_code, words=read)
            if o.dropped is None and "near_duplicate" in on:
                o.dropped = dedup.check(c, j, read)
            item.append(o)
        out.append(item)
    return out


def gold_fields(task, row: dict) -> dict:
    """The row's gold fields (what the task's scorer reads), to re-score the data later."""
    keep = {f: row[f] for f in task.fields if f in row and f not in ("prompt", "completion")}
    return {k: v for k, v in keep.items() if not k.startswith("_")}


def write_outputs(out: Path, cfg: SampleConfig, task, rows, prompts, outcomes: list[list[Outcome]],
                  manifest: dict) -> None:
    from core.files import atomic_dir

    def chat(text: str, prompt: Any) -> Any:
        return [{"role": "assistant", "content": text}] if isinstance(prompt, list) else text

    sft, pairs, dropped = [], [], []
    for row, prompt, item in zip(rows, prompts, outcomes):
        gold = gold_fields(task, row)
        kept = [o for o in item if o.dropped is None]
        for o in kept:
            sft.append({"id": o.id, "prompt": prompt, "completion": chat(o.completion, prompt), "score": o.scored.score,
                        **gold})
        failed = sorted({o.completion: o for o in item if o.dropped and F.filter_name(o.dropped) == "verified"}.values(),
                        key=lambda o: (o.scored.score or 0.0))
        for good, bad in list(zip(kept, failed))[: cfg.pairs_per_prompt]:
            pairs.append({"id": good.id, "prompt": prompt, "chosen": chat(good.completion, prompt),
                          "rejected": chat(bad.completion, prompt), "chosen_score": good.scored.score,
                          "rejected_score": bad.scored.score, "rejected_id": bad.id, **gold})
        for o in item:
            if o.dropped:
                dropped.append({"id": o.id, "filter": F.filter_name(o.dropped), "reason": o.dropped,
                                "score": o.scored.score})
    manifest["counts"].update(kept=len(sft), pairs=len(pairs))
    with atomic_dir(out) as tmp:
        for name, recs in (("sft.jsonl", sft), ("pairs.jsonl", pairs), ("dropped.jsonl", dropped)):
            with open(tmp / name, "w", encoding="utf-8") as fh:
                for r in recs:
                    fh.write(json.dumps(r, ensure_ascii=False, default=str) + "\n")
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n",
                                           encoding="utf-8")


def sample(cfg: SampleConfig, out: str | Path, *, data_root: str | None = None, cache: Any = None,
           progress: bool = True, ray: str | None = None) -> dict[str, Any]:
    """Run the data stage (module doc); write `out`; return the manifest."""
    from eval import metrics as M
    from eval.runner import open_cache

    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SampleError(f"--out {out}: exists and is not a directory")
    task = load_task(cfg, data_root)
    db = open_cache(cache)
    against = against_list(cfg) if "contaminated" in cfg.filters.enabled else []
    dec = build(against, data_root=data_root, ngram=cfg.ngram) if against else None  # bad names fail before sampling
    generated = cached = 0
    if cfg.traces is not None:
        rows, completions, ids = read_traces(cfg, task)
        rows = rows[cfg.offset:][: cfg.limit] if cfg.limit else rows[cfg.offset:]
        completions, ids = completions[cfg.offset:][: len(rows)], ids[cfg.offset:][: len(rows)]
        if not rows:
            raise SampleError(f"{cfg.traces}: no traces after --offset {cfg.offset}")
        finish: list[list[str | None]] = [[None] * len(cs) for cs in completions]
        source: dict[str, Any] = {"traces": str(cfg.traces), "sha256": file_sha256(cfg.traces)}
    else:
        rows = task.load()
        rows = rows[cfg.offset:][: cfg.limit] if cfg.limit else rows[cfg.offset:]
        if not rows:
            raise SampleError(f"task {cfg.task!r} has no rows after --offset {cfg.offset}")
        t_gen = time.perf_counter()
        completions, finish, identity, cached = sampled(cfg, task, rows, db, progress, ray)
        generated = sum(map(len, completions)) - cached
        ids = [[f"{task.item_id(r, cfg.offset + i)}/{j}" for j in range(cfg.k)] for i, r in enumerate(rows)]
        source = {"model": cfg.model, "model_identity": identity, "generation_s": round(time.perf_counter() - t_gen, 2)}
    prompts = [task.prompt(r) for r in rows]
    t_score = time.perf_counter()
    flat = task.score_cached([c for cs in completions for c in cs], [r for r, cs in zip(rows, completions) for _ in cs], db)
    scored, i = [], 0
    for cs in completions:
        scored.append(flat[i:i + len(cs)])
        i += len(cs)
    score_s = time.perf_counter() - t_score
    t_filter = time.perf_counter()
    outcomes = apply_filters(cfg, task, rows, prompts, completions, scored, finish, ids,
                             dec.match if dec is not None else None)
    filter_s = time.perf_counter() - t_filter
    n = min(map(len, completions))
    right = [sum(M.is_correct(s.score) for s in ss) for ss in scored]
    pass1 = sum(c / len(ss) for c, ss in zip(right, scored)) / len(scored)
    passn = sum(M.pass_at_k(len(ss), c, n) for c, ss in zip(right, scored)) / len(scored)
    drops: dict[str, int] = {}
    for item in outcomes:
        for o in item:
            if o.dropped:
                drops[F.filter_name(o.dropped)] = drops.get(F.filter_name(o.dropped), 0) + 1
    manifest: dict[str, Any] = {
        "task": cfg.task, "split": cfg.split or default_split(cfg.task), "offset": cfg.offset, "limit": cfg.limit,
        **source,
        "sampling": {k: v for k, v in asdict(cfg).items() if k in ("k", "temperature", "top_p", "max_new_tokens", "seed",
                                                                  "backend")} if cfg.model else None,
        "seed": cfg.seed, "filters": cfg.filters.settings(),
        "decontaminated_against": {"sources": dec.sources, "ngram": cfg.ngram, "min_ngram": dec.min_ngram,
                                   "too_short_to_index": dec.skipped} if dec is not None else None,
        "counts": {"prompts": len(rows), "samples": sum(map(len, completions)), "generated": generated,
                   "from_cache": cached, "dropped": dict(sorted(drops.items(), key=lambda kv: F.FILTERS.index(kv[0])))},
        "pass@1": round(pass1, 4), f"pass@{n}": round(passn, 4),
        "time": {"scoring_s": round(score_s, 3), "filters_s": round(filter_s, 3),
                 "total_s": round(time.perf_counter() - t0, 2)},
    }
    write_outputs(out, cfg, task, rows, prompts, outcomes, manifest)
    manifest["out"] = str(out)
    return manifest
