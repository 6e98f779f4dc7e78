"""Does hybrid fusion hold up on collections assay was not tuned on? BM25, dense, the old
default hybrid (RRF k=60, equal weights) and candidate robust defaults, side by side on
four collections in one run.

    python bench/fusion_robustness.py                 # or: assay bench fusion_robustness
    python bench/fusion_robustness.py --json out.json

Collections (BEIR layout, built reproducibly under --out, default
~/.cache/assay/fusion-robustness; never in the repository):

- ``world``: `assay data world` (seed 0, 3,000 invented-entity documents); qrels = its test split.
- ``gsm8k``: GSM8K test. Corpus = the 1,319 reference solutions; query = the question's
  opening (its first sentences, at least 8 words, at most 300 characters: a slice of the
  question, not a paraphrase); relevant = that question's own solution.
- ``math500``: MATH-500. Corpus = the 500 solutions; query = the problem's opening, the
  same slice rule; relevant = its own solution.
- ``cranfield``: the shared Cranfield collection as it is.

Every collection's judged queries are cut into the seeded dev/test halves that
`assay eval retrieval --split` uses (seed 0). Candidates are *chosen* on dev (the default
must hold on every collection's dev half); the table reports test. Each index uses the
IndexConfig defaults and the user's embedding cache.

Figures: BM25 and dense top lists are computed once per collection (at the depth the real
search path asks for), then every fusion setting is scored with rag.fusion.fuse itself, so
a setting is exactly what `Index.search` does with it; the chosen default and the old one
are re-run through `ir_eval.evaluate_system` (the real search path) as a check.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

COLLECTIONS = ("world", "gsm8k", "math500", "cranfield")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def parse_args(argv=None):
    from core.models import cache_dir

    p = argparse.ArgumentParser(prog="bench/fusion_robustness.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(cache_dir() / "fusion-robustness"), metavar="DIR",
                   help="where the collections and their indexes are built (default: %(default)s)")
    p.add_argument("--collections", default=",".join(COLLECTIONS), help="comma-separated subset")
    p.add_argument("--world-docs", type=int, default=3000)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--no-check", action="store_true", help="skip re-running the chosen settings through Index.search")
    p.add_argument("--json", default=None, metavar="FILE", help="also write all figures as JSON")
    return p.parse_args(argv)


# ---- collections -----------------------------------------------------------------------
def query_slice(text: str, min_words: int = 8, max_chars: int = 300) -> str:
    """The question's opening: whole sentences until at least `min_words` words, cut at
    `max_chars` (at a word boundary)."""
    sentences = re.split(r"(?<=[.?!])\s+", " ".join(text.split()))
    out = []
    for s in sentences:
        out.append(s)
        if len(" ".join(out).split()) >= min_words:
            break
    q = " ".join(out)
    if len(q) > max_chars:
        q = q[:max_chars].rsplit(" ", 1)[0]
    return q


def _write_beir(root: Path, docs: list[dict], queries: list[dict], qrels: list[tuple[str, str]]) -> None:
    from core.files import atomic_dir

    with atomic_dir(root) as tmp:
        tmp = Path(tmp)
        (tmp / "qrels").mkdir()
        with open(tmp / "corpus.jsonl", "w", encoding="utf-8") as fh:
            for d in docs:
                fh.write(json.dumps(d, ensure_ascii=False) + "\n")
        with open(tmp / "queries.jsonl", "w", encoding="utf-8") as fh:
            for q in queries:
                fh.write(json.dumps(q, ensure_ascii=False) + "\n")
        with open(tmp / "qrels" / "test.tsv", "w", encoding="utf-8") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            for q, d in qrels:
                fh.write(f"{q}\t{d}\t1\n")


def pairs_collection(root: Path, source: Path, q_field: str, d_field: str, prefix: str) -> Path:
    """Question -> its own reference solution, one pair per line of `source`."""
    from core.files import iter_jsonl

    docs, queries, qrels = [], [], []
    for lineno, rec in iter_jsonl(source, ValueError):
        i = f"{prefix}{lineno:05d}"
        docs.append({"_id": f"d{i}", "title": "", "text": rec[d_field]})
        queries.append({"_id": f"q{i}", "text": query_slice(rec[q_field])})
        qrels.append((f"q{i}", f"d{i}"))
    _write_beir(root, docs, queries, qrels)
    return root


def build_collection(name: str, out: Path, world_docs: int) -> Path:
    from core.files import shared_data_root

    shared = shared_data_root()
    if name == "cranfield":
        return shared / "cranfield"
    root = out / "collections" / (f"world-{world_docs}" if name == "world" else name)
    if (root / "qrels" / "test.tsv").exists():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    if name == "world":
        from tasks.knowledge_world import WorldConfig, generate, write_world

        write_world(generate(WorldConfig(seed=0, docs=world_docs)), root)
    elif name == "gsm8k":
        pairs_collection(root, shared / "gsm8k" / "test.jsonl", "question", "answer", "g")
    elif name == "math500":
        pairs_collection(root, shared / "math500" / "test.jsonl", "problem", "solution", "m")
    else:
        raise SystemExit(f"unknown collection {name!r}; use {', '.join(COLLECTIONS)}")
    return root


# ---- scoring -------------------------------------------------------------------------------
def candidates():
    """(name, FusionConfig) of the settings compared; the first is the old default."""
    from rag.fusion import FusionConfig

    out = [("rrf k=60 (old default)", FusionConfig(method="rrf", rrf_k=60, weighting="fixed"))]
    for k in (10, 60):
        out.append((f"rrf k={k} confidence", FusionConfig(method="rrf", rrf_k=k, weighting="confidence")))
    for norm in ("minmax", "zscore"):
        out.append((f"convex {norm}", FusionConfig(method="convex", normalization=norm, weighting="fixed")))
        out.append((f"convex {norm} confidence",
                    FusionConfig(method="convex", normalization=norm, weighting="confidence")))
    out.append(("default", FusionConfig()))
    return out


def main(argv=None):
    args = parse_args(argv)
    from eval import beir, fusion_tune, ir_eval
    from eval.fusion_tune import CandidateLists, tune
    from rag import IndexConfig

    out_dir = Path(args.out)
    names = [n.strip() for n in args.collections.split(",") if n.strip()]
    report = {"command": "python bench/fusion_robustness.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "load_average_start": os.getloadavg(), "collections": {}}
    lists, cols, splits = {}, {}, {}
    for name in names:
        root = build_collection(name, out_dir, args.world_docs)
        col = beir.load(root, "test")
        dev = list(ir_eval.select_queries(col, "dev", seed=args.split_seed))
        test = list(ir_eval.select_queries(col, "test", seed=args.split_seed))
        t0 = time.perf_counter()
        index = ir_eval.corpus_index(col, out_dir / "indexes" / root.name, IndexConfig(), progress=False)
        build_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        lists[name] = CandidateLists(index, col, dev + test)
        cols[name], splits[name] = col, (dev, test)
        report["collections"][name] = {"root": str(root), "documents": len(col.corpus), "chunks": len(index),
                                       "dev_queries": len(dev), "test_queries": len(test),
                                       "index_seconds": round(build_s, 1),
                                       "lists_seconds": round(time.perf_counter() - t0, 1)}
        log(name, report["collections"][name])

    cands = candidates()
    table = {}
    for name in names:
        dev, test = splits[name]
        L = lists[name]
        row = {}
        for split, qids in (("dev", dev), ("test", test)):
            row[split] = {"bm25": L.ndcg10(qids, mode="bm25"), "dense": L.ndcg10(qids, mode="dense")}
            for cname, f in cands:
                row[split][cname] = L.ndcg10(qids, f)
        t = tune(L, dev, test)  # what `assay eval retrieval --tune` would choose here (dev only)
        row["dev"]["tuned on dev"], row["test"]["tuned on dev"] = (t.figures["dev"]["hybrid (tuned)"],
                                                                   t.figures["test"]["hybrid (tuned)"])
        report["collections"][name]["tuned_setting"] = fusion_tune.describe(t.chosen)
        table[name] = row
        log(name, json.dumps({s: {k: round(v, 4) for k, v in r.items()} for s, r in row.items()}, indent=1))
    report["ndcg@10"] = {n: {s: {k: round(v, 4) for k, v in r.items()} for s, r in row.items()}
                         for n, row in table.items()}

    # margin to the better single retriever, per candidate and split
    def margins(split):
        return {cname: {n: round(table[n][split][cname] - max(table[n][split]["bm25"], table[n][split]["dense"]), 4)
                        for n in names} for cname in [c for c, _ in cands] + ["tuned on dev"]}

    report["margin_to_best_single"] = {"dev": margins("dev"), "test": margins("test")}
    # the rule the default was chosen by: the best worst-case dev margin over the collections
    # (then the best mean); "default" is FusionConfig() itself, listed to show it is that choice
    dev_m = report["margin_to_best_single"]["dev"]
    ranking = sorted(((min(dev_m[c].values()), sum(dev_m[c].values()) / len(names), c)
                      for c, _ in cands if c != "default"), reverse=True)
    report["choice_on_dev"] = [{"setting": c, "worst_dev_margin": round(w, 4), "mean_dev_margin": round(m, 4)}
                               for w, m, c in ranking]
    chosen = dict(cands)[ranking[0][2]]
    report["default_is_the_dev_choice"] = fusion_tune.describe(chosen) == fusion_tune.describe(dict(cands)["default"])
    log("choice on dev:", json.dumps(report["choice_on_dev"], indent=1), "default is it:",
        report["default_is_the_dev_choice"])
    log(json.dumps(report["margin_to_best_single"], indent=1))

    if not args.no_check:  # the real search path, on test, for the old and the new default
        from rag.fusion import FusionConfig

        check = {}
        for name in names:
            dev, test = splits[name]
            col, index = cols[name], lists[name].index
            q = {qid: col.queries[qid] for qid in test}
            old = ir_eval.evaluate_system(index, col, q, mode="hybrid", fusion=cands[0][1], name="old")
            new = ir_eval.evaluate_system(index, col, q, mode="hybrid", fusion=FusionConfig(), name="new")
            check[name] = {"hybrid-old": round(old.metrics["ndcg@10"], 4), "hybrid-new": round(new.metrics["ndcg@10"], 4),
                           "hybrid-old_p50_ms": round(old.metrics["latency_p50_ms"], 1),
                           "hybrid-new_p50_ms": round(new.metrics["latency_p50_ms"], 1)}
        report["search_path_check_test"] = check
        log(json.dumps(check))

    lines = ["| collection (test half) | docs | queries | bm25 | dense | hybrid-old | hybrid-new | --tune |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name in names:
        t = table[name]["test"]
        c = report["collections"][name]
        lines.append(f"| {name} | {c['documents']} | {c['test_queries']} | {t['bm25']:.3f} | {t['dense']:.3f} | "
                     f"{t[cands[0][0]]:.3f} | {t['default']:.3f} | {t['tuned on dev']:.3f} |")
    report["markdown"] = "\n".join(lines)
    report["load_average_end"] = os.getloadavg()
    print(report["markdown"])
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
