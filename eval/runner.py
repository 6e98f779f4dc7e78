"""Run a suite against a model, or score predictions made elsewhere; write the run directory.

    summary = run("gsm8k", "SmolLM2-135M-Instruct", limit=50, out="runs/eval/smol")
    summary = score("gsm8k", "preds.jsonl")          # vLLM / lm-eval outputs, scored by assay

Both end in the same place: per-item records (prompt, completion(s), extracted answer,
reason, score) -> metrics (accuracy, pass@k, maj@k, mean@k, the suite's own) -> a run
directory with samples.jsonl, summary.json, report.md and plots (eval.report).
"""

from __future__ import annotations

import dataclasses
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from eval import metrics as M
from eval.cache import Cache, default_cache_path
from eval.generation import GenerationConfig, Generator
from eval.search_generation import SearchGenerator, search_generator
from eval.suites import Suite, load_suite
from tasks.data import TaskDataError, read_jsonl


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", str(text)).strip("_")[:80] or "run"


def open_cache(cache: str | Path | Cache | None | bool) -> Cache:
    """True/None: the default cache file; False: an in-memory cache; a path: that file."""
    if isinstance(cache, Cache):
        return cache
    if cache is False:
        return Cache(None)
    return Cache(default_cache_path() if cache in (None, True) else cache)


def score_items(suite: Suite, rows: Sequence[dict], completions: Sequence[Sequence[str]], cache: Cache | None,
                ) -> list[list[Any]]:
    """Scored objects per item and completion (one suite.score call over the flat batch)."""
    flat_c = [c for cs in completions for c in cs]
    flat_r = [r for r, cs in zip(rows, completions) for _ in cs]
    scored = suite.score_cached(flat_c, flat_r, cache)
    out, i = [], 0
    for cs in completions:
        out.append(scored[i:i + len(cs)])
        i += len(cs)
    return out


def summarize(suite: Suite, rows: Sequence[dict], scored: Sequence[Sequence[Any]], *, n_samples: int) -> dict[str, Any]:
    scores = [[s.score for s in item] for item in scored]
    answers = [[suite.answer_key(s) for s in item] for item in scored]
    vote = any(a is not None for item in answers for a in item)
    summary: dict[str, Any] = {"n": len(rows), "samples": n_samples}
    items = M.per_item(scores, answers if vote else None)
    summary.update({name: sum(v) / len(v) for name, v in items.items()})
    extra_names = list(dict.fromkeys(k for item in scored for s in item for k in s.extra))
    for name in extra_names:
        vals = [s.extra.get(name) for item in scored for s in item]
        vals = [v for v in vals if v is not None]
        summary[name] = sum(vals) / len(vals) if vals else None
        per = [[s.extra.get(name) for s in item if s.extra.get(name) is not None] for item in scored]
        items[name] = [sum(p) / len(p) if p else None for p in per]
    summary["ci95"] = M.bootstrap_intervals(items)
    groups: dict[str, dict[str, dict[str, float]]] = {}
    for field in suite.group_fields:
        buckets: dict[str, list[float]] = {}
        for row, item in zip(rows, scored):
            if field in row:
                buckets.setdefault(str(row[field]), []).append(
                    sum(0.0 if s.score is None else s.score for s in item) / len(item))
        groups[field] = {k: {"n": len(v), "accuracy": sum(v) / len(v)} for k, v in sorted(buckets.items(), key=_natural)}
    if groups:
        summary["groups"] = groups
    return summary


def _natural(item):
    key = item[0]
    return (0, int(key), "") if key.isdigit() else (1, 0, key)


def records(suite: Suite, rows, prompts, completions, scored, gens=None) -> list[dict]:
    out = []
    for i, (row, prompt, cs, ss) in enumerate(zip(rows, prompts, completions, scored)):
        first = ss[0]
        rec: dict[str, Any] = {"id": suite.item_id(row, i), "prompt": prompt, "completion": cs[0],
                               "extracted": first.extracted, "reason": first.reason, "score": first.score}
        rec.update({k: v for k, v in first.extra.items()})
        if gens is not None:
            rec["finish_reason"], rec["tokens"] = gens[i][0].finish_reason, gens[i][0].tokens
        for f in suite.group_fields:
            if f in row:
                rec[f] = row[f]
        if len(cs) > 1:
            rec["mean_score"] = sum(0.0 if s.score is None else s.score for s in ss) / len(ss)
            rec["samples"] = [{"completion": c, "extracted": s.extracted, "reason": s.reason, "score": s.score, **s.extra}
                              for c, s in zip(cs, ss)]
        out.append(rec)
    return out


def run(suite_name: str | Suite, model: str, *, limit: int | None = None, samples: int = 1,
        out: str | Path | None = None, config: GenerationConfig | None = None, cache: Any = None,
        data_root: str | None = None, progress: bool = True, generator: Generator | None = None) -> dict[str, Any]:
    """Generate (cached) and score one suite; write its run directory; return the summary."""
    from eval.report import write_run

    t_start = time.perf_counter()
    suite = suite_name if isinstance(suite_name, Suite) else load_suite(suite_name, data_root=data_root)
    cfg = dataclasses.replace(config) if config else GenerationConfig()
    if config is None and suite.max_new_tokens:
        cfg.max_new_tokens = suite.max_new_tokens  # an explicit config's budget is the caller's choice
    cfg.stop = list(dict.fromkeys([*suite.stop, *cfg.stop]))
    rows = suite.load(limit)
    if not rows:
        raise TaskDataError(f"suite {suite.name!r} has no rows to evaluate")
    db = open_cache(cache)
    gen = generator or Generator(model, cfg, cache=db, progress=progress)
    gen.config = cfg
    gen = search_generator(gen, suite)  # a RAG QA task in search mode: retrieval between the model's turns
    prompts = [suite.prompt(r) for r in rows]
    rendered = [gen.render(p) for p in prompts]
    t0 = time.perf_counter()
    wanted = [k for r in dict.fromkeys(rendered) for k in gen.keys(r, samples)]
    if len(gen.cache.get_generations(wanted)) < len(wanted):
        gen.load()  # something to generate: load now, so load time is reported apart
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    gens = gen.generate(prompts, n=samples)
    t_gen = time.perf_counter() - t0
    completions = [[g.text for g in gs] for gs in gens]
    t0 = time.perf_counter()
    scored = score_items(suite, rows, completions, db)
    t_score = time.perf_counter() - t0
    summary = summarize(suite, rows, scored, n_samples=samples)
    n_cached = sum(g.cached for gs in gens for g in gs)
    summary.update({
        "suite": suite.name, "model": str(model), "model_identity": gen.identity,
        "time": {"model_load_s": round(t_load, 3), "generation_s": round(t_gen, 3), "scoring_s": round(t_score, 3),
                 "total_s": round(time.perf_counter() - t_start, 3)},
        "generations": {"new": sum(len(gs) for gs in gens) - n_cached, "cached": n_cached,
                        "new_tokens": gen.stats["new_tokens"], "backend": gen.backend},
        "generation": {**dataclasses.asdict(cfg),
                       **({"search": gen.search_settings()} if isinstance(gen, SearchGenerator) else {})},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })
    recs = records(suite, rows, rendered, completions, scored, gens)
    if out is not None:
        write_run(Path(out), suite, summary, recs)
    return summary


def score(suite_name: str | Suite, predictions: str | Path, *, out: str | Path | None = None, cache: Any = None,
          data_root: str | None = None) -> dict[str, Any]:
    """Score a predictions JSONL: the suite's own fields + `completion` or `completions` (list)."""
    from eval.report import write_run

    t_start = time.perf_counter()
    suite = suite_name if isinstance(suite_name, Suite) else load_suite(suite_name, data_root=data_root)
    preds = read_jsonl(predictions)
    if not preds:
        raise TaskDataError(f"{predictions}: no predictions")
    rows, completions = join_predictions(suite, preds, str(predictions))
    db = open_cache(cache)
    t0 = time.perf_counter()
    scored = score_items(suite, rows, completions, db)
    t_score = time.perf_counter() - t0
    n = len(completions[0])
    summary = summarize(suite, rows, scored, n_samples=n)
    summary.update({"suite": suite.name, "model": None, "predictions": str(predictions),
                    "time": {"scoring_s": round(t_score, 3), "total_s": round(time.perf_counter() - t_start, 3)},
                    "created": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    if out is not None:
        prompts = [p.get("prompt") for p in preds]
        write_run(Path(out), suite, summary, records(suite, rows, prompts, completions, scored))
    return summary


def join_predictions(suite: Suite, preds: list[dict], source: str) -> tuple[list[dict], list[list[str]]]:
    """Rows (with the suite's fields, looked up by id when the prediction lacks them) + completions."""
    data_by_id: dict[str, dict] | None = None
    rows, completions = [], []
    n_expected = None
    for p in preds:
        line = p.get("_line", "?")
        if "completions" in p:
            cs = p["completions"]
            if not isinstance(cs, list) or not cs:
                raise TaskDataError(f"{source}:{line}: 'completions' must be a non-empty list")
            cs = [_as_text(c, source, line) for c in cs]
        elif "completion" in p:
            cs = [_as_text(p["completion"], source, line)]
        else:
            raise TaskDataError(f"{source}:{line}: missing field 'completion' (or 'completions', a list)")
        if n_expected is None:
            n_expected = len(cs)
        elif len(cs) != n_expected:
            raise TaskDataError(f"{source}:{line}: {len(cs)} completions, but earlier rows have {n_expected}")
        missing = [f for f in suite.fields if f not in p]
        if missing:
            key = suite.id_field
            if not key or key not in p:
                hint = f" (or {key!r} to look it up)" if key and missing[0] != key else ""
                raise TaskDataError(f"{source}:{line}: missing field {missing[0]!r}{hint}")
            if data_by_id is None:
                data_by_id = {str(r[key]): r for r in suite.load() if key in r}
            found = data_by_id.get(str(p[key]))
            if found is None:
                raise TaskDataError(f"{source}:{line}: {key} {p[key]!r} is not in suite {suite.name!r}")
            p = {**found, **p}
        bad = [f for f in suite.fields if p.get(f) is None or isinstance(p.get(f), dict)]
        if bad:  # a null or object gold would score as a silent 0
            kind = "null" if p.get(bad[0]) is None else "an object"
            raise TaskDataError(f"{source}:{line}: field {bad[0]!r} is {kind}")
        rows.append(p)
        completions.append(cs)
    return rows, completions


def _as_text(completion: Any, source: str, line: Any) -> str:
    """A completion as text: a string, or a chat list whose last assistant message counts."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and all(isinstance(m, dict) for m in completion):
        said = [m.get("content") for m in completion if m.get("role", "assistant") == "assistant"]
        if said and isinstance(said[-1], str):
            return said[-1]
    raise TaskDataError(f"{source}:{line}: a completion must be a string or a chat list with an assistant message")

