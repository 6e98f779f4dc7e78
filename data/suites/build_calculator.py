"""Writes calculator.jsonl: two-term arithmetic problems from reasoning-gym, for calculator.yaml.

reasoning-gym's `basic_arithmetic` generator (seed 7): two terms of one or two digits,
+ - and *, no parentheses or negation -- easy enough that SmolLM2-135M-Instruct gets one
in ten right and four in ten within eight tries (pass@1 0.11, pass@8 0.43 on the first
40), which is where rejection sampling has something to keep. The first 200 rows are the
held-out evaluation rows (`--limit 100` uses the first hundred); data is sampled from
`--offset 200` on.

    python data/suites/build_calculator.py
"""

import json
from pathlib import Path

import reasoning_gym

SETTINGS = dict(min_terms=2, max_terms=2, min_digits=1, max_digits=2, operators=["+", "-", "*"],
                allow_parentheses=False, allow_negation=False)

if __name__ == "__main__":
    ds = reasoning_gym.create_dataset("basic_arithmetic", size=1200, seed=7, **SETTINGS)
    rows = [{"id": f"calc-{i}", "expression": ds[i]["metadata"]["expression"], "answer": str(ds[i]["answer"])}
            for i in range(len(ds))]
    out = Path(__file__).with_name("calculator.jsonl")
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    print(f"wrote {len(rows)} rows to {out}")
