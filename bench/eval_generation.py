"""Generation throughput: assay's Generator vs a bare batched `model.generate`.

Target (issue 5): assay's throughput >= 0.8x the bare call on the same prompts and model.

Both sides get the same loaded model, the same chat-rendered GSM8K prompts, the same batch
size, greedy decoding and the same max_new_tokens. The bare side is what a user would
write: batches in data order, left padding, `model.generate`, decode. assay adds what an
eval needs: length-sorted batches, per-batch SQLite cache writes, eos/stop handling and
bookkeeping (its cache is fresh, so everything is generated). Throughput is generated
tokens (up to and excluding eos) per second. Rounds alternate bare / assay so both see
the same machine load; the median round is reported. A cached rerun is timed too.

    python bench/eval_generation.py [--model SmolLM2-135M-Instruct] [--prompts 16]
                                    [--batch-size 8] [--max-new-tokens 64] [--rounds 2] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def bare_generate(model, tok, prompts, batch_size, max_new_tokens) -> tuple[float, int]:
    import torch

    eos = model.generation_config.eos_token_id
    eos_ids = set(eos if isinstance(eos, list) else [eos])
    tokens = 0
    t = time.perf_counter()
    for i in range(0, len(prompts), batch_size):
        enc = tok(prompts[i:i + batch_size], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id)
        new = out[:, enc["input_ids"].shape[1]:]
        texts = tok.batch_decode(new, skip_special_tokens=True)
        for row in new.tolist():
            n = next((j for j, t_ in enumerate(row) if t_ in eos_ids), len(row))
            tokens += n
        del texts
    return time.perf_counter() - t, tokens


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="SmolLM2-135M-Instruct")
    ap.add_argument("--prompts", type=int, default=16, help="GSM8K test questions to generate for")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=2, help="alternating bare/assay rounds (median reported)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    import torch

    from core.models import load_causal_lm
    from eval.cache import Cache
    from eval.generation import GenerationConfig, Generator
    from eval.suites import load_suite

    rows = load_suite("gsm8k").load(args.prompts)
    suite = load_suite("gsm8k")
    model, tok = load_causal_lm(args.model)
    cfg = GenerationConfig(max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)
    probe = Generator(args.model, cfg, cache=Cache(None), progress=False)
    probe._model, probe._tokenizer = model, tok
    prompts = [probe.render(suite.prompt(r)) for r in rows]
    chats = [suite.prompt(r) for r in rows]

    # Warm-up (first-call allocations) on one short batch, untimed.
    bare_generate(model, tok, prompts[:2], 2, 4)

    bare_runs, assay_runs = [], []
    for _ in range(max(1, args.rounds)):
        t, n = bare_generate(model, tok, prompts, args.batch_size, args.max_new_tokens)
        bare_runs.append((n / t, t, n))
        gen = Generator(args.model, cfg, cache=Cache(Path(tempfile.mkdtemp()) / "gen.sqlite"), progress=False)
        gen._model, gen._tokenizer = model, tok
        t0 = time.perf_counter()
        outs = gen.generate(chats)
        t = time.perf_counter() - t0
        n = sum(o[0].tokens for o in outs)
        assay_runs.append((n / t, t, n))
    t0 = time.perf_counter()
    again = gen.generate(chats)
    t_cached = time.perf_counter() - t0
    assert all(o[0].cached for o in again)

    bare_tps = statistics.median(r[0] for r in bare_runs)
    assay_tps = statistics.median(r[0] for r in assay_runs)
    ratio = assay_tps / bare_tps
    result = {"model": args.model, "prompts": len(prompts), "batch_size": args.batch_size,
              "max_new_tokens": args.max_new_tokens, "threads": torch.get_num_threads(),
              "bare_tokens_per_s": round(bare_tps, 2), "assay_tokens_per_s": round(assay_tps, 2),
              "ratio": round(ratio, 3), "target_ratio_ge_0_8": ratio >= 0.8,
              "bare_rounds": [[round(x, 3) for x in r] for r in bare_runs],
              "assay_rounds": [[round(x, 3) for x in r] for r in assay_runs],
              "assay_cached_rerun_s": round(t_cached, 4)}
    if args.json:
        print(json.dumps(result))
        return 0
    print(f"{args.model}: {len(prompts)} GSM8K chat prompts, batch {args.batch_size}, greedy, "
          f"max_new_tokens {args.max_new_tokens}, {torch.get_num_threads()} threads")
    print(f"{'':28}{'tokens/s':>10}{'seconds':>10}{'tokens':>8}   (median of {len(bare_runs)} rounds)")
    b = sorted(bare_runs)[len(bare_runs) // 2]
    a = sorted(assay_runs)[len(assay_runs) // 2]
    print(f"{'bare model.generate (ref)':28}{b[0]:>10.1f}{b[1]:>10.2f}{b[2]:>8}")
    print(f"{'assay Generator':28}{a[0]:>10.1f}{a[1]:>10.2f}{a[2]:>8}")
    print(f"{'assay cached rerun':28}{'':>10}{t_cached:>10.3f}")
    print(f"ratio assay/bare: {ratio:.3f} (target >= 0.8: {'PASS' if ratio >= 0.8 else 'FAIL'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
