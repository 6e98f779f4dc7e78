"""`assay data ...`: build training data. Parses arguments and calls the front doors.

    assay data sample --task gsm8k --model M --k 8 --out runs/data/gsm8k   # verified, filtered, decontaminated
    assay data sample --task math500 --traces teacher.jsonl --out runs/data/distill
    assay data decontaminate train.jsonl --against gsm8k,math500 [--out clean.jsonl]
    assay data prefs --model M --data gsm8k --k 4 --out prefs.jsonl         # the pairs of `data sample`
    assay data world --out data/world                                        # the offline knowledge world
"""

from __future__ import annotations

import argparse
import json
import sys

from core.options import NON_NEGATIVE_FLOAT, POSITIVE_INT, int_at_least
from train.cli import print_summary


def register(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("data", help="build training data: verified samples, decontamination, preference pairs, "
                                    "the offline knowledge world")
    d.set_defaults(help_parser=d)
    dsub = d.add_subparsers(dest="data_command", metavar="COMMAND")

    s = dsub.add_parser(
        "sample", help="sample k completions per prompt (or read a teacher's traces), keep the verified and readable "
                       "ones: SFT data, DPO pairs, what was dropped and why",
        description="Scores every completion with the task's own scorer (the one `assay eval` uses), then filters: "
                    "truncated, repetition, language, code_blocks, long_paragraphs, near_duplicate, contaminated "
                    "(recipes.filters). Writes DIR/sft.jsonl, pairs.jsonl, dropped.jsonl and manifest.json atomically; "
                    "generations are cached, so a rerun or a resumed run generates only what is missing.")
    s.add_argument("--task", required=True, help="gsm8k, math500, humaneval, reasoning_gym:NAME[:key=value...], "
                                                 "world:DIR, a YAML suite, ... (see `assay eval suites`)")
    src = s.add_mutually_exclusive_group(required=True)
    src.add_argument("--model", "-m", help="the model that samples (name, path or hub id)")
    src.add_argument("--traces", metavar="FILE", help="a teacher's traces: JSONL with the task's fields (or its id) "
                                                      "plus `completion` or `completions`")
    s.add_argument("--out", required=True, metavar="DIR", help="output directory (written atomically)")
    s.add_argument("--split", default=None, help="the task's split (default: train where it has one)")
    s.add_argument("--offset", type=int_at_least(0), default=0, help="skip the first N rows (e.g. those you evaluate on)")
    s.add_argument("--limit", type=POSITIVE_INT, default=None, help="use at most N prompts")
    s.add_argument("--k", "-k", type=POSITIVE_INT, default=8, help="completions per prompt (default 8)")
    s.add_argument("--temperature", type=NON_NEGATIVE_FLOAT, default=0.8, help="default 0.8")
    s.add_argument("--top-p", type=float, default=0.95, help="default 0.95")
    s.add_argument("--max-new-tokens", type=POSITIVE_INT, default=512, help="default 512")
    s.add_argument("--batch-size", type=POSITIVE_INT, default=8)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--backend", choices=("auto", "transformers", "vllm"), default="auto")
    s.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS", help="generate on a Ray cluster")
    _filter_args(s)
    s.add_argument("--pairs-per-prompt", type=int_at_least(0), default=1)
    s.add_argument("--cache", default=None, help="generation/score cache file (default ~/.cache/assay/eval/cache.sqlite)")
    s.add_argument("--data-root", default=None, help="folder with gsm8k/, math500/, ... (default: the shared data)")
    s.add_argument("--json", action="store_true", help="print the manifest as one JSON object")
    s.set_defaults(handler=_run_sample)

    c = dsub.add_parser("decontaminate", help="drop the rows of a JSONL that share a word n-gram with a benchmark's "
                                              "test items (or an index's corpus)",
                        description="Checks every string field of each row (recipes.decontamination). Without --out, "
                                    "only reports; with --out, writes the clean rows (atomically) and DIR-less stats.")
    c.add_argument("file", help="a JSONL file, or an assay index directory (its chunks are checked)")
    c.add_argument("--against", default="gsm8k,math500,aime24,amc23,humaneval",
                   help="comma-separated benchmarks (gsm8k, math500, aime24, amc23, humaneval, world:DIR) and JSONL files")
    c.add_argument("--ngram", type=POSITIVE_INT, default=13)
    c.add_argument("--out", default=None, help="write the rows that are not contaminated here")
    c.add_argument("--data-root", default=None)
    c.add_argument("--json", action="store_true")
    c.set_defaults(handler=_run_decontaminate)

    pr = dsub.add_parser("prefs", help="DPO pairs: `data sample`'s pairs.jsonl (a verified completion as chosen, a "
                                       "failed one as rejected), written to one file",
                         description="The same sampling, scoring and filters as `assay data sample`; writes its pairs.")
    pr.add_argument("--model", "-m", required=True)
    pr.add_argument("--data", required=True, help="the task (as --task of `data sample`)")
    pr.add_argument("--limit", type=POSITIVE_INT, default=None, help="use at most N prompts")
    pr.add_argument("--k", type=POSITIVE_INT, default=4, help="completions per prompt (default 4)")
    pr.add_argument("--temperature", type=NON_NEGATIVE_FLOAT, default=0.8)
    pr.add_argument("--max-new-tokens", type=POSITIVE_INT, default=256)
    pr.add_argument("--threshold", type=float, default=1.0, help="a completion is right when its score >= this")
    pr.add_argument("--pairs-per-prompt", type=int_at_least(1), default=1)
    pr.add_argument("--batch-size", type=POSITIVE_INT, default=8)
    pr.add_argument("--seed", type=int, default=0)
    pr.add_argument("--out", required=True, help="output JSONL")
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(handler=_run_prefs)

    w = dsub.add_parser("world", help="generate the offline knowledge-world RAG QA benchmark (tasks.knowledge_world)",
                        description="Writes DIR/corpus.jsonl, queries.jsonl, qrels/{train,dev,test}.tsv (BEIR), "
                        "questions.jsonl and world.json: invented entities, so only retrieval can answer.")
    w.add_argument("--out", required=True, metavar="DIR", help="output directory (written atomically)")
    w.add_argument("--seed", type=int, default=0, help="seed (default 0); the same seed gives identical files")
    w.add_argument("--docs", type=int, default=3000, help="documents (default 3000)")
    w.add_argument("--questions", type=int, default=4000, help="questions (default 4000)")
    w.add_argument("--force", action="store_true", help="replace an existing non-empty DIR")
    w.add_argument("--json", action="store_true")
    w.set_defaults(handler=_run_world)


def _filter_args(p: argparse.ArgumentParser) -> None:
    from recipes.filters import FILTERS

    p.add_argument("--no-filter", action="append", default=[], metavar="NAME", choices=FILTERS,
                   help=f"switch a filter off (repeatable): {', '.join(FILTERS)}")
    p.add_argument("--threshold", type=float, default=1.0, help="verified: least task score kept (default 1)")
    p.add_argument("--decontaminate", action="append", default=None, metavar="NAME|FILE",
                   help="benchmark or JSONL to decontaminate against (repeatable; default: every offline benchmark)")
    p.add_argument("--ngram", type=POSITIVE_INT, default=13, help="decontamination n-gram in words (default 13)")
    p.add_argument("--max-paragraph-chars", type=POSITIVE_INT, default=3000)
    p.add_argument("--dedup-jaccard", type=float, default=0.8)
    p.add_argument("--language", default="en", help="the prompts' language (ISO 639-1) for the language filter")


def _run_sample(args: argparse.Namespace) -> int:
    from recipes.filters import FILTERS, FilterConfig
    from recipes.sampling import SampleConfig, sample

    filters = FilterConfig(enabled=[f for f in FILTERS if f not in args.no_filter], threshold=args.threshold,
                           max_paragraph_chars=args.max_paragraph_chars, dedup_jaccard=args.dedup_jaccard)
    cfg = SampleConfig(task=args.task, model=args.model, traces=args.traces, split=args.split, offset=args.offset,
                       limit=args.limit, k=args.k, temperature=args.temperature, top_p=args.top_p,
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed,
                       backend=args.backend, language=args.language,
                       decontaminate=args.decontaminate if args.decontaminate is not None else ["default"],
                       ngram=args.ngram, pairs_per_prompt=args.pairs_per_prompt, filters=filters)
    manifest = sample(cfg, args.out, data_root=args.data_root, cache=args.cache, progress=not args.json, ray=args.ray)
    if args.json:
        print(json.dumps(manifest, default=str))
        return 0
    counts = manifest["counts"]
    n = manifest.get("sampling", {}) and manifest["sampling"]["k"]
    print(f"{counts['prompts']} prompts, {counts['samples']} samples ({counts['generated']} generated, "
          f"{counts['from_cache']} from the cache): kept {counts['kept']}, pairs {counts['pairs']}", file=sys.stderr)
    for name, k in counts["dropped"].items():
        print(f"  dropped by {name:<16} {k}")
    passk = f", pass@{n} {manifest.get(f'pass@{n}'):.3f}" if n and n > 1 and manifest.get(f"pass@{n}") is not None else ""
    if manifest.get("pass@1") is not None:
        print(f"  pass@1 {manifest['pass@1']:.3f}{passk}")
    print(manifest["out"])
    return 0


def _run_decontaminate(args: argparse.Namespace) -> int:
    from recipes.decontamination import decontaminate_file

    stats = decontaminate_file(args.file, [a for a in args.against.split(",") if a], out=args.out, ngram=args.ngram,
                               data_root=args.data_root)
    print_summary(stats, args.json)
    return 0


def _run_prefs(args: argparse.Namespace) -> int:
    import shutil
    import tempfile
    from pathlib import Path

    from core.files import atomic_open
    from recipes.filters import FilterConfig
    from recipes.sampling import SampleConfig, sample

    cfg = SampleConfig(task=args.data, model=args.model, limit=args.limit, k=args.k, temperature=args.temperature,
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, seed=args.seed,
                       pairs_per_prompt=args.pairs_per_prompt, filters=FilterConfig(threshold=args.threshold))
    tmp = Path(tempfile.mkdtemp(prefix="assay-prefs-"))
    try:
        manifest = sample(cfg, tmp / "run", progress=not args.json)
        with atomic_open(args.out, "w") as fh:
            fh.write((tmp / "run" / "pairs.jsonl").read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print_summary({"out": args.out, "prompts": manifest["counts"]["prompts"], "samples": manifest["counts"]["samples"],
                   "pass@1": manifest["pass@1"], "pairs": manifest["counts"]["pairs"]}, args.json)
    return 0


def _run_world(args: argparse.Namespace) -> int:
    from tasks.knowledge_world import WorldConfig, generate, write_world

    world = generate(WorldConfig(seed=args.seed, docs=args.docs, questions=args.questions))
    out = write_world(world, args.out, force=args.force)
    print_summary({"out": str(out), **world.stats()}, args.json)
    return 0


def register_pipeline(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pipeline", help="run a multi-stage recipe (SFT, GRPO, PPO, DPO, sampling, eval) as one "
                                        "resumable run")
    p.set_defaults(help_parser=p)
    psub = p.add_subparsers(dest="pipeline_command", metavar="COMMAND")
    r = psub.add_parser("run", help="run a pipeline file's stages in order; finished, unchanged stages are skipped",
                        description="Each stage's output (a model, a data file) is a later stage's input by reference "
                                    "(${stage.model}, ${stage.sft}); a rerun skips finished stages whose settings and "
                                    "inputs are unchanged, and a killed run resumes in the stage it was in. Writes "
                                    "OUT/report.html with every eval stage's models side by side (95% intervals).")
    r.add_argument("config", help="the pipeline file (YAML), e.g. data/configs/r1-arith.yaml")
    r.add_argument("--out", default=None, help="run directory (default: runs/<pipeline name>)")
    r.add_argument("--from", dest="redo_from", default=None, metavar="STAGE", help="redo this stage and all after it")
    r.add_argument("--cache", default=None, help="generation/score cache file for sample and eval stages")
    r.add_argument("--data-root", default=None)
    r.add_argument("--json", action="store_true")
    r.set_defaults(handler=_run_pipeline)


def _run_pipeline(args: argparse.Namespace) -> int:
    from pathlib import Path

    from recipes.pipeline import Pipeline

    pipe = Pipeline(args.config, args.out or Path("runs") / Path(args.config).stem, progress=not args.json,
                    cache=args.cache, data_root=args.data_root)
    summary = pipe.run(redo_from=args.redo_from)
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        for s in summary["stages"]:
            state = "skipped (unchanged)" if s.get("skipped") else f"{s['wall_s']:.0f} s wall, {s['cpu_s']:.0f} s CPU"
            print(f"  {s['name']:<12} {s['kind']:<7} {state}")
        print(summary["report"])
    return 0
