"""Benchmark: `assay data sample`'s filters -- right on labelled traces, and fast.

1. Conformance: every filter on its rows of data/conformance/filters/filters.jsonl
   (GSM8K, MATH-500 and HumanEval text, verbatim, edited and constructed; see its
   builder): precision and recall of "drop", the misses listed. Decontamination runs
   side by side with open-r1's rule (scripts/decontaminate.py: lower-cased,
   whitespace-split 8-grams of the benchmark problems, any shared one drops the row),
   written here from its description, against the same benchmarks.
2. Throughput of the filters alone (no generation, no verifier): 2,000 traces of ~2,000
   characters of English math reasoning (GSM8K train solutions run together, in groups of
   8 like one prompt's samples) through every per-trace filter, decontamination against
   every offline benchmark (GSM8K test, MATH-500, AIME24, AMC23, HumanEval) and
   near-duplicate detection. Best of `--rounds`; the index build is timed apart.

    python bench/data_filters.py [--rounds 3] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from core.files import shared_data_root  # noqa: E402
from recipes import filters as F  # noqa: E402
from recipes.decontamination import BENCHMARKS, benchmark_texts, build  # noqa: E402

CORPUS = ROOT / "data" / "conformance" / "filters" / "filters.jsonl"


class OpenR1Rule:
    """open-r1's decontamination rule: lower-case, collapse whitespace, word 8-grams."""

    def __init__(self, texts: list[str], n: int = 8) -> None:
        self.n = n
        self.grams = {g for t in texts for g in self._grams(t)}

    def _grams(self, text: str) -> set[str]:
        words = " ".join(text.lower().strip().split()).split()
        return {" ".join(words[i:i + self.n]) for i in range(len(words) - self.n + 1)}

    def drops(self, text: str) -> bool:
        return bool(self._grams(text) & self.grams)


def confusion(pairs: list[tuple[bool, bool]]) -> dict:
    tp = sum(p and t for p, t in pairs)
    fp = sum(p and not t for p, t in pairs)
    fn = sum(t and not p for p, t in pairs)
    return {"n": len(pairs), "precision": tp / (tp + fp) if tp + fp else None, "recall": tp / (tp + fn) if tp + fn else None,
            "fp": fp, "fn": fn}


def conformance(rows: list[dict]) -> dict:
    dec = build(list(BENCHMARKS))
    peer = OpenR1Rule([t for b in BENCHMARKS for t in benchmark_texts(b)])
    rules = {
        "contaminated": lambda t: dec.match(t) is not None,
        "language": lambda t: F.language(t, "en") is not None,
        "repetition": lambda t: F.repetition(t) is not None,
        "code_blocks": lambda t: F.code_blocks(t) is not None,
        "long_paragraphs": lambda t: F.long_paragraphs(t) is not None,
    }
    out: dict = {}
    for name, rule in rules.items():
        mine = [r for r in rows if r["filter"] == name]
        verdicts = [(rule(r["text"]), r["label"]) for r in mine]
        out[name] = {"assay": confusion(verdicts),
                     "misses": [{"id": r["id"], "label": r["label"], "provenance": r["provenance"]}
                                for r, (p, t) in zip(mine, verdicts) if p != t]}
        if name == "contaminated":
            out[name]["open-r1 rule (8-gram)"] = confusion([(peer.drops(r["text"]), r["label"]) for r in mine])
    return out


def traces(n: int = 2000, chars: int = 2000) -> list[str]:
    sols = [json.loads(line)["answer"] for line in open(shared_data_root() / "gsm8k" / "train.jsonl", encoding="utf-8")]
    out, i = [], 0
    while len(out) < n:
        parts, size = [], 0
        while size < chars:
            text = sols[i % len(sols)].replace("####", "The answer is")
            parts.append(text)
            size += len(text) + 2
            i += 1
        out.append("\n\n".join(parts)[:chars])
    return out


def throughput(rounds: int) -> dict:
    t0 = time.perf_counter()
    dec = build(list(BENCHMARKS))
    build_s = time.perf_counter() - t0
    texts = traces()
    cfg = F.FilterConfig()
    best = float("inf")
    dropped = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        dropped = 0
        for g in range(0, len(texts), 8):
            dedup = F.NearDuplicates(cfg.dedup_jaccard)
            for j, text in enumerate(texts[g:g + 8]):
                read = F.Words(text)  # as the sampler does: read once, shared by every filter
                why = (dec.match(text, read) and "contaminated") or F.check_trace(
                    text, config=cfg, finish_reason="stop", extracted="1", words=read) or dedup.check(text, f"{g}/{j}", read)
                dropped += why is not None
        best = min(best, time.perf_counter() - t0)
    return {"traces": len(texts), "chars_each": 2000, "index_build_s": round(build_s, 3),
            "benchmark_items": dict(dec.sources), "seconds": round(best, 3), "traces_per_s": round(len(texts) / best),
            "dropped": dropped}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    rows = [json.loads(line) for line in open(CORPUS, encoding="utf-8")]
    conf = conformance(rows)
    print(f"Conformance ({CORPUS.relative_to(ROOT)}, {len(rows)} labelled rows): precision / recall of 'drop'")
    print(f"{'filter':<16} {'rows':>5} {'precision':>10} {'recall':>8} {'FP':>4} {'FN':>4}")
    for name, res in conf.items():
        for tool, c in res.items():
            if tool == "misses":
                continue
            label = name if tool == "assay" else f"  {tool}"
            p = "–" if c["precision"] is None else f"{c['precision']:.3f}"
            r = "–" if c["recall"] is None else f"{c['recall']:.3f}"
            print(f"{label:<16} {c['n']:>5} {p:>10} {r:>8} {c['fp']:>4} {c['fn']:>4}")
        for m in res["misses"][:6]:
            print(f"    miss {m['id']} (label {'drop' if m['label'] else 'keep'}): {m['provenance'][:90]}")
    tp = throughput(args.rounds)
    print(f"\nThroughput (filters alone): {tp['traces']} traces of {tp['chars_each']} chars in {tp['seconds']} s = "
          f"{tp['traces_per_s']} traces/s (best of {args.rounds}); decontamination index of "
          f"{sum(tp['benchmark_items'].values())} benchmark items built in {tp['index_build_s']} s")
    if args.json:
        Path(args.json).write_text(json.dumps({"conformance": conf, "throughput": tp}, indent=2))


if __name__ == "__main__":
    main()
