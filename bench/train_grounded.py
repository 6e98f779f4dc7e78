"""Grounded training on a knowledge world: does it beat the base model, with the same prompts and retrieval?

    python bench/train_grounded.py --out runs/bench-grounded            # world, index, train (a), evaluate
    python bench/train_grounded.py --out runs/bench-grounded --model sft=runs/sft-grounded-world \\
        --model grpo=runs/grpo-grounded-world --skip-train                # evaluate existing runs
    python bench/train_grounded.py --out /tmp/q --quick                  # a tiny run to see it work

Steps: (1) a knowledge world (tasks.knowledge_world, seed 0, 1,500 documents, 3,000
questions) and its assay index (built once under WORLD/index); (2) unless --skip-train,
recipe (a) (data/configs/sft-grounded-world.yaml) on the world's train entities; (3) the
base model and every trained model on a fixed sample of the held-out *test* entities' questions
(per type, the first --per-type N; greedy; 32 new tokens; 160 in search mode), in the modes
asked for: closed_book (question only), retrieve (top-3 passages in the grounded prompt;
the same retrieval for every model) and search (search in the loop through
eval.search_generation, as `assay eval run world:DIR:test:search:k=3` runs it: up to 2
<search> calls, 3 BM25 passages each, 64 tokens a turn, greedy by top_k=1).
Prompts are the task's (tasks.rag_qa), byte for byte what training used.

Writes OUT/summary.json (per model, mode and question type: EM, F1, citation precision and
recall, share of responses that cite, abstention, false abstention, support, recall@k, plus
per-question flips base -> trained), OUT/records/<model>-<mode>.jsonl, OUT/curves.png
(training loss / reward per step of every run) and prints a table. Generations are cached
(OUT/generations.sqlite): a rerun only generates what is new.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TYPES = ("single", "two_hop", "comparison", "unanswerable")
METRICS = ("exact_match", "contains_answer", "f1", "citation_precision", "citation_recall", "cited", "abstention", "false_abstention",
           "supported", "recall@k", "search_calls")


def make_world(out: Path, *, seed: int = 0, docs: int = 1500, questions: int = 3000) -> Path:
    from tasks.knowledge_world import WorldConfig, generate, write_world

    if not (out / "questions.jsonl").exists():
        write_world(generate(WorldConfig(seed=seed, docs=docs, questions=questions)), out, force=True)
    return out


def test_sample(task, per_type: dict[str, int]) -> list[dict]:
    """The first N questions of each type, in file order (deterministic)."""
    rows, seen = [], {t: 0 for t in TYPES}
    for r in task.load():
        t = r.get("type")
        if seen.get(t, 0) < per_type.get(t, 0):
            seen[t] += 1
            rows.append(r)
    return rows


def merged_model(run_dir: Path) -> str:
    """A plain model folder for a run: its model, merged when it is a LoRA adapter."""
    model = run_dir / "model"
    if not (model / "adapter_config.json").exists():
        return str(model)
    merged = run_dir / "merged"
    if not (merged / "config.json").exists():
        from train.export import export_merged

        export_merged(model, merged)
    return str(merged)


def generate(model: str, task, prompts: list, cache) -> list[str]:
    """One greedy completion per prompt, as `assay eval run` makes it: in one shot, or for
    search mode with search in the loop (eval.search_generation, over the task's index)."""
    from eval.generation import GenerationConfig, Generator
    from eval.search_generation import search_generator

    gen = Generator(model, GenerationConfig(max_new_tokens=task.max_new_tokens, batch_size=16, backend="transformers"),
                    cache=cache, progress=False)
    return [g[0].text for g in search_generator(gen, task).generate(prompts)]


def evaluate(label: str, model: str, mode: str, world: Path, per_type: dict[str, int], out: Path, cache,
             search_types: tuple[str, ...] = TYPES) -> dict:
    import tasks

    if mode == "search":  # the costliest mode: only the question types asked for
        per_type = {t: n for t, n in per_type.items() if t in search_types}

    task = tasks.get_task(f"world:{world}:test:{mode}:k=3")
    rows = test_sample(task, per_type)
    prompts = [task.prompt(r) for r in rows]
    t0 = time.perf_counter()
    completions = generate(model, task, prompts, cache)
    seconds = time.perf_counter() - t0
    scored = task.score(completions, rows)
    records = [{"id": r["id"], "type": r["type"], "question": r["question"], "answers": r["answers"],
                "completion": c, "extracted": s.extracted, "score": s.score, **s.extra}
               for r, c, s in zip(rows, completions, scored)]
    (out / "records").mkdir(parents=True, exist_ok=True)
    with (out / "records" / f"{label}-{mode}.jsonl").open("w") as fh:
        fh.writelines(json.dumps(rec) + "\n" for rec in records)
    return {"seconds": round(seconds, 1), "n": len(records), "by_type": by_type(records), "records": records}


def _mean(vals) -> float | None:
    vals = [v for v in vals if v is not None]
    return round(sum(vals) / len(vals), 4) if vals else None


def by_type(records: list[dict]) -> dict[str, dict]:
    out = {}
    for t in (*TYPES, "all"):
        rs = [r for r in records if t == "all" or r["type"] == t]
        if not rs:
            continue
        out[t] = {"n": len(rs), "accuracy": _mean(r["score"] for r in rs),
                  **{m: _mean(r.get(m) for r in rs) for m in METRICS if any(r.get(m) is not None for r in rs)}}
    return out


def flips(base: list[dict], trained: list[dict]) -> dict:
    """Per question, base vs trained: right->wrong and wrong->right, and how many of the
    answerable questions the base model answered correctly the trained one still answers
    (correctly / at all)."""
    b = {r["id"]: r for r in base}
    gained = [r["id"] for r in trained if r["score"] == 1.0 and b[r["id"]]["score"] != 1.0]
    lost = [r["id"] for r in trained if r["score"] != 1.0 and b[r["id"]]["score"] == 1.0]
    before = [r for r in trained if r["answers"] and b[r["id"]]["score"] == 1.0]
    return {"gained": len(gained), "lost": len(lost), "gained_ids": gained[:50], "lost_ids": lost[:50],
            "answerable_right_before": len(before),
            "still_right": _mean(float(r["score"] == 1.0) for r in before),
            "still_answered": _mean(1.0 - (r.get("false_abstention") or 0.0) for r in before)}


def plot_curves(runs: dict[str, Path], out: Path) -> Path | None:
    series = {}
    for label, run in runs.items():
        path = run / "metrics.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for key in ("loss", "reward", "rewards/qa_em/mean", "rewards/qa_f1/mean"):
            pts = [(r["step"], r[key]) for r in rows if isinstance(r.get(key), (int, float)) and "step" in r
                   and "train_runtime" not in r]
            if pts:
                series[f"{label}: {key}"] = pts
    if not series:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(series), 1, figsize=(7, 2.4 * len(series)), squeeze=False)
    for ax, (name, pts) in zip(axes[:, 0], series.items()):
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=".", linewidth=1)
        ax.set_ylabel(name, fontsize=8)
        ax.grid(alpha=0.3)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)
    return out / "curves.png"


def table(results: dict) -> str:
    cols = ("n", "accuracy", "exact_match", "f1", "citation_precision", "cited", "abstention", "false_abstention",
            "recall@k")
    lines = [f"{'model':<10} {'mode':<12} {'type':<13} " + " ".join(f"{c[:9]:>9}" for c in cols)]
    for label, modes in results.items():
        for mode, res in modes.items():
            for t, m in res["by_type"].items():
                cells = [m.get(c) for c in cols]
                lines.append(f"{label:<10} {mode:<12} {t:<13} " + " ".join(
                    f"{'-':>9}" if v is None else f"{v:>9.3f}" if isinstance(v, float) else f"{v:>9}" for v in cells))
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="runs/bench-grounded")
    ap.add_argument("--world", default=None, help="world directory (default OUT/world; generated when missing)")
    ap.add_argument("--model", action="append", default=[], metavar="LABEL=RUN_DIR",
                    help="a trained run directory to evaluate (repeatable)")
    ap.add_argument("--base", default="SmolLM2-135M-Instruct")
    ap.add_argument("--skip-train", action="store_true", help="do not train recipe (a); evaluate --model runs only")
    ap.add_argument("--modes", default="closed_book,retrieve,search")
    ap.add_argument("--trained-modes", default=None, help="modes for trained models (default: --modes)")
    ap.add_argument("--per-type", default="single=60,two_hop=40,comparison=20,unanswerable=30")
    ap.add_argument("--search-types", default="two_hop", help="question types evaluated in search mode")
    ap.add_argument("--quick", action="store_true", help="a tiny world, 10 training steps, 4 questions per type")
    args = ap.parse_args(argv)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    per_type = {k: int(v) for k, v in (p.split("=") for p in args.per_type.split(","))}
    if args.quick:
        world = make_world(Path(args.world or out / "world"), docs=300, questions=400)
        per_type = {t: 4 for t in TYPES}
    else:
        world = make_world(Path(args.world or out / "world"))
    runs = {label: Path(path) for label, path in (m.split("=", 1) for m in args.model)}
    timings = {}
    if not args.skip_train:
        from train.trainers import run

        t0 = time.perf_counter()
        sets = [f"data.source=world:{world}:retrieve:k=3:types=single,comparison,unanswerable"]
        if args.quick:
            sets += ["sft.max_steps=10", "data.eval_size=8", "sft.save_steps=100", "logging.steps=1"]
        target = out / "sft"
        if not (target / "model").exists():
            run("sft", ROOT / "data" / "configs" / "sft-grounded-world.yaml", out=target, overrides=sets, fresh=True)
        runs.setdefault("sft", target)
        timings["train_sft_s"] = round(time.perf_counter() - t0, 1)

    from eval.cache import Cache

    cache = Cache(out / "generations.sqlite")
    modes = args.modes.split(",")
    search_types = tuple(args.search_types.split(","))
    trained_modes = (args.trained_modes or args.modes).split(",")
    results: dict[str, dict] = {"base": {}}
    for mode in modes:
        results["base"][mode] = evaluate("base", args.base, mode, world, per_type, out, cache, search_types)
        print(f"base {mode}: {results['base'][mode]['seconds']} s", file=sys.stderr, flush=True)
    for label, run_dir in runs.items():
        model = merged_model(run_dir)
        results[label] = {}
        for mode in trained_modes:
            results[label][mode] = evaluate(label, model, mode, world, per_type, out, cache, search_types)
            print(f"{label} {mode}: {results[label][mode]['seconds']} s", file=sys.stderr, flush=True)

    summary = {"world": str(world), "per_type": per_type, "base": args.base, "runs": {k: str(v) for k, v in runs.items()},
               "results": {label: {mode: {k: v for k, v in res.items() if k != "records"} for mode, res in modes_.items()}
                           for label, modes_ in results.items()},
               "flips": {}}
    for label in runs:
        for mode in results[label]:
            if mode in results["base"]:
                summary["flips"][f"{label}/{mode}"] = flips(results["base"][mode]["records"], results[label][mode]["records"])
    # two-hop: search in the loop vs retrieve-then-answer, the same model
    summary["two_hop_search_minus_retrieve"] = {
        label: round((m["search"]["by_type"].get("two_hop", {}).get("exact_match") or 0)
                     - (m["retrieve"]["by_type"].get("two_hop", {}).get("exact_match") or 0), 4)
        for label, m in results.items() if "search" in m and "retrieve" in m}
    plot = plot_curves(runs, out)
    summary["curves"] = str(plot) if plot else None
    summary["timings"] = {**timings, "total_s": round(time.perf_counter() - t_start, 1)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(table(results))
    print(json.dumps({k: summary[k] for k in ("flips", "two_hop_search_minus_retrieve", "timings")}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
