"""BM25 at scale: assay's engine vs bm25s on synthetic corpora of 10^5..10^7 documents.

    python bench/bm25_scale.py                            # 100,000 and 1,000,000 documents
    python bench/bm25_scale.py --docs 100000 --json       # quick run, for machines
    assay bench bm25_scale --docs 100000,1000000

Corpus (seeded, the same bytes on every run): a Zipf(1.0) vocabulary of 200,000 made-up
words (2-4 consonant-vowel syllables, none a stopword of either engine), documents of
20-100 words; 1,000 queries of 3-6 distinct mid-frequency words (ranks whose expected
document frequency is 1-5%): a query touches ~10% of the corpus's documents,
~10^5 postings at 10^6 documents.

Both engines run the same BM25: assay's is rank-bm25's BM25Okapi; bm25s's
`method="robertson"` has the same idf and length normalisation and lacks only the
constant factor (k1 + 1) of the term-frequency part, so its scores are compared after
multiplying by it (the idf floors differ only for words in more than half the documents,
which no query holds: checked). Both tokenize with their own tokenizer (stopwords,
Snowball stemming) inside their own timing; the made-up words give both the same terms
(checked: the same vocabulary, plus the empty token bm25s adds). bm25s runs its default
numpy backend (numba is not installed here) on one thread.

Each engine runs in its own subprocess that builds the corpus first, so peak memory
(ru_maxrss) is each engine's own plus the same corpus. Timed per engine: indexing from
the texts; the 1,000 queries as one batch from strings to top 10, one thread, best of
`--repeat` rounds (a round over `--max-round-s` is not repeated: that long a round
already averages the machine's noise). In assay's process, side by side with its rounds:
the floor, bare numpy on assay's own arrays doing only the unavoidable work of each
query (add its terms' precomputed weights into a dense accumulator, argpartition the
touched entries for the top k, reset them), with the query terms given.

10^7 documents need ~20 GB (assay) and ~30 GB (bm25s) per process, 5 GB of it the texts;
the bench skips sizes whose estimate exceeds `--max-gb` (8) and prints the extrapolation
of the growth measured between the two largest sizes run instead.
"""

from __future__ import annotations

import argparse
import gc
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

K1, B = 1.5, 0.75
VOCAB, ZIPF, MIN_LEN, MAX_LEN = 200_000, 1.0, 20, 100
# peak GB per 10^6 documents of the heavier engine's process (bm25s: 2.9 measured at 10^6)
GB_PER_MILLION = 3.0


def vocabulary(size: int, seed: int) -> list[str]:
    """`size` distinct made-up words, 2-4 consonant-vowel syllables each, no stopword."""
    import bm25s.stopwords

    from rag.bm25 import STOPWORDS_EN

    stop = STOPWORDS_EN | set(bm25s.stopwords.STOPWORDS_EN)
    syllables = np.array([c + v for c in "bcdfghjklmnprstvz" for v in "aeiou"])
    rng = np.random.default_rng(seed)
    out: dict[str, None] = {}
    while len(out) < size:
        lens = rng.integers(2, 5, size)
        picks = syllables[rng.integers(0, len(syllables), (size, 4))]
        for row, n in zip(picks.tolist(), lens.tolist()):
            w = "".join(row[:n])
            if w not in stop:
                out[w] = None
    return list(out)[:size]


def synthetic(n_docs: int, n_queries: int, seed: int) -> tuple[list[str], list[str]]:
    """Documents and queries, deterministic in (n_docs, n_queries, seed)."""
    words = np.array(vocabulary(VOCAB, seed + 1), dtype=object)
    p = 1.0 / np.arange(1, VOCAB + 1) ** ZIPF
    p /= p.sum()
    cdf = np.cumsum(p)
    rng = np.random.default_rng(seed)
    texts: list[str] = []
    for lo in range(0, n_docs, 50_000):  # a slice at a time: no corpus-sized temporaries
        lens = rng.integers(MIN_LEN, MAX_LEN + 1, min(50_000, n_docs - lo))
        ranks = np.minimum(np.searchsorted(cdf, rng.random(int(lens.sum()))), VOCAB - 1)
        toks = words[ranks]
        ends = np.cumsum(lens).tolist()
        texts.extend(" ".join(toks[e - n:e]) for e, n in zip(ends, lens.tolist()))
    mean_len = (MIN_LEN + MAX_LEN) / 2
    expected_df = 1 - (1 - p) ** mean_len
    band = np.flatnonzero((expected_df >= 0.01) & (expected_df <= 0.05))
    qrng = np.random.default_rng(seed + 2)
    queries = [" ".join(words[qrng.choice(band, int(qrng.integers(3, 7)), replace=False)]) for _ in range(n_queries)]
    return texts, queries


def rss_gb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 2**20
    return 0.0


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def rounds(fns: dict, repeat: int, max_round_s: float) -> dict[str, float]:
    """Best time of each function over interleaved rounds."""
    best = {name: float("inf") for name in fns}
    done = set()
    for _ in range(repeat):
        for name, fn in fns.items():
            if name in done:
                continue
            t = time.perf_counter()
            fn()
            dt = time.perf_counter() - t
            best[name] = min(best[name], dt)
            if dt > max_round_s:
                done.add(name)
    return best


def floor_fn(index, queries: list[str], k: int):
    """The bare work of the queries on `index`'s arrays: weights into an accumulator,
    top k of the touched entries, reset. Query terms are resolved beforehand."""
    ranges = []
    for q in queries:
        terms = sorted(index._term_counts(q).items())
        ranges.append([(int(index.indptr[t]), int(index.indptr[t + 1])) for t, _ in terms])
    doc_ids, weights = index.doc_ids, index.weights
    acc = np.zeros(index.n_docs)

    def run():
        out = []
        for rs in ranges:
            parts = []
            for lo, hi in rs:
                ids = doc_ids[lo:hi]
                acc[ids] += weights[lo:hi]
                parts.append(ids)
            ids = np.concatenate(parts)
            s = acc[ids]
            out.append(ids[np.argpartition(s, len(s) - k)[len(s) - k:]] if len(s) > k else ids)
            acc[ids] = 0
        return out

    return run


def worker(engine: str, n_docs: int, n_queries: int, k: int, seed: int, repeat: int, max_round_s: float) -> dict:
    texts, queries = synthetic(n_docs, n_queries, seed)
    gc.collect()
    base = rss_gb()
    out: dict = {"engine": engine, "corpus_rss_gb": base}
    if engine == "assay":
        from rag.bm25 import BM25Config, BM25Index

        t = time.perf_counter()
        index = BM25Index(BM25Config(k1=K1, b=B)).fit(texts)
        out["index_s"] = time.perf_counter() - t
        terms = np.array([t for q in queries for t in index._term_counts(q)], dtype=np.int64)
        out["road"] = "accumulator" if index._accumulate_pays(len(queries), terms) else "sparse x dense"
        result = {}

        def ours():
            result["r"] = index.search_arrays(queries, k, threads=1)

        best = rounds({"ours": ours, "floor": floor_fn(index, queries, k)}, repeat, max_round_s)
        out["query_s"], out["floor_s"] = best["ours"], best["floor"]
        positions, scores = result["r"]
        # the accumulator's top k against the top k of every document's score (scores(),
        # the road tested equal to rank-bm25), for the first queries
        same = 0
        for i, q in enumerate(queries[:50]):
            full = index.scores(q)
            top = np.lexsort((np.arange(len(full)), -full))[:k]
            same += np.array_equal(top, positions[i]) and np.array_equal(full[top], scores[i])
        out["equal_to_full_scores"] = [same, min(50, len(queries))]
        df = np.diff(index.indptr)
        qdf = [int(df[t]) for q in queries for t in index._term_counts(q)]
        out.update(vocab=len(index.vocab), postings=int(len(index.doc_ids)), max_query_df=max(qdf),
                   postings_per_query=sum(qdf) / len(queries))
    else:
        import bm25s
        import Stemmer

        stemmer = Stemmer.Stemmer("english")
        t = time.perf_counter()
        tokens = bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False)
        retriever = bm25s.BM25(method="robertson", k1=K1, b=B)
        retriever.index(tokens, show_progress=False)
        del tokens
        out["index_s"] = time.perf_counter() - t
        result = {}

        def theirs():
            qt = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
            result["r"] = retriever.retrieve(qt, k=k, show_progress=False, n_threads=1)

        out["query_s"] = rounds({"bm25s": theirs}, repeat, max_round_s)["bm25s"]
        positions, scores = result["r"]
        scores = scores.astype(np.float64) * (K1 + 1)  # robertson's tf part lacks (k1 + 1)
        out["vocab"] = len(retriever.vocab_dict)
    out["peak_rss_gb"] = peak_gb()
    out["positions"], out["scores"] = np.asarray(positions).tolist(), np.asarray(scores).tolist()
    return out


def run_worker(engine: str, n: int, args) -> dict:
    cmd = [sys.executable, __file__, "--worker", engine, "--docs", str(n), "--queries", str(args.queries),
           "--k", str(args.k), "--seed", str(args.seed), "--repeat", str(args.repeat), "--max-round-s", str(args.max_round_s)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{engine} worker failed at {n} documents:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def agreement(a: dict, b: dict, rel_tol: float = 1e-6) -> dict:
    """Top-k agreement of assay (`a`) and bm25s (`b`). Synthetic documents tie a lot (one
    shared word, the same length: the same score), and each engine orders ties its own
    way (assay by position; bm25s's float32 scores also merge near-ties), so besides
    identical lists it counts lists equal up to ties: the same score at every rank
    (within float32 rounding) and the same documents in every group of tied scores but
    the last, which the cut at k may split differently."""
    pa, pb = np.asarray(a["positions"]), np.asarray(b["positions"])
    sa, sb = np.asarray(a["scores"]), np.asarray(b["scores"])
    identical = same_set = up_to_ties = 0
    for x, y, u, v in zip(pa, pb, sa, sb):
        m = int((x >= 0).sum())  # bm25s fills k slots even past the matching documents
        x, y, u, v = x[:m], y[:m], u[:m], v[:m]
        identical += np.array_equal(x, y)
        same_set += set(x.tolist()) == set(y.tolist())
        if not np.allclose(u, v, rtol=rel_tol, atol=0):
            continue
        group = np.concatenate([[0], np.cumsum(~np.isclose(u[1:], u[:-1], rtol=rel_tol, atol=0))])
        up_to_ties += all(set(x[group == g].tolist()) == set(y[group == g].tolist()) for g in range(group[-1]))
    diff = np.abs(sa - sb)[pa >= 0]
    return {"queries": len(pa), "identical_top_k": int(identical), "same_top_k_set": int(same_set),
            "equal_up_to_ties": int(up_to_ties), "max_abs_score_diff": float(diff.max()),
            "max_rel_score_diff": float((diff / np.abs(sb[pa >= 0]).clip(1e-300)).max())}


def measure(n: int, args) -> dict:
    ours = run_worker("assay", n, args)
    theirs = run_worker("bm25s", n, args)
    q = args.queries
    row = {
        "docs": n, "postings": ours["postings"], "postings_per_query": round(ours["postings_per_query"]),
        "vocab": {"assay": ours["vocab"], "bm25s": theirs["vocab"]}, "road": ours["road"],
        "max_query_df_fraction": ours["max_query_df"] / n,
        "index_s": {"assay": ours["index_s"], "bm25s": theirs["index_s"]},
        "qps": {"assay": q / ours["query_s"], "bm25s": q / theirs["query_s"], "floor": q / ours["floor_s"]},
        "peak_rss_gb": {"assay": ours["peak_rss_gb"], "bm25s": theirs["peak_rss_gb"]},
        "corpus_rss_gb": {"assay": ours["corpus_rss_gb"], "bm25s": theirs["corpus_rss_gb"]},
        "agreement": agreement(ours, theirs),
        "assay_top_k_equal_to_full_scores": ours["equal_to_full_scores"],
    }
    row["ratios"] = {
        "index_time_bm25s_over_assay": row["index_s"]["bm25s"] / row["index_s"]["assay"],
        "qps_assay_over_bm25s": row["qps"]["assay"] / row["qps"]["bm25s"],
        "floor_qps_over_assay": row["qps"]["floor"] / row["qps"]["assay"],
        "peak_rss_assay_over_bm25s": row["peak_rss_gb"]["assay"] / row["peak_rss_gb"]["bm25s"],
    }
    r, a = row["ratios"], row["agreement"]
    row["targets"] = {
        "index_time_le_bm25s": r["index_time_bm25s_over_assay"] >= 1,
        "qps_ge_3x_bm25s": r["qps_assay_over_bm25s"] >= 3,
        "qps_within_2x_of_floor": r["floor_qps_over_assay"] <= 2,
        "peak_rss_le_bm25s": r["peak_rss_assay_over_bm25s"] <= 1,
        "same_top_k": a["equal_up_to_ties"] == a["queries"] and row["max_query_df_fraction"] < 0.5
        and row["assay_top_k_equal_to_full_scores"][0] == row["assay_top_k_equal_to_full_scores"][1],
    }
    return row


def growth(rows: list[dict]) -> dict:
    """Power-law exponents between the two largest measured sizes (1.0 = linear)."""
    if len(rows) < 2:
        return {}
    a, b = rows[-2], rows[-1]
    span = np.log(b["docs"] / a["docs"])

    def exp(get):
        return round(float(np.log(get(b) / get(a)) / span), 2)

    return {
        "index_s": {e: exp(lambda r, e=e: r["index_s"][e]) for e in ("assay", "bm25s")},
        "seconds_per_query": {e: exp(lambda r, e=e: 1 / r["qps"][e]) for e in ("assay", "bm25s", "floor")},
        "peak_rss_gb": {e: exp(lambda r, e=e: r["peak_rss_gb"][e]) for e in ("assay", "bm25s")},
    }


def extrapolate(rows: list[dict], n: int) -> dict:
    """Index time, seconds per query and peak memory at `n` documents, each on the line
    through the two largest sizes run: all three grow with the postings (linear in the
    documents here) on top of fixed costs, which a power law would misread as slower growth."""
    a, b = rows[-2], rows[-1]

    def line(get):
        slope = max(0.0, (get(b) - get(a)) / (b["docs"] - a["docs"]))  # noise can tilt tiny sizes down
        return get(b) + slope * (n - b["docs"])

    return {"docs": n, "extrapolated": True,
            "index_s": {e: line(lambda r, e=e: r["index_s"][e]) for e in ("assay", "bm25s")},
            "qps": {e: 1 / line(lambda r, e=e: 1 / r["qps"][e]) for e in ("assay", "bm25s", "floor")},
            "peak_rss_gb": {e: line(lambda r, e=e: r["peak_rss_gb"][e]) for e in ("assay", "bm25s")}}


def print_table(result: dict) -> None:
    print(f"BM25 at scale: {result['queries']} queries, top {result['k']}, one thread, best of {result['repeat']} "
          f"(rounds over {result['max_round_s']:g} s run once); seed {result['seed']}")
    head = (f"{'docs':>10} {'engine':<7}{'index s':>9}{'queries/s':>11}{'peak RSS GB':>13}")
    for row in result["rows"]:
        a, r = row["agreement"], row["ratios"]
        print(f"\n{row['docs']:,} documents, {row['postings']:,} postings, {row['postings_per_query']:,} postings "
              f"per query; assay road: {row['road']}")
        print(head)
        for e in ("assay", "bm25s"):
            print(f"{row['docs']:>10,} {e:<7}{row['index_s'][e]:>9.1f}{row['qps'][e]:>11,.1f}{row['peak_rss_gb'][e]:>13.2f}")
        print(f"{row['docs']:>10,} {'floor':<7}{'':>9}{row['qps']['floor']:>11,.1f}{'':>13}   (bare numpy on assay's arrays)")
        print(f"  ratios: index time bm25s/assay {r['index_time_bm25s_over_assay']:.2f}x; queries/s assay/bm25s "
              f"{r['qps_assay_over_bm25s']:.1f}x; floor/assay {r['floor_qps_over_assay']:.2f}x; peak RSS assay/bm25s "
              f"{r['peak_rss_assay_over_bm25s']:.2f} (corpus alone {row['corpus_rss_gb']['assay']:.2f} GB)")
        print(f"  agreement: {a['equal_up_to_ties']}/{a['queries']} top {result['k']} lists equal up to ties "
              f"({a['identical_top_k']} identical, {a['same_top_k_set']} same sets); max |score diff| {a['max_abs_score_diff']:.2e} "
              f"(relative {a['max_rel_score_diff']:.1e}, bm25s scores are float32); vocabulary "
              f"{row['vocab']['assay']:,} vs {row['vocab']['bm25s']:,}; largest query-word df "
              f"{row['max_query_df_fraction']:.1%} of documents; assay's top {result['k']} == top of all scores "
              f"(float64, exact) on {row['assay_top_k_equal_to_full_scores'][0]}/"
              f"{row['assay_top_k_equal_to_full_scores'][1]} queries")
        t = row["targets"]
        print("  targets: " + ", ".join(f"{name} {'MET' if ok else 'NOT MET'}" for name, ok in t.items()))
    if result["growth"]:
        g = result["growth"]
        print("\ngrowth exponents between the two largest sizes (time or memory ~ docs^x):")
        print(f"  index time   assay {g['index_s']['assay']}, bm25s {g['index_s']['bm25s']}")
        print(f"  per query    assay {g['seconds_per_query']['assay']}, bm25s {g['seconds_per_query']['bm25s']}, "
              f"floor {g['seconds_per_query']['floor']}")
        print(f"  peak RSS     assay {g['peak_rss_gb']['assay']}, bm25s {g['peak_rss_gb']['bm25s']}")
    for x in result["extrapolated"]:
        print(f"  {x['docs']:,} documents (not run; extrapolated on the line through the two largest sizes): "
              f"index assay {x['index_s']['assay']:.0f} s vs bm25s {x['index_s']['bm25s']:.0f} s; queries/s assay "
              f"{x['qps']['assay']:,.1f} vs bm25s {x['qps']['bm25s']:,.2f} (floor {x['qps']['floor']:,.1f}); peak RSS "
              f"assay {x['peak_rss_gb']['assay']:.1f} GB vs bm25s {x['peak_rss_gb']['bm25s']:.1f} GB")


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--docs", default="100000,1000000", help="comma-separated corpus sizes (default 100000,1000000)")
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--max-round-s", type=float, default=30.0, help="a query round longer than this is not repeated")
    ap.add_argument("--max-gb", type=float, default=8.0, help="largest estimated process size to run")
    ap.add_argument("--extrapolate", default="10000000", help="sizes to extrapolate to when not run (comma-separated)")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--worker", choices=("assay", "bm25s"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    sizes = [int(float(x)) for x in args.docs.split(",")]
    if args.worker:
        out = worker(args.worker, sizes[0], args.queries, args.k, args.seed, args.repeat, args.max_round_s)
        print(json.dumps(out))
        return out

    rows, skipped = [], []
    for n in sizes:
        if n / 1e6 * GB_PER_MILLION > args.max_gb:
            skipped.append(n)
            continue
        rows.append(measure(n, args))
    grow = growth(rows)
    extra = {int(float(x)) for x in args.extrapolate.split(",") if x} - set(sizes)
    result = {"queries": args.queries, "k": args.k, "seed": args.seed, "repeat": args.repeat,
              "max_round_s": args.max_round_s, "max_gb": args.max_gb, "rows": rows, "growth": grow,
              "extrapolated": [extrapolate(rows, n) for n in sorted(set(skipped) | extra) if n > rows[-1]["docs"]]
              if grow else [],
              "meets_targets": bool(rows) and all(all(r["targets"].values()) for r in rows if r["docs"] >= 1_000_000)}
    if args.json:
        print(json.dumps(result))
    else:
        print_table(result)
    return result


if __name__ == "__main__":
    main()
