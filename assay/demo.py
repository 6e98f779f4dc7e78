"""`assay demo`: the whole platform end to end, offline, on CPU, on embedded defaults.

Each step is also a command a user can run alone (printed as it starts), writes its results
under the run directory, and marks itself done in `steps/<name>.json` only when it has
finished, so an interrupted demo resumes where it stopped (`--fresh` redoes everything).

    1 index      the Python docs that ship with CPython (pydoc_data) + assay's README
    2 retrieval  BM25, dense, hybrid, reranked and HyDE side by side on graded questions
    3 rewards    right, wrong, hedged and hacking outputs through the reward harness
    4 train      GRPO on a verifiable arithmetic task, reward curve plotted
    5 evaluate   base vs trained model on held-out problems
    6 report     report.md (+ report.html) with every table and plot
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from core.errors import UserError
from core.files import atomic_write_json, atomic_write_text

REPO_ROOT = Path(__file__).resolve().parent.parent
DEMO_DATA = REPO_ROOT / "data" / "demo"


class DemoError(UserError, RuntimeError):
    pass


@dataclass
class Demo:
    out: Path
    quick: bool

    @property
    def corpus_dir(self) -> Path:
        return self.out / "corpus"

    @property
    def index_dir(self) -> Path:
        return self.out / "index"

    def say(self, text: str = "") -> None:
        print(text, flush=True)

    def command(self, cmd: str) -> None:
        self.say(f"  $ {cmd}")


# ------------------------------------------------------------------ 1. corpus and index


def _corpus_documents(quick: bool) -> list[dict[str, str]]:
    """The pydoc topics (CPython's own reference docs) and assay's README, as BEIR rows."""
    from pydoc_data.topics import topics

    names = sorted(topics)
    if quick:  # the judged topics plus a few distractors keep the quick run under two minutes
        judged = {d.split("/", 1)[1] for q in _questions() for d in q["relevant"]}
        names = [n for n in names if n in judged or n in {"class", "if", "pass", "return", "while"}]
    rows = [{"_id": f"pydoc/{n}", "title": n, "text": topics[n].strip()} for n in names]
    readme = REPO_ROOT / "README.md"
    if readme.exists():
        rows.append({"_id": "assay/README.md", "title": "assay README", "text": readme.read_text(encoding="utf-8")})
    return rows


def _questions() -> list[dict[str, Any]]:
    path = DEMO_DATA / "questions.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write_beir(demo: Demo) -> None:
    """corpus.jsonl, queries.jsonl, qrels/test.tsv: the layout `assay eval retrieval` reads."""
    docs = _corpus_documents(demo.quick)
    atomic_write_text(demo.corpus_dir / "corpus.jsonl", "".join(json.dumps(d) + "\n" for d in docs))
    questions = _questions()
    atomic_write_text(demo.corpus_dir / "queries.jsonl",
                      "".join(json.dumps({"_id": q["id"], "text": q["question"]}) + "\n" for q in questions))
    lines = ["query-id\tcorpus-id\tscore"] + [
        f"{q['id']}\t{doc}\t{grade}" for q in questions for doc, grade in q["relevant"].items()
    ]
    atomic_write_text(demo.corpus_dir / "qrels" / "test.tsv", "\n".join(lines) + "\n")


def step_index(demo: Demo) -> dict[str, Any]:
    from rag import Index

    _write_beir(demo)
    corpus = demo.corpus_dir / "corpus.jsonl"
    demo.command(f"assay index {corpus} --index {demo.index_dir}")
    t0 = time.perf_counter()
    index = Index.build([corpus], demo.index_dir)
    build_s = time.perf_counter() - t0
    stats = index.stats()
    demo.say(f"  indexed {stats.get('documents')} documents as {len(index)} chunks in {build_s:.1f} s")

    asked = [q["question"] for q in _questions()[:3]]
    answers = []
    for question in asked:
        demo.command(f'assay search "{question}" --index {demo.index_dir} --k 3 --mode MODE')
        for mode in ("bm25", "dense", "hybrid"):
            hits = index.search(question, k=3, mode=mode)
            demo.say(f"    {mode:<6} " + "  ".join(
                f"{h.rank}. {h.chunk.doc_id} [{h.chunk.start}:{h.chunk.end}]" for h in hits))
            answers.append({"question": question, "mode": mode, "hits": [h.to_dict(snippet_chars=160) for h in hits]})
    return {"documents": stats.get("documents"), "chunks": len(index), "build_seconds": round(build_s, 2),
            "answers": answers}


# ------------------------------------------------------------------ 2. retrieval quality


def step_retrieval(demo: Demo) -> dict[str, Any]:
    from eval import beir, ir_eval
    from rag import Index

    col = beir.load(demo.corpus_dir)
    index = Index.open(demo.index_dir)
    queries = ir_eval.select_queries(col, "all")
    reranker = hyde = None
    if demo.quick:
        # Reranking and HyDE run SmolLM2-135M on the CPU, seconds per query here: the full
        # demo shows them; the quick one keeps to the first-stage retrievers.
        demo.command(f"assay eval retrieval --data {demo.corpus_dir} --index {demo.index_dir} --compare")
        demo.say("  (--quick: reranking and HyDE are shown by the full demo)")
    else:
        from rag.hyde import make_hyde
        from rag.rerank import make_reranker

        demo.command(f"assay eval retrieval --data {demo.corpus_dir} --index {demo.index_dir} --compare "
                     "--rerank --rerank-depth 10 --hyde")
        reranker, hyde = make_reranker("llm", depth=10), make_hyde()
    results = ir_eval.compare(index, col, queries, k=100, rerank=reranker, hyde=hyde, progress=True)
    demo.say(ir_eval.format_table(results))
    return {"queries": len(queries), "configurations": {name: r.to_dict() for name, r in results.items()}}


# ------------------------------------------------------------------ 3. rewards

# Which rewards score each kind of built-in output. Format is worth a fifth of
# correctness: a well-formatted wrong answer must not total as much as a right one.
_REWARDS_BY_KIND = {"math": "math,format:0.2", "code": "code", "language": "language,format:0.2"}


def step_rewards(demo: Demo) -> dict[str, Any]:
    import rewards

    path = DEMO_DATA / "outputs.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    results = []
    for kind, spec in _REWARDS_BY_KIND.items():
        group = [r for r in rows if r["kind"] == kind]
        demo.command(f"assay score --rewards {spec} --input <{kind} rows of {path.relative_to(REPO_ROOT)}>")
        report = rewards.score(spec, [r["completion"] for r in group], group)
        for row, per in zip(group, report.per_row()):
            label = row.get("task_id") or row.get("question", "")[:28]
            demo.say(f"    {kind:<8} {row['case']:<12} {label:<30} total={per['score']:.2f}  "
                     + "; ".join(f"{k}={v if v is None else round(v, 2)} ({per['reasons'][k]})"
                                 for k, v in per["rewards"].items()))
            results.append({"kind": kind, "case": row["case"], "note": row["note"], "label": label, **per})
    hacks = [r for r in results if r["case"].startswith("hack")]
    leaked = [r for r in hacks if (r["score"] or 0) > 0]
    if leaked:
        raise DemoError(f"a hacking attempt scored above 0: {leaked}")
    demo.say(f"  {len(hacks)} hacking attempts, all scored 0")
    return {"rows": results, "hacks_contained": len(hacks)}


# ------------------------------------------------------------------ 4. training

# quick: a tiny model (built from a config) learns the toy verifiable task in seconds;
# full: SmolLM2-135M-Instruct + LoRA learns reasoning-gym arithmetic for a few minutes.
QUICK_TRAIN = ("data/configs/grpo-smoke.yaml", [])
FULL_TRAIN = ("data/configs/grpo-smollm2-arith.yaml",
              ["time_limit_minutes=5", "data.eval_size=40", "grpo.save_steps=10"])


def step_train(demo: Demo) -> dict[str, Any]:
    from train.trainers import run as train_run

    config, overrides = QUICK_TRAIN if demo.quick else FULL_TRAIN
    out = demo.out / "train"
    sets = "".join(f" --set {o}" for o in overrides)
    demo.command(f"assay train grpo --config {config} --out {out}{sets} --fresh")
    # the step is not done: a run left in `out` by an interrupted demo is redone whole
    summary = train_run("grpo", REPO_ROOT / config, out=out, overrides=list(overrides), fresh=True, progress=True)
    model = summary.get("model")
    if model and (Path(model) / "adapter_config.json").exists():
        from train.export import export_merged

        demo.command(f"assay train export --adapter {model} --out {out / 'merged'}")
        model = str(export_merged(model, out / "merged"))
    first, last = summary.get("reward_first10"), summary.get("reward_last10")
    demo.say(f"  {summary.get('logged_steps')} steps, {summary.get('seconds_per_step', 0):.2f} s/step; "
             f"mean reward first 10 steps {first:.3f} -> last 10 {last:.3f}; "
             f"reward scoring {100 * summary.get('reward_share', 0):.1f}% of step time")
    demo.say(f"  curve: {summary.get('plot')}")
    return {"config": config, "overrides": list(overrides), "model": model, "summary": summary}


# ------------------------------------------------------------------ 5. evaluation


def _heldout_suite(demo: Demo) -> Path:
    """A small held-out benchmark for the trained task, as an `assay eval` YAML suite."""
    import yaml

    from train.config import load_run_config

    folder = demo.out / "eval"
    if demo.quick:
        from train.toy import rows as toy_rows

        rows = [{"question": r["question"], "answer": r["answer"]} for r in toy_rows(size=32, seed=1234)]
        spec = {"name": "toy-lucky", "description": "held-out toy:lucky prompts", "data": "heldout.jsonl",
                "prompt": {"style": "plain", "template": "{question}"}, "metrics": ["math"],
                "metric_options": {"math": {"lenient": True}}, "max_new_tokens": 4}
    else:
        import reasoning_gym

        # The training config's task settings, a seed of its own: held out, same difficulty.
        options = dict(load_run_config("grpo", REPO_ROOT / FULL_TRAIN[0]).data.options)
        options.update(size=40, seed=4242)
        data = reasoning_gym.create_dataset("basic_arithmetic", **options)
        rows = [{"question": x["question"], "answer": x["answer"]} for x in data]
        spec = {"name": "arithmetic-heldout", "description": "held-out reasoning-gym basic_arithmetic",
                "data": "heldout.jsonl",
                "prompt": {"style": "chat", "template": "{question}",
                           "system": "You are a calculator. Reply with the result only."},
                "metrics": ["math"], "metric_options": {"math": {"lenient": True}}, "max_new_tokens": 16}
    atomic_write_text(folder / "heldout.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    atomic_write_text(folder / "suite.yaml", yaml.safe_dump(spec, sort_keys=False))
    return folder / "suite.yaml"


def step_evaluate(demo: Demo) -> dict[str, Any]:
    import eval as evaluation
    from eval.report import format_compare
    from train.config import load_run_config
    from train.trainers import model_path

    trained = json.loads((demo.out / "steps" / "train.json").read_text())
    run_cfg = load_run_config("grpo", REPO_ROOT / trained["config"], trained["overrides"])
    base = model_path(run_cfg.model.name)
    suite = _heldout_suite(demo)
    summaries = {}
    for label, model in (("base", base), ("trained", trained["model"])):
        out = demo.out / "eval" / label
        demo.command(f"assay eval run {suite} --model {model} --out {out}")
        summaries[label] = evaluation.run(str(suite), model, out=out, progress=True)
        t = summaries[label].get("time", {})
        demo.say(f"  {label:<8} accuracy {summaries[label]['accuracy']:.3f} on {summaries[label]['n']} problems "
                 f"({t.get('total_s', 0):.1f} s)")
    demo.command(f"assay eval compare {demo.out / 'eval' / 'base'} {demo.out / 'eval' / 'trained'}")
    comparison = evaluation.compare(demo.out / "eval" / "base", demo.out / "eval" / "trained")
    demo.say(format_compare(comparison))
    return {"suite": str(suite), "base": summaries["base"], "trained": summaries["trained"], "compare": comparison}


# ------------------------------------------------------------------ 6. report


def step_report(demo: Demo) -> dict[str, Any]:
    from assay.demo_report import write_report

    paths = write_report(demo.out, quick=demo.quick)
    for p in paths:
        demo.say(f"  wrote {p}")
    return {"report": [str(p) for p in paths]}


# ------------------------------------------------------------------ the driver

STEPS: list[tuple[str, str, Callable[[Demo], dict[str, Any]]]] = [
    ("index", "Index the embedded corpus and answer questions in each retrieval mode", step_index),
    ("retrieval", "Evaluate retrieval: BM25, dense, hybrid, reranked, HyDE", step_retrieval),
    ("rewards", "Score built-in model outputs with the reward harness", step_rewards),
    ("train", "Train a small model with GRPO and the reward harness", step_train),
    ("evaluate", "Evaluate the base and the trained model on held-out problems", step_evaluate),
    ("report", "Write the report", step_report),
]


def _cpu_seconds() -> float:
    import resource

    return sum(u.ru_utime + u.ru_stime for u in (resource.getrusage(resource.RUSAGE_SELF),
                                                  resource.getrusage(resource.RUSAGE_CHILDREN)))


def run_demo(args: argparse.Namespace) -> int:
    demo = Demo(out=Path(args.out), quick=bool(args.quick))
    wanted = [s.strip() for s in args.steps.split(",")] if args.steps else [name for name, _, _ in STEPS]
    unknown = [s for s in wanted if s not in {name for name, _, _ in STEPS}]
    if unknown:
        raise DemoError(f"unknown step(s) {', '.join(unknown)}; steps: {', '.join(n for n, _, _ in STEPS)}")
    demo.out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    for i, (name, title, fn) in enumerate(STEPS, 1):
        if name not in wanted:
            continue
        marker = demo.out / "steps" / f"{name}.json"
        demo.say(f"\n[{i}/{len(STEPS)}] {title}")
        if marker.exists() and not args.fresh:
            demo.say(f"  done earlier ({marker}); --fresh redoes it")
            continue
        t0, cpu0 = time.perf_counter(), _cpu_seconds()
        result = fn(demo)
        result["seconds"] = round(time.perf_counter() - t0, 2)
        result["cpu_seconds"] = round(_cpu_seconds() - cpu0, 2)  # this process and its children: load-independent
        atomic_write_json(marker, result)
        demo.say(f"  step {name} done in {result['seconds']:.1f} s")
    report = demo.out / "report.md"
    where = f"; report: {report}" if report.exists() else ""
    demo.say(f"\ndemo finished in {time.perf_counter() - t_start:.0f} s; results in {demo.out}{where}")
    sys.stdout.flush()
    return 0
