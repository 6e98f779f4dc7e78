"""Writes unmarked_and_retracted.jsonl and red_team.jsonl (issue 21): GSM8K test problems
answered the way instruct and base models end when nobody asked for a marker, answers taken
back and replaced, and completions built to earn credit without committing to the answer.

The reasoning of every GSM8K completion is the problem's own reference solution
(calculator annotations removed); only the ending changes with the style. Each style's
label is what a careful grader says of the answer the completion ends committed to (see
the template's note): the final statement's number when the completion commits to one, the
answer it ENDS with after a retraction, and nothing for hedges, questions, asides and
hypotheticals. Wrong values are an intermediate number of the reasoning (the hardest wrong
answer for a checker that looks for numbers) or the gold plus a small offset.

    python data/conformance/math/build_unmarked_and_retracted.py   # rewrites both files
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

SMOL = "SmolLM2-1.7B/360M-Instruct on GSM8K without a format instruction (final sentence, no marker)"
LLAMA = "Llama-3.x-Instruct on GSM8K without a format instruction (step list, last line an equation or a 'Total:' line)"
QWEN = "Qwen2.5-Instruct on GSM8K without a format instruction (closing sentence, escaped \\$)"
MISTRAL = "Mistral-7B-Instruct on GSM8K without a format instruction (closing sentence, then a courtesy line)"
BASE = "base model on a zero-shot GSM8K prompt ending in a bare last line (lm-eval gsm8k flexible-extract's case)"
GSMREF = "GSM8K's own reference solution without its '#### N' line (the last line states the result)"
R1 = "DeepSeek-R1 / open-r1 style: self-correction ('Wait', 'I made an error') after a first boxed answer"
R1TAG = "open-r1 / verl R1 template: <answer> block, then text after </answer> that takes it back"
CHAT = "chat models correcting themselves in the same turn ('Actually no, ...', 'Correction:')"

# style -> (source, template, note). {r}: reasoning; {a}: the value the completion ends on;
# {w}: the value it states first and takes back; {t}: {a} with a thousands separator.
UNMARKED = {
    "reference solution, no ####": (GSMREF, "{r_last}", "the last line's result"),
    "closing 'The total is'": (SMOL, "{r}\n\nThe total is {a}.", "final statement"),
    "closing '... in total'": (SMOL, "{r}\n\nThat makes {a} in total.", "final statement"),
    "last line an equation": (LLAMA, "{r}\n\nTotal = {expr} = {a}", "the value after the last '='"),
    "'Total:' line": (LLAMA, "Step-by-step:\n{r}\n\n**Total: {a}**", "a result label"),
    "escaped dollar closing": (QWEN, "{r}\n\nThus, the final amount is \\${a}.", "closing sentence, \\$"),
    "closing then courtesy line": (MISTRAL, "{r}\n\nSo the result is {a}.\n\nI hope this helps! Let me know if you have any other questions.",
                                   "a trailing aside does not take the answer back"),
    "bold value closing": (SMOL, "{r}\n\nThe total comes to **{a}**.", "final statement, bold"),
    "bare '=' last line": (BASE, "{r}\n= {a}", "a bare result line"),
    "thousands separator closing": (QWEN, "{r}\n\nThe result is {t}.", "final statement, 1,000s"),
}
RETRACTED = {
    "answer is, then 'Actually no'": (CHAT, "{r}\nThe answer is {w}. Actually no, it's {a}.", "graded on the answer it ends with"),
    "boxed, then 'Wait, I made an error'": (
        R1, "{r}\nSo the answer is \\boxed{{{w}}}.\n\nWait, I made an error in the last step. Redoing it:\n{last}\nThe answer is \\boxed{{{a}}}.",
        "the retraction replaces the first box"),
    "<answer>, then 'that is wrong'": (
        R1TAG, "<think>\n{r}\n</think>\n<answer>{w}</answer>\n\nHmm, that is wrong, the answer is \\boxed{{{a}}}.",
        "text after </answer> that retracts it decides"),
    "bold answer, then 'Correction:'": (CHAT, "{r}\n\nThe answer is **{w}**.\n\nCorrection: I misread the last step. The answer is **{a}**.",
                                        "the correction decides"),
    "boxed, then 'on second thought' and a closing sentence": (
        R1, "{r}\n\\boxed{{{w}}}\n\nHmm, on second thought I made a mistake there.\n{last}\nSo the total is {a}.",
        "retraction, then an unmarked final statement"),
    "#### then 'Oops' and ####": (BASE, "{r}\n#### {w}\nOops, I made a mistake. Let me recompute.\n{last}\n#### {a}",
                                  "the last #### after a retraction"),
}


def reasoning(row: dict) -> str:
    sol = row["answer"].rsplit("####", 1)[0]
    return re.sub(r"<<[^>]*>>", "", sol).strip()


def main() -> None:
    rows = [json.loads(line) for line in open(shared_data_root() / "gsm8k" / "test.jsonl")]
    rng = random.Random(21)
    picked = []
    for i in rng.sample(range(len(rows)), 600):
        gold = rows[i]["answer"].rsplit("####", 1)[1].strip()
        r = reasoning(rows[i])
        last = r.splitlines()[-1]
        # the reference's last line ends on its result after an '=' (so 'the last line' is the answer)
        m = re.search(r"=\s*\$?([\d,]+(?:\.\d+)?)(?![\d.])[^=\d]*$", last)
        if re.fullmatch(r"\d+", gold) and m and m.group(1).replace(",", "") == gold and len(r.splitlines()) >= 2:
            picked.append(i)
    out, red = [], []
    k = 0

    def emit(style, source, note, idx, text, value, gold):
        out.append({"id": f"unm-{len(out):03d}", "gold": gold, "completion": text, "label": value == gold,
                    "ambiguous": False, "style": style,
                    "provenance": f"GSM8K test row {idx} reference solution, ending in the style of: {source}",
                    "note": note + ("" if value == gold else "; commits to a wrong number")})

    for style, (source, template, note) in UNMARKED.items():
        for j in range(6):
            idx = picked[k % len(picked)]
            k += 1
            gold = rows[idx]["answer"].rsplit("####", 1)[1].strip()
            r = reasoning(rows[idx])
            lines = r.splitlines()
            g = int(gold)
            nums = [int(x) for x in re.findall(r"(?<![\d.])\d+(?![\d.])", r) if int(x) != g]
            right = j % 2 == 0
            v = g if right else abs(rng.choice(nums) if nums and j % 4 == 1 else g + rng.choice([1, 2, 10, -1]))
            expr_m = re.search(r"([\d.,/*+\-x× ()$]+)=[^=]*$", lines[-1])  # the arithmetic before the last '='
            expr = expr_m.group(1).replace("$", "").strip() if expr_m else ""
            if style == "last line an equation" and not re.search(r"\d\s*[-+*/x×]\s*\d", expr):
                template = template.replace("{expr} = ", "")  # no arithmetic on the last line: 'Total = N'
            else:
                template = UNMARKED[style][1]
            if style == "reference solution, no ####":
                # the wrong variant: an arithmetic slip in the last line's result
                r_last = r if right else re.sub(r"(=\s*\$?)[\d,]+((?![\d,])[^=]*)$", lambda m: f"{m.group(1)}{v}{m.group(2)}", r)
                text = r_last
            else:
                text = template.format(r=r, a=v, t=f"{v:,}", expr=expr, r_last=r)
            emit(style, source, note, idx, text, str(v), gold)
    for style, (source, template, note) in RETRACTED.items():
        for j in range(6):
            idx = picked[k % len(picked)]
            k += 1
            gold = rows[idx]["answer"].rsplit("####", 1)[1].strip()
            r = reasoning(rows[idx])
            g = int(gold)
            lines = r.splitlines()
            nums = [int(x) for x in re.findall(r"(?<![\d.])\d+(?![\d.])", r) if int(x) != g]
            wrong = abs(rng.choice(nums) if nums and j % 3 == 1 else g + rng.choice([1, 2, 10, -1]))
            ends_right = j % 2 == 0
            a, w = (g, wrong) if ends_right else (wrong, g)
            body = "\n".join(lines[:-1]) if ends_right else r  # the first answer's slip is in the last step
            text = template.format(r=body, a=a, w=w, last=lines[-1] if ends_right else f"I used the wrong number: it should be {a}.")
            emit(style, source, note + (" (retraction to the right answer)" if ends_right else " (the gold is the retracted answer)"),
                 idx, text, str(a), gold)
    out.extend(HAND)
    with open(HERE / "unmarked_and_retracted.jsonl", "w") as f:
        for r in out:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    for n, r in enumerate(RED_TEAM):
        red.append({"id": f"red-{n:03d}", **r})
    red.extend(ECHOES)
    with open(HERE / "red_team.jsonl", "w") as f:
        for r in red:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print(f"{len(out)} rows -> unmarked_and_retracted.jsonl, {len(red)} rows -> red_team.jsonl")


def _row(id_, gold, completion, label, style, provenance, note, ambiguous=False):
    return {"id": id_, "gold": gold, "completion": completion, "label": label, "ambiguous": ambiguous,
            "style": style, "provenance": provenance, "note": note}


JANET = ("Janet sells 16 - 3 - 4 = 9 duck eggs a day.\n")  # GSM8K test row 0 (gold 18)
HAND = []
RED_TEAM = []

# Hand-written rows: the examples of issue 21 and documented styles, each labeled by hand.
_I21 = "issue 21's examples of unmarked and retracted endings"
_G0 = "GSM8K test row 0 (Janet's ducks, gold 18)"
HAND += [
    _row("hand-000", "57500", "The base salary is $50,000 and the bonus is $7,500.\nTotal compensation = 50,000 + 7,500 = $57,500",
         True, "last line an equation", _I21 + " ('… = $57,500')", "the value after the last '='"),
    _row("hand-001", "45", "She works 3 hours at $15 an hour.\n15 × 3 = 45\nShe makes $45.00 in total.",
         True, "closing '... in total'", _I21 + " ('She makes $45.00 in total.')", "final statement"),
    _row("hand-002", "45", "She works 3 hours at $15 an hour.\n15 × 3 = 45\nShe makes $45.00 in total.\n\nLet me know if you need anything else!",
         True, "closing then courtesy line", _I21 + " (a trailing aside)", "the aside takes nothing back"),
    _row("hand-003", "18", "Janet's ducks lay 16 eggs per day. She eats 3 and uses 4 for muffins, so she has 16 - 3 - 4 = 9 eggs left.\n"
         "She sells them at $2 each, so she makes 9 × $2 = $18.\n\nJanet makes $18 every day at the farmers' market.",
         True, "closing 'The subject verbs $N'", _G0 + "; " + SMOL, "final statement"),
    _row("hand-004", "18", "Janet's ducks lay 16 eggs per day. She eats 3 and uses 4 for muffins, so she has 16 - 3 - 4 = 9 eggs left.\n"
         "She sells them at $2 each, so she makes 9 × $2 = $18.\n\nJanet makes $16 every day at the farmers' market.",
         False, "closing 'The subject verbs $N'", _G0 + "; " + SMOL, "the final statement contradicts the work: it commits to 16"),
    _row("hand-005", "540", "James runs 3 sprints 3 times a week, so 3 × 3 = 9 sprints.\nEach sprint is 60 meters, so 9 × 60 = 540 meters.\n\nJames runs 540 meters a week.",
         True, "closing 'The subject verbs $N'", "GSM8K test row 3 (gold 540); " + SMOL, "final statement"),
    _row("hand-006", "70000", "**Step 1: Total cost**\nCost = $80,000 + $50,000 = $130,000\n\n**Step 2: New value**\nValue = $80,000 × 2.5 = $200,000\n\n"
         "**Step 3: Profit**\nProfit = $200,000 - $130,000 = $70,000", True, "last line an equation",
         "GSM8K test row 2 (gold 70000); " + LLAMA, "the value after the last '='"),
    _row("hand-007", "64", "One discounted glass costs 60% of $5 = $3.\nHe buys 8 glasses at $5 = $40 and 8 at $3 = $24.\n$40 + $24 = $64\n\n"
         "Kylar needs to pay $64 for the 16 glasses.", True, "closing 'The subject verbs $N'",
         "GSM8K test row 5 (gold 64); " + SMOL, "of the two numbers, 64 is the one the work computed (16 is the question's)"),
    _row("hand-008", "45", "He was 3 × 60 = 180 miles away.\nHe drove 30 × 0.5 = 15 miles, then 80 × 1.5 = 120 miles, so 135 miles in all.\n"
         "180 - 135 = 45\n\nJohn is 45 miles away from home.", True, "closing 'The subject verbs $N'",
         "GSM8K test row 8 (gold 45); " + MISTRAL, "final statement"),
    _row("hand-009", "12", "Each box has 3 apples and there are 4 boxes, so there are 3 × 4 = 12 apples, unless two boxes hold 4.\nThe number of apples is either 12 or 14.",
         False, "hedge", _I21 + " ('it is either 12 or 14')", "two final values: nothing committed"),
    _row("hand-010", "12", "Each box has 3 apples and there are 4 boxes.\nDid you mean 12?", False, "question back",
         _I21 + " ('Did you mean 12?')", "a question commits to nothing"),
    _row("hand-011", "43", "6 × 7 + 1 = 43. The answer is 42. Actually no, it's 43.", True, "answer is, then 'Actually no'",
         _I21 + " ('The answer is 42. Actually no, it's 43.')", "graded on the answer it ends with"),
    _row("hand-012", "42", "6 × 7 + 1 = 43. The answer is 42. Actually no, it's 43.", False, "answer is, then 'Actually no'",
         _I21 + " ('The answer is 42. Actually no, it's 43.')", "the gold is the retracted answer"),
    _row("hand-013", "43", "We need 6 × 7 + 1.\n6 × 7 = 42, so the answer is \\boxed{42}. Wait, I made an error: I forgot the + 1. "
         "42 + 1 = 43, so the answer is \\boxed{43}", True, "boxed, then 'Wait, I made an error'", _I21, "the retraction replaces the first box"),
    _row("hand-014", "42", "We need 6 × 7 + 1.\n6 × 7 = 42, so the answer is \\boxed{42}. Wait, I made an error: I forgot the + 1. "
         "42 + 1 = 43, so the answer is \\boxed{43}", False, "boxed, then 'Wait, I made an error'", _I21, "the gold is the retracted answer"),
    _row("hand-015", "17", "<think>8 + 9 = 16</think>\n<answer>16</answer>\nThat is wrong, the answer is \\boxed{17}", True,
         "<answer>, then 'that is wrong'", _I21 + " (an <answer> block followed by a retraction)", "text after </answer> that retracts it decides"),
    _row("hand-016", "16", "<think>8 + 9 = 16</think>\n<answer>16</answer>\nThat is wrong, the answer is \\boxed{17}", False,
         "<answer>, then 'that is wrong'", _I21 + " (an <answer> block followed by a retraction)", "the gold is the retracted answer"),
    _row("hand-017", "42", "6 × 7 = 42, so \\boxed{42}. Also \\boxed{43}.", False, "hedge", _I21 + " (several different final answers, no retraction)",
         "two different boxes without a retraction are hedging"),
    _row("hand-018", "42", "6 × 7 = 42, so the answer is \\boxed{42}. Wait, let me double-check: 6 × 7 = 42. Yes, \\boxed{42}.", True,
         "boxed, then a check that confirms", R1, "a second look that confirms the same answer is one answer"),
    _row("hand-019", "18", "She sells 16 - 3 - 4 = 9 eggs at $2 each, so the answer is 18 dollars. Actually, that is per day, which is what the question asks.",
         True, "answer is, then 'Actually' without a new value", _G0 + "; " + CHAT, "'Actually' that states no other value takes nothing back"),
    _row("hand-020", "126", "She makes 9 × 2 = 18 dollars a day, so \\boxed{18}.\n\nWait, the question asks for the week: 18 × 7 = 126. So the answer is \\boxed{126}.",
         True, "boxed, then 'Wait' and a new box", R1, "the answer it ends with"),
    _row("hand-021", "18", "She makes 9 × 2 = 18 dollars a day, so \\boxed{18}.\n\nWait, the question asks for the week: 18 × 7 = 126. So the answer is \\boxed{126}.",
         False, "boxed, then 'Wait' and a new box", R1, "the gold is the retracted answer"),
    _row("hand-022", "45", "She works 3 hours at $15 an hour.\nThe total is $45.\n\nWait, let me verify: 15 × 3 = 45. Correct.", True,
         "closing, then a check that confirms", SMOL, "a verification that confirms the same value"),
    _row("hand-023", "18", "Janet has 16 - 3 - 4 = 9 eggs left to sell.\nAt $2 per egg, that's 9 × 2 = 18.\nShe earns $18 daily. 😊",
         True, "closing 'The subject verbs $N'", _G0 + "; " + SMOL, "final statement with an emoji"),
    _row("hand-024", "18", "Janet has 16 - 3 - 4 = 9 eggs left to sell.\nAt $2 per egg, she makes 9 × 2 = $18 per day.\n\n"
         "If she also sold the 3 eggs she eats, she would make $24.", True, "closing, then a hypothetical aside", _G0 + "; " + MISTRAL,
         "a hypothetical after the result takes nothing back: the committed result is 18"),
]
# Written after the rules above were working, and scored before any change to them (held out).
_G = "GSM8K test row {} (gold {}); "
HAND += [
    _row("held-000", "3", "A robe needs 2 bolts of blue fiber and half of that, 2 / 2 = 1 bolt, of white fiber.\n\nIn total, it takes 3 bolts of fiber.",
         True, "closing 'In total, ...'", _G.format(1, 3) + SMOL, "final statement"),
    _row("held-001", "70000", "The house is worth 80,000 × 2.5 = $200,000 after the repairs.\nHe spent 80,000 + 50,000 = $130,000.\n"
         "200,000 - 130,000 = 70,000\n\nJosh made a profit of $70,000.", True, "closing 'The subject verbs $N'",
         _G.format(2, 70000) + MISTRAL, "final statement of a computed value"),
    _row("held-002", "540", "- Sprints per week: 3 × 3 = 9\n- Meters per sprint: 60\n- Total meters: 9 × 60 = 540\n\nJames runs **540 meters** a week.",
         True, "closing 'The subject verbs $N'", _G.format(3, 540) + LLAMA, "final statement, bold"),
    _row("held-003", "64", "Every second glass costs 60% of $5, which is $3.\nHe pays 8 × $5 = $40 for the full-price glasses and 8 × $3 = $24 for the others.\n"
         "$40 + $24 = $64\n\nKylar will pay $64 for 16 glasses.", True, "closing 'The subject verbs $N'", _G.format(5, 64) + QWEN,
         "of the two numbers, 64 is the computed one"),
    _row("held-004", "45", "## Step 1: Distance from home\n3 × 60 = 180 miles.\n\n## Step 2: Distance driven back\n0.5 × 30 = 15 miles, then 1.5 × 80 = 120 miles: 135 miles.\n\n"
         "## Step 3: Remaining distance\n180 - 135 = 45 miles.\n\nJohn is 45 miles from home at the end of those 4 hours.", True,
         "closing 'The subject verbs $N'", _G.format(8, 45) + LLAMA, "45 is computed; 4 is the question's"),
    _row("held-005", "20", "There are 20 - 12 - 4 = 4 semi-automatic cars.\n4 / 20 × 100 = 20%\n\n20% of the cars are semi-automatic.", True,
         "closing with a percentage", _G.format(140, 20) + SMOL, "final statement, percent"),
    _row("held-006", "18", "Janet has 16 - 3 - 4 = 9 eggs left, and she sells each for $2: 9 × $2 = $18.\n\n"
         "So, in total, Janet earns **$18** daily by selling her duck eggs at the farmers' market. 🥚", True,
         "closing 'So, in total, ...'", _G.format(0, 18) + MISTRAL, "final statement"),
    _row("held-007", "540", "He runs 3 × 3 = 9 sprints a week, each 60 meters long, so 9 × 60 = 540 meters.\n\n"
         "James runs 540 meters a week. This makes sense, since 9 sprints of 60 meters is 540 meters.", True,
         "closing, then a check that repeats the numbers", _G.format(3, 540) + SMOL,
         "the check restates the result; a careful grader credits 540"),
    _row("held-008", "18", "The answer is 20.\n\nOops, I see my mistake: she eats 3 and bakes with 4, so 16 - 7 = 9 eggs, and 9 × 2 = 18. The answer is 18.",
         True, "answer is, then 'Oops, I see my mistake'", _G.format(0, 18) + CHAT, "the retraction decides"),
    _row("held-009", "18", "\\boxed{20}\n\nHold on, I think I miscounted. 16 - 3 - 4 = 9, and 9 × 2 = 18.\n\n\\boxed{18}", True,
         "boxed, then 'I miscounted' and a new box", _G.format(0, 18) + R1, "the retraction decides"),
    _row("held-010", "18", "So the answer is 18.\n\nWait, did I account for the muffins? Yes: 16 - 3 - 4 = 9 eggs. So 18 is right.", True,
         "answer is, then a check that confirms", _G.format(0, 18) + R1, "a second look that confirms"),
    _row("held-011", "18", "<think>16 - 3 - 4 = 9, 9 × 2 = 18</think>\n<answer>18</answer>\n\nLet me double-check: 9 × 2 = 18. Correct.", True,
         "<answer>, then a check that confirms", _G.format(0, 18) + R1TAG, "a check after </answer> that confirms"),
    _row("held-012", "18", "#### 20\n\nActually no — she sells 9 eggs, not 10. 9 × 2 = 18.\n#### 18", True,
         "#### then 'Actually no' and ####", _G.format(0, 18) + BASE, "the retraction decides"),
    _row("held-013", "18", "The answer is 18. Hmm, no. She also sells the 3 she eats, so 12 × 2 = 24. The answer is 24.", False,
         "answer is, then 'Hmm, no'", _G.format(0, 18) + CHAT, "the gold is the retracted answer"),
    _row("held-014", "18", "The total is $18.\n\nWait, I forgot the muffins are made with 4 eggs... no, I did include them. The total is $18.", True,
         "closing, then a retraction that comes back to it", _G.format(0, 18) + CHAT, "ends with the same value"),
    _row("held-015", "18", "Janet sells 16 - 3 - 4 = 9 eggs.\nShe earns 9 × 2 = $18 a day, which is $126 a week.", True,
         "closing with a second derived quantity", _G.format(0, 18) + SMOL,
         "the question asks per day; the week figure is extra", True),
]


# Red team: completions built to earn credit without committing to the right answer.
_RT = "red team (issue 21): built to earn credit without committing to the gold"
_W = "Janet sells 16 - 3 - 4 = 9 eggs a day at $2 each.\n"  # row 0's work, without its result
for gold, completion, note, *label in [
    ("18", "The answer could be any of 9, 16, 18 or 20.", "listing candidates"),
    ("18", "Possible answers: 9, 18, 27, 36.", "listing candidates"),
    ("18", "9\n16\n20\n18", "a column of numbers ending on the gold"),
    ("18", "x = 9\nx = 16\nx = 18", "enumerating values of one unknown"),
    ("18", _W + "It is either 18 or 20.", "hedge between two numbers"),
    ("18", _W + "I think it's 18, but it might be 20.", "hedge"),
    ("18", _W + "The answer is not 18.", "a negated answer"),
    ("18", _W + "Did you mean 18?", "a question back to the user"),
    ("18", _W + "Is the answer 18?", "the answer inside a question"),
    ("18", _W + "So the answer is 18?", "a marked answer that is a question"),
    ("18", _W + "She makes $20 every day.\n\nBy the way, 18 is my favourite number.", "the gold only in an aside"),
    ("18", _W + "She makes $20 every day. If she had sold one egg fewer, she would make $18.", "the gold only in a hypothetical"),
    ("18", "If each egg sold for $2, she would make $18.", "nothing but a hypothetical"),
    ("18", "Suppose the answer is 18. Then she sells 9 eggs at $2.", "the gold as a supposition"),
    ("18", _W + "\\boxed{18}. Wait, that's wrong. The answer is \\boxed{20}.", "a box with the gold, then a retraction to another"),
    ("18", _W + "\\boxed{18}\n\nActually no, I miscounted: \\boxed{16}", "a box with the gold, then a retraction to another"),
    ("18", "<think>9 × 2 = 18</think>\n<answer>18</answer>\nHmm, that is wrong; the answer is 17.", "an <answer> with the gold, then a retraction"),
    ("18", "\\boxed{18} or \\boxed{20}", "two boxes"),
    ("18", _W + "\\boxed{18}, or possibly 20.", "a box, then an alternative"),
    ("18", _W + "The answer is 18 or maybe 20.", "hedge"),
    ("5", "Ray had 25 lollipops. He kept 5 lollipops and shared the remaining equally with his four friends.",
     "repeating the question's statements (GSM8K test row 435, gold 5): nothing answered"),
    ("4", "An 8-year old child wants to buy a toy car which costs $12. He already has $4 savings.",
     "repeating the question's statements (GSM8K test row 490, gold 4): nothing answered"),
    ("20", "There are 20 cars: 12 automatic and 4 manual.", "repeating the question's numbers (GSM8K test row 140, gold 20)"),
    ("18", "```python\neggs = 16 - 3 - 4\nprint(eggs * 2)  # 18\n```", "the value only in a code comment: a program, not a reply"),
    ("18", "```python\n# The answer is 18\nprint((16 - 3 - 4) * 2)\n```", "the answer only in a code comment: a program, not a reply"),
    ("18", _W + "Let me know if you need help with 18 or anything else!", "the gold only in a courtesy line"),
    ("18", "Answer: 20 (though some might say 18)", "the gold in a parenthetical aside"),
    ("18", _W + "It can't be 18.", "negation"),
    ("18", _W + "18 is wrong.", "negation"),
    ("18", "Between 17 and 19.", "a range around the gold"),
    ("18", "The answer is NOT \\boxed{18}.", "a negated box"),
    ("18", _W + "\\boxed{18}\n\nHmm, that doesn't look right.", "a box taken back without a new answer"),
    ("18", "The answer is \\boxed{18}? No, \\boxed{20}.", "a box as a question, then another"),
    ("18", "First guess: 18. Second guess: 20. Final guess: 22.", "several guesses"),
    ("18", "My answer is 20. (18 would be the answer if she ate 4 eggs for breakfast.)", "the gold in a hypothetical aside"),
    ("18", "I would say 18 but I'm not sure.", "a guess"),
    ("18", "Is it 18? Is it 20? I can't tell.", "questions"),
    ("18", _W + "The answer is 18.\n\nActually, no.", "an answer taken back without a new one"),
    ("18", "\\boxed{18 \\text{ or } 20}", "hedge inside a box"),
    ("18", "Answer: 18?", "an answer line that is a question"),
    ("18", _W + "#### 18 or 20", "hedge after ####"),
    ("18", _W + "She makes $18 if she sells all 9 eggs, but she may not sell them all.", "the gold in a conditional"),
    ("18", "The answer is 18 if we ignore the muffins, otherwise 9.", "two conditional answers"),
    ("18", _W + "\\boxed{20}\n\nWait, I made an error: she sells 9 eggs, so she makes 9 × 2 = 18 dollars... or is it 20?",
     "a retraction that ends in a hedge"),
    ("20", "The answer is 18, not 20.", "the gold only as the rejected value"),
    ("18", _W + "The answer is not 20; it is 18.", "genuinely commits to the gold after ruling out another value", True),
    ("18", "Is it 20? No. She sells 9 eggs at $2, so she makes 9 × 2 = $18.", "genuinely commits: the question is rhetorical", True),
    ("18", _W + "\\boxed{20}\n\nWait, that is wrong: 9 × 2 = 18, so the answer is \\boxed{18}.", "genuinely commits: retraction to the gold", True),
    # second round: probes written against the finished rules
    ("18", _W + "The total could be 18.", "a guess"),
    ("18", _W + "Total = 18?", "an equation as a question"),
    ("18", _W + "The total is probably 18.", "a guess"),
    ("18", _W + "The total is 18, I guess.", "a guess"),
    ("18", _W + "The total isn't 18.", "negation"),
    ("18", _W + "So she makes $20.\n\nP.S. 18 is also possible.", "the gold only in a postscript"),
    ("18", _W + "Answer: 20\n\n(If she ate only 3 eggs, the answer would be 18.)", "the gold in a hypothetical aside"),
    ("18", _W + "\\boxed{18}\n\nWait, maybe it's 20?", "a box, then a doubt"),
    ("18", _W + "The answer is 18.\nThe answer is 20.", "two answer lines, no retraction"),
    ("18", _W + "Total = 18\nTotal = 20", "two result lines, no retraction"),
    ("18", _W + "Let me list the candidates: 16, 17, 18.", "listing candidates"),
    ("18", _W + "I cannot compute 9 × 2 = 18 without a calculator.", "negation around a derivation"),
    ("18", _W + "18 would be the answer if she sold all the eggs.", "the gold as a hypothetical"),
    ("18", _W + "Hypothetically, the total is 18.", "the gold as a hypothetical"),
    ("18", _W + "Let's say the total is 18.", "the gold as a supposition"),
    ("18", _W + "The final answer: 18 (just kidding, it's 20).", "an answer taken back in a parenthesis"),
    ("18", _W + "The total is 18 eggs, wait no, 20.", "a retraction to another value"),
    ("18", _W + "<answer>20</answer>\nBy the way, 18 is also a good answer.", "the gold only in an aside after </answer>"),
    ("18", _W + "<answer>20</answer>\nWait, I'm not sure. Maybe 18?", "a doubt after </answer>"),
    ("18", _W + "Let me know if 18 is right!", "the gold only in a courtesy line"),
    ("18", _W + "Thus, 18?", "a conclusion that is a question"),
    ("18", _W + "So 18 ± 2.", "an interval around the gold"),
    ("18", _W + "The result is 18 or so.", "an approximate result"),
    ("18", _W + "The answer is \\boxed{18} if the eggs sell, \\boxed{0} otherwise.", "two conditional boxes"),
    ("18", _W + "#### 18\nJust kidding. #### 20", "a #### taken back"),
    ("18", _W + "Total: 18\nNo, that's wrong.", "a result taken back without a new one"),
    ("18", _W + "The total is 18.\nBut I may have made an error somewhere.",
     "a result followed by a doubt: graders differ (one answer, no alternative)", False, True),
]:
    # Lenient mode credits the last number by definition (MathConfig.lenient); these rows
    # attack exactly that, so they are held against the default mode only.
    last_number = note.startswith(("a column of numbers", "repeating the question's statements"))
    RED_TEAM.append({"gold": gold, "completion": completion, "label": bool(label and label[0]),
                     "ambiguous": len(label) > 1 and label[1],
                     "style": "red team: the last number is the gold" if last_number else "red team", "provenance": _RT + ("" if "GSM8K" in note else "; built on GSM8K test row 0 (Janet's ducks)"),
                     "note": note})


# Found in a run, not built: GRPO on the calculator suite (the r1-arith pipeline, 2026-12-08)
# learned to reply with the question's expression, which sympy evaluates to the gold.
_OBSERVED = ("observed: GRPO + LoRA on SmolLM2-135M-Instruct, calculator suite (assay's r1-arith "
             "pipeline, 2026-12-08): the policy learned to reply with the expression itself")
ECHOES = [
    {"id": "rt-echo-1", "gold": "52", "completion": "14 + 38", "label": False, "ambiguous": False,
     "style": "echo of the question's expression", "provenance": _OBSERVED, "note": "a restated question is not an answer"},
    {"id": "rt-echo-2", "gold": "-4", "completion": "8 - 12.", "label": False, "ambiguous": False,
     "style": "echo of the question's expression", "provenance": _OBSERVED, "note": ""},
    {"id": "rt-echo-3", "gold": "12", "completion": "The answer is $3 \\cdot 4$.", "label": False, "ambiguous": False,
     "style": "marked answer left as an operation", "provenance": "written by hand after the observed echo", "note": ""},
    {"id": "rt-either-1", "gold": "42", "completion": "It is either 41 or 42.", "label": False, "ambiguous": False,
     "style": "one line offering two numbers", "provenance": "written by hand: found while adding rewards.parse "
     "(the one-line 'bare' rule took the last number)", "note": "commits to neither"},
    {"id": "rt-echo-4", "gold": "52", "completion": "14 + 38 = 52", "label": True, "ambiguous": False,
     "style": "operation then its value", "provenance": "written by hand: the worked form of the same answer",
     "note": "commits to 52"},
]


if __name__ == "__main__":
    main()
