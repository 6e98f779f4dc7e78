"""A task: one definition of a benchmark or training task, shared by `train` and `eval`.

A task knows how its rows load (a local file under the shared data root, else its hub
dataset), its canonical fields, its prompt, its gold answer and how a completion is
scored. `eval` runs tasks as benchmark suites; `train` takes its rows and prompts from
the same object, so the prompt a model is trained on is, byte for byte, the prompt it
is evaluated on (tests/test_tasks.py holds every task to that).

Scores come from the reward harness through its front door (`rewards.score`), so a
task's accuracy and a training run's reward are the same function. A task returns one
`Scored` per completion: the score in [0, 1] (None = not scorable), the reason, the
extracted answer, and any extra per-sample metrics (strict_match, f1, ...) which the
eval runner averages next to `accuracy` and `pass@k`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from core.errors import UserError
from tasks.data import require_fields


class TaskError(UserError, ValueError):
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
    whose change can change a verdict, the sandbox included) and the tasks' scorers. A
    fixed bug in a reward must never be hidden by scores cached before the fix."""
    global _SCORER_VERSION
    if _SCORER_VERSION is None:
        import hashlib

        from rewards.base import code_fingerprint

        here = Path(__file__).resolve().parent
        files = sorted(here.glob("*.py"))  # every task's scoring code
        h = hashlib.blake2b(code_fingerprint().encode(), digest_size=12)
        for f in files:
            if f.exists():
                h.update(f.name.encode())
                h.update(f.read_bytes())
        _SCORER_VERSION = h.hexdigest()
    return _SCORER_VERSION


class Task:
    """Base: subclasses set the data source, the prompt and the scorer."""

    name: str = ""
    description: str = ""
    metrics: tuple[str, ...] = ("accuracy",)  # headline metrics (besides pass@k etc.)
    fields: tuple[str, ...] = ()  # fields a data / predictions row must have
    id_field: str | None = None  # how a predictions row finds its data row
    group_fields: tuple[str, ...] = ()  # accuracy broken down by these row fields
    stop: tuple[str, ...] = ()
    max_new_tokens: int | None = None  # a suite-specific default budget
    default_split: str = "test"  # what a benchmark evaluates on; training asks for its own split
    writes_code: bool = False  # the answer is a program (a code block in it is the answer, not noise)

    def __init__(self, data_root: str | None = None, split: str | None = None):
        self.root = data_root
        self.split = split or self.default_split

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
        """The prompt for a row: what the model is trained on and evaluated on, the same."""
        raise NotImplementedError

    def train_row(self, row: dict) -> dict:
        """A loaded row as a training row: its fields, plus `question` (the text a custom
        prompt template may name). The prompt itself is `prompt(row)`, as in evaluation."""
        out = dict(row)
        out.pop("_line", None)
        if "question" not in out:
            for key in ("problem", "text", "prompt"):
                if isinstance(out.get(key), str):
                    out["question"] = out[key]
                    break
        return out

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


