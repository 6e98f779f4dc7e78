"""Math tasks: GSM8K, MATH-500, AIME 2024, AMC 2023 -- the math reward on the final
answer; GSM8K also reports lm-eval-harness's strict-match and flexible-extract."""

from __future__ import annotations

from tasks import lm_eval_gsm8k
from tasks.base import Scored, Task, reward_scores
from tasks.data import data_root, load_hub, read_jsonl


class _LocalOrHub(Task):
    rel_path: str = ""  # under the data root; "{split}" is the split asked for
    hub: tuple[str, str | None, str] = ("", None, "test")  # id, config, the hub's name for the default split

    def source(self) -> str:
        return str(data_root(self.root) / self.rel_path.format(split=self.split))

    def _load(self) -> list[dict]:
        path = data_root(self.root) / self.rel_path.format(split=self.split)
        if path.exists():
            return read_jsonl(path)
        hub_id, config, hub_split = self.hub
        return load_hub(hub_id, hub_split if self.split == self.default_split else self.split, config)


MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


class MathSuite(_LocalOrHub):
    fields = ("problem", "answer")

    def prompt(self, row: dict) -> list[dict]:
        return [{"role": "user", "content": f"{row['problem']}\n\n{MATH_INSTRUCTION}"}]

    def gold(self, row: dict) -> str:
        return str(row["answer"])

    def score_fields(self, row: dict) -> tuple:
        return (str(row["answer"]),)  # the verdict depends on the gold alone

    def score(self, completions, rows) -> list[Scored]:
        return reward_scores("math", completions, [{"answer": self.gold(r)} for r in rows])


class Math500(MathSuite):
    name = "math500"
    description = "MATH-500 (Lightman et al.): accuracy overall, by subject and by level"
    rel_path = "math500/test.jsonl"
    hub = ("HuggingFaceH4/MATH-500", None, "test")
    id_field = "unique_id"
    group_fields = ("subject", "level")


class AIME24(MathSuite):
    name = "aime24"
    description = "AIME 2024 (30 problems, integer answers)"
    rel_path = "aime24/test.jsonl"
    hub = ("HuggingFaceH4/aime_2024", None, "train")
    id_field = "id"


class AMC23(MathSuite):
    name = "amc23"
    description = "AMC 2023 (40 problems)"
    rel_path = "amc23/test.jsonl"
    hub = ("math-ai/amc23", None, "test")
    id_field = "id"


GSM8K_INSTRUCTION = ("Solve the problem step by step. Then write the final answer as a plain number "
                     "on the last line, in the form \"#### <number>\".")


class GSM8K(_LocalOrHub):
    name = "gsm8k"
    description = "GSM8K grade-school math: math-verified accuracy + lm-eval strict/flexible match"
    rel_path = "gsm8k/{split}.jsonl"
    hub = ("openai/gsm8k", "main", "test")
    fields = ("question", "answer")
    metrics = ("accuracy", "strict_match", "flexible_extract")

    def prompt(self, row: dict) -> list[dict]:
        return [{"role": "user", "content": f"{row['question']}\n\n{GSM8K_INSTRUCTION}"}]

    def train_row(self, row: dict) -> dict:
        # The gold number as `answer` (what rewards and SFT targets read), the worked
        # solution beside it.
        return {**super().train_row(row), "answer": lm_eval_gsm8k.gold_number(row["answer"]), "solution": row["answer"]}

    def score_fields(self, row: dict) -> tuple:
        return (row["answer"],)  # the gold solution; the question does not change a verdict

    def score(self, completions, rows) -> list[Scored]:
        golds = [lm_eval_gsm8k.gold_number(r["answer"]) for r in rows]
        verified = reward_scores("math", completions, [{"answer": g} for g in golds])
        out = []
        for c, r, v in zip(completions, rows, verified):
            strict = lm_eval_gsm8k.strict_extract(c)
            flexible = lm_eval_gsm8k.flexible_extract(c)
            v.extra = {"strict_match": lm_eval_gsm8k.exact_match(strict, r["answer"]),
                       "flexible_extract": lm_eval_gsm8k.exact_match(flexible, r["answer"])}
            out.append(v)
        return out
