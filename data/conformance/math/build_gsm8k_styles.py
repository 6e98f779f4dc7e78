"""Writes gsm8k_styles.jsonl: GSM8K test problems answered in the output styles real models
and standard prompts produce, right and wrong, each labeled.

The reasoning of every completion is the problem's own reference solution (calculator
annotations removed), so the text reads like a model trained on GSM8K; only the final
answer line changes with the style. Wrong completions commit to a number that appears in
the reasoning (an intermediate value, the hardest wrong answer for a checker that looks
for numbers) or to the gold plus a small offset. The label is what a careful grader
says of the committed answer; styles and their sources are in STYLES.

    python data/conformance/math/build_gsm8k_styles.py   # rewrites gsm8k_styles.jsonl
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[2]))
from core.files import shared_data_root  # noqa: E402

_WORDS = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
          "fifteen sixteen seventeen eighteen nineteen").split()
_TENS = "twenty thirty forty fifty sixty seventy eighty ninety".split()


def words(n: int) -> str:
    if n < 20:
        return _WORDS[n]
    t, u = divmod(n, 10)
    return _TENS[t - 2] + ("" if u == 0 else "-" + _WORDS[u])


def thousands(n: int) -> str:
    return f"{n:,}"


# style -> (where the style comes from, template). {r}: reasoning, {a}: the answer as written.
STYLES = {
    "lm-eval few-shot base (#### then next Question)": (
        "lm-eval gsm8k (5-shot) prompt on a base model: answer line '#### N', then the model "
        "continues with the next few-shot Question", "{r}\n#### {a}\n\nQuestion: A baker has 12 trays"),
    "llama-3 'The final answer is'": (
        "lm-eval gsm8k_cot_llama / Llama-3-Instruct chat: ends 'The final answer is N'",
        "{r}\nThe final answer is {a}"),
    "qwen-math boxed": ("Qwen2.5-Math / DeepSeek-R1 system prompt 'put your final answer within \\boxed{{}}'",
                        "{r}\nTherefore, the final answer is $\\boxed{{{a}}}$."),
    "minerva answer line": ("Minerva / lm-eval minerva_math prompt: 'Final Answer: The final answer is $X$. I hope it is correct.'",
                            "{r}\nFinal Answer: The final answer is ${a}$. I hope it is correct."),
    "markdown bold answer": ("chat models (GPT-4o, Llama, Mistral) writing markdown: 'The answer is **N**.'",
                             "{r}\n\nThe answer is **{a}**."),
    "markdown Answer: label": ("chat models' markdown label '**Answer:** N'", "### Solution\n{r}\n\n**Answer:** {a}"),
    "answer then more sentences": ("chat models that keep explaining after the answer sentence",
                                   "{r}\nThe answer is {a}. That is what she ends up with after every step above, and it matches the question."),
    "#### bold": ("models fine-tuned on GSM8K writing markdown around '####'", "{r}\n#### **{a}**"),
    "#### sentence": ("models writing a sentence after '####'", "{r}\n#### The answer is {a}"),
    "currency and unit words": ("everyday answers with units: '$N', 'N dollars', 'N crayons'", "{r}\nSo the answer is {a} {unit}."),
    "r1 answer tag": ("DeepSeek-R1 / open-r1 format: <think>...</think><answer>N</answer>",
                      "<think>\n{r}\n</think>\n<answer>{a}</answer>"),
    "chinese marker": ("Qwen / DeepSeek answering in Chinese: '答案是 N'", "{r}\n所以，答案是 {a}。"),
    "chinese full-width": ("Chinese answer with full-width digits and colon: '答案：ＮＮ'", "{r}\n答案：{fw}"),
    "spanish marker": ("multilingual chat answer in Spanish: 'La respuesta es N.'", "{r}\nLa respuesta es {a}."),
    "german marker": ("multilingual chat answer in German: 'Die Antwort ist N.'", "{r}\nDie Antwort ist {a}."),
    "french marker": ("multilingual chat answer in French: 'La réponse est N.'", "{r}\nLa réponse est {a}."),
    "number words": ("small models writing the number as a word: 'The answer is twenty-four.'", "{r}\nThe answer is {w}."),
    "base Q/A continuation": ("base model on a 'Q: ... A:' prompt: 'The answer is N.' then a new 'Q:'",
                              "{r} The answer is {a}.\n\nQ: Tom has 3 apples"),
    "thousands separator": ("answers of 1,000 and more written with a comma", "{r}\nThe answer is {t}."),
    "concluding sentence (no marker)": ("SmolLM2 / small chat models ending with a conclusion but no marker",
                                        "{r}\nTherefore, the total is {a}."),
}
UNITS = ["dollars", "crayons", "cookies", "pct", "people"]


def hedge(reasoning: str, gold: int, other: int) -> str:
    return f"{reasoning}\nThe answer is {gold} or {other}."


def main() -> None:
    rows = [json.loads(line) for line in open(shared_data_root() / "gsm8k" / "test.jsonl")]
    rng = random.Random(10)
    picked = [i for i in rng.sample(range(len(rows)), 400)
              if re.fullmatch(r"\d+", rows[i]["answer"].rsplit("####", 1)[1].strip().replace(",", ""))]
    out = []
    k = 0
    for style, (source, template) in STYLES.items():
        for j in range(10):
            idx = picked[k % len(picked)]
            k += 1
            sol, gold_s = rows[idx]["answer"].rsplit("####", 1)
            gold = int(gold_s.strip().replace(",", ""))
            reasoning = re.sub(r"<<[^>]*>>", "", sol).strip()
            right = j % 2 == 0
            nums = [int(x) for x in re.findall(r"(?<![\d.])\d+(?![\d.])", reasoning) if int(x) != gold]
            value = gold if right else (rng.choice(nums) if nums and j % 4 == 1 else gold + rng.choice([1, 2, 10, -1]))
            value = abs(value)
            a = str(value)
            text = template.format(r=reasoning, a=a, w=words(value) if value < 100 else a, t=thousands(value),
                                   fw=a.translate({ord(c): ord(c) + 0xFEE0 for c in "0123456789"}),
                                   unit=UNITS[j % len(UNITS)])
            if style == "currency and unit words" and j % len(UNITS) == 0:
                text = text.replace(f"{a} dollars", f"${a}")
            if style == "number words" and value >= 100:
                continue  # words only for small numbers
            if style == "thousands separator" and value < 1000:
                continue
            out.append({"id": f"gsm-{len(out):03d}", "gold": gold_s.strip(), "completion": text, "label": value == gold,
                        "ambiguous": False, "style": style,
                        "provenance": f"GSM8K test row {idx} reference solution, final line in the style of: {source}",
                        "note": "" if value == gold else "commits to a wrong number"})
    # Hedging and guesses in the same reasoning: never credited.
    for j in range(12):
        idx = picked[(k + j) % len(picked)]
        sol, gold_s = rows[idx]["answer"].rsplit("####", 1)
        gold = int(gold_s.strip().replace(",", ""))
        reasoning = re.sub(r"<<[^>]*>>", "", sol).strip()
        text = hedge(reasoning, gold, gold + 3) if j % 2 == 0 else f"{reasoning}\nI am not sure, but it might be {gold}... or maybe {gold + 5}."
        out.append({"id": f"gsm-{len(out):03d}", "gold": gold_s.strip(), "completion": text, "label": False,
                    "ambiguous": False, "style": "hedging",
                    "provenance": f"GSM8K test row {idx} reference solution, ending in two final answers",
                    "note": "two different final answers: no single committed answer"})
    with open(HERE / "gsm8k_styles.jsonl", "w") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(out)} rows -> {HERE / 'gsm8k_styles.jsonl'}")


if __name__ == "__main__":
    main()
