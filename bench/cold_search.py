"""Cold `assay search`: a new process per query, hybrid vs BM25, numpy query encoder vs torch.

    python bench/cold_search.py [--data ../shared/data/cranfield] [--docs 200] [--runs 5] [--json]
    assay bench cold_search

Builds a small index (the first `--docs` Cranfield documents, in a temporary directory),
then times `python -m assay search QUERY --index DIR --mode M` as a subprocess, wall clock
from start to exit, interleaving the configurations run by run:

    bm25              BM25 only (no model at all)
    hybrid            BM25 + dense; the query vector from the numpy encoder (the default)
    hybrid-torch      the same with ASSAY_LIGHT_QUERY_ENCODER=0: sentence-transformers
                      and torch load the model (what every hybrid search did before)

Reports the median and the minimum per configuration (the machine is shared: the minimum
is the least disturbed run), checks that hybrid and hybrid-torch return the same hits,
and lists the top imports of one cold hybrid search (`python -X importtime`, the self
time of each top-level package's modules summed). "Cold" is a new process each time; the operating
system's file cache stays warm (dropping it would slow everyone else's jobs).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.files import shared_data_root  # noqa: E402

QUERY = "what similarity laws must be obeyed when constructing aeroelastic models of heated high speed aircraft"
CONFIGS = {
    "bm25": ("bm25", {}),
    "hybrid": ("hybrid", {}),
    "hybrid-torch": ("hybrid", {"ASSAY_LIGHT_QUERY_ENCODER": "0"}),
}


def build_index(data: Path, docs: int, where: Path) -> Path:
    corpus = where / "corpus.jsonl"
    with open(data / "corpus.jsonl", encoding="utf-8") as src, open(corpus, "w", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= docs:
                break
            dst.write(line)
    index = where / "index"
    proc = subprocess.run([sys.executable, "-m", "assay", "index", str(corpus), "--index", str(index), "--quiet"],
                          cwd=ROOT, capture_output=True, text=True)
    if proc.returncode:
        sys.exit(f"cold_search: building the index failed: {proc.stderr.strip().splitlines()[-1:]}")
    return index


def search_cmd(index: Path, mode: str, *extra: str) -> list[str]:
    return [sys.executable, *extra, "-m", "assay", "search", QUERY, "--index", str(index), "--mode", mode, "--json"]


def run_once(index: Path, mode: str, env: dict[str, str]) -> tuple[float, list]:
    t0 = time.perf_counter()
    proc = subprocess.run(search_cmd(index, mode), cwd=ROOT, capture_output=True, text=True, env={**os.environ, **env})
    seconds = time.perf_counter() - t0
    if proc.returncode:
        sys.exit(f"cold_search: assay search failed: {proc.stderr.strip()}")
    hits = [(h["doc_id"], h["start"], round(h["score"], 5)) for h in json.loads(proc.stdout)["hits"]]
    return seconds, hits


def top_imports(index: Path, n: int = 12) -> list[tuple[str, float]]:
    """Import time (s) per top-level package in one cold hybrid search: the sum of the
    self time of its modules (so numpy counts as numpy even when rag imported it)."""
    proc = subprocess.run(search_cmd(index, "hybrid", "-X", "importtime"), cwd=ROOT, capture_output=True, text=True)
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        own, _, raw = line[len("import time:"):].split("|", 2)
        package = raw.strip().split(".")[0]
        totals[package] = totals.get(package, 0.0) + int(own) / 1e6
    return sorted(totals.items(), key=lambda kv: -kv[1])[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(shared_data_root() / "cranfield"))
    ap.add_argument("--docs", type=int, default=200)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    env = {"HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    os.environ.update({k: v for k, v in env.items() if k not in os.environ})
    with tempfile.TemporaryDirectory(prefix="assay-cold-search-") as tmp:
        index = build_index(Path(args.data), args.docs, Path(tmp))
        times: dict[str, list[float]] = {name: [] for name in CONFIGS}
        hits: dict[str, list] = {}
        for _ in range(args.runs):
            for name, (mode, extra) in CONFIGS.items():
                seconds, got = run_once(index, mode, extra)
                times[name].append(seconds)
                hits.setdefault(name, got)
        imports = top_imports(index)
    load = os.getloadavg()[0]
    result = {
        "docs": args.docs, "runs": args.runs, "load_average_1min": round(load, 2),
        "seconds": {name: {"median": round(statistics.median(t), 2), "min": round(min(t), 2),
                           "all": [round(x, 2) for x in t]} for name, t in times.items()},
        "same_hits_hybrid_vs_torch": hits["hybrid"] == hits["hybrid-torch"],
        "top_imports_hybrid_s": [(name, round(s, 3)) for name, s in imports],
    }
    if args.json:
        print(json.dumps(result))
        return
    print(f"cold `assay search` on {args.docs} Cranfield documents, {args.runs} runs each "
          f"(1-min load average {load:.1f} on {os.cpu_count()} cores)")
    for name, s in result["seconds"].items():
        print(f"  {name:<13} median {s['median']:6.2f} s   min {s['min']:6.2f} s   runs {s['all']}")
    print(f"  hybrid and hybrid-torch return the same hits: {result['same_hits_hybrid_vs_torch']}")
    print("top imports of one cold hybrid search (s, self time of each package's modules):")
    for name, s in result["top_imports_hybrid_s"]:
        print(f"  {name:<28} {s:6.3f}")


if __name__ == "__main__":
    main()
