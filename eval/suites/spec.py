"""Custom suites from a small YAML task spec, including retrieval-augmented QA.

    # data/suites/capitals.yaml
    name: capitals
    data: capitals.jsonl            # relative to this file; or hub: {id: org/ds, split: test}
    prompt:
      style: chat                   # chat (through the model's chat template) or plain
      template: "What is the capital of {country}? Answer with the city only."
      fewshot: 2                    # the first 2 rows of `fewshot_data` (default: data) as examples
    answer_field: capital
    metrics: [math]                 # rewards used as metrics; the first is the primary score
                                    # (exact_match and f1 are built in, no reward needed)

`type: rag_qa` adds retrieval: each question is searched in an assay index (`index`,
`k`, `mode`), the retrieved chunks are numbered into the prompt (the grounded prompt
training uses), and the answer is scored by the RAG QA task's own scorer
(`tasks.rag_qa.score_rag_qa`: exact match, token F1, citation precision, abstention on an
empty `answer_field` list, support by the passages) against `answer_field` (a string or a
list). With a `doc_field` naming the gold document id(s), retrieval recall@k (share of the
gold documents retrieved) and hit@k (any of them retrieved) are reported too.

Template fields are the row's fields; a missing one is an error naming file:line.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from rewards.conventions import short_answer
from rewards.qa import exact_match, token_f1
from tasks.base import Scored, Task, TaskError, reward_scores
from tasks.data import TaskDataError, load_hub, read_jsonl, require_fields
from tasks.passages import grounded_prompt

BUILTIN_METRICS = ("exact_match", "f1")


@dataclass
class HubConfig:
    id: str = ""
    """Hub dataset id (e.g. openai/gsm8k)."""
    split: str = "test"
    """Split to evaluate."""
    config: str | None = None
    """Dataset config name, if it has several."""


@dataclass
class PromptConfig:
    style: str = "chat"
    """chat: the template is the user message, rendered with the model's chat template; plain: raw text."""
    template: str = "{question}"
    """Python format string over the row's fields."""
    system: str | None = None
    """A system message (chat style) or a preamble line (plain style)."""
    fewshot: int = 0
    """How many solved examples to show before the question."""
    fewshot_data: str | None = None
    """File of examples (default: the first rows of `data`, which are then not evaluated)."""
    answer_template: str = "{answer}"
    """How a few-shot example's answer is written (format string over its fields)."""


@dataclass
class SuiteConfig:
    name: str = ""
    """Suite name in reports (default: the file name)."""
    type: str = "custom"
    """custom or rag_qa."""
    description: str = ""
    """One line for `assay eval suites` and the report."""
    data: str | None = None
    """JSONL (or JSON list) file, relative to the spec file."""
    hub: HubConfig | None = None
    """A hub dataset instead of a local file."""
    prompt: PromptConfig = field(default_factory=PromptConfig)
    """How a row becomes a prompt."""
    answer_field: str = "answer"
    """The gold answer's field (a string, or a list of acceptable answers for exact_match/f1)."""
    id_field: str | None = None
    """Field that identifies a row (predictions files join on it); default: the row index."""
    group_field: str | None = None
    """Report accuracy per value of this field."""
    metrics: list[str] = field(default_factory=lambda: ["exact_match"])
    """Reward names and/or exact_match, f1; the first is the primary score (accuracy)."""
    metric_options: dict[str, dict] = field(default_factory=dict)
    """Options per reward metric, e.g. {math: {lenient: true}} (the reward's own option names)."""
    stop: list[str] = field(default_factory=list)
    """Stop strings for generation."""
    max_new_tokens: int | None = None
    """Generation budget for this suite (default: the run's)."""
    index: str | None = None
    """rag_qa: the assay index directory (relative to the spec file)."""
    k: int = 4
    """rag_qa: how many chunks to retrieve."""
    mode: str = "hybrid"
    """rag_qa: hybrid, bm25 or dense retrieval."""
    doc_field: str | None = None
    """rag_qa: field with the gold document id (or ids), for retrieval recall@k."""




class SpecSuite(Task):
    def __init__(self, spec: SuiteConfig, base: Path, where: str, data_root: str | None = None):
        super().__init__(data_root)
        self.spec = spec
        self.base = base
        self.where = where
        self.name = spec.name or Path(where).stem
        self.description = spec.description or f"custom suite from {where}"
        self.id_field = spec.id_field
        self.group_fields = (spec.group_field,) if spec.group_field else ()
        self.stop = tuple(spec.stop)
        self.max_new_tokens = spec.max_new_tokens
        self.fields = (spec.answer_field,)
        self.metrics = ("accuracy", *[m for m in spec.metrics[1:]])
        if spec.type == "rag_qa":
            # Predictions scored with `assay eval score` bring the chunks they were given.
            self.fields = (spec.answer_field, "contexts")
            self.metrics = (("accuracy", "exact_match", "f1", "citation_precision", "abstention", "supported")
                            + (("recall@k", "hit@k") if spec.doc_field else ()))
        self._fewshot: list[dict] = []
        self._index = None

    def source(self) -> str:
        return str(self.base / self.spec.data) if self.spec.data else f"hub:{self.spec.hub.id}"

    def _read(self, rel: str) -> list[dict]:
        return read_jsonl(self.base / rel)

    def _load(self) -> list[dict]:
        spec = self.spec
        rows = self._read(spec.data) if spec.data else load_hub(spec.hub.id, spec.hub.split, spec.hub.config)
        k = spec.prompt.fewshot
        if k:
            if spec.prompt.fewshot_data:
                pool = self._read(spec.prompt.fewshot_data)
            else:
                pool, rows = rows[:k], rows[k:]
            if len(pool) < k:
                raise TaskDataError(f"{self.where}: fewshot {k} but only {len(pool)} examples")
            self._fewshot = pool[:k]
        # Check every template field now: a typo surfaces before any generation.
        needed = [f for _, f, _, _ in string.Formatter().parse(spec.prompt.template) if f]
        require_fields(rows, [*dict.fromkeys([*needed, spec.answer_field])], self.source())
        if spec.type == "rag_qa":
            rows = self._retrieve(rows)
        return rows

    def _retrieve(self, rows: list[dict]) -> list[dict]:
        if not self.spec.index:
            raise TaskError(f"{self.where}: a rag_qa suite needs `index: DIR`")
        from rag import Index

        path = self.base / self.spec.index
        if not path.exists():
            raise TaskError(f"{self.where}: index directory {path} does not exist (build it with `assay index`)")
        if self._index is None:
            self._index = Index.open(path)
        queries = [self._format(self.spec.prompt.template, r) for r in rows]
        hits = self._index.search_many(queries, k=self.spec.k, mode=self.spec.mode)
        out = []
        for r, hs in zip(rows, hits):
            out.append({**r, "contexts": [h.chunk.text for h in hs], "retrieved": [h.chunk.doc_id for h in hs]})
        return out

    def _format(self, template: str, row: dict) -> str:
        try:
            return template.format_map(row)
        except KeyError as exc:
            raise TaskDataError(f"{self.source()}:{row.get('_line', '?')}: missing field {exc.args[0]!r} "
                            f"used by the prompt template") from None
        except (ValueError, IndexError) as exc:
            raise TaskError(f"{self.where}: bad prompt template {template!r}: {exc}") from None

    def _user_text(self, row: dict) -> str:
        text = self._format(self.spec.prompt.template, row)
        if self.spec.type == "rag_qa":
            text = grounded_prompt(text, row["contexts"])  # the prompt grounded training uses
        return text

    def _answer_text(self, row: dict) -> str:
        return self._format(self.spec.prompt.answer_template, {**row, "answer": _first(row[self.spec.answer_field])})

    def prompt(self, row: dict):
        p = self.spec.prompt
        if p.style == "plain":
            parts = [p.system] if p.system else []
            parts += [f"{self._user_text(ex)}{self._answer_text(ex)}" for ex in self._fewshot]
            parts.append(self._user_text(row))
            return "\n\n".join(parts)
        messages = [{"role": "system", "content": p.system}] if p.system else []
        for ex in self._fewshot:
            messages += [{"role": "user", "content": self._user_text(ex)},
                         {"role": "assistant", "content": self._answer_text(ex)}]
        messages.append({"role": "user", "content": self._user_text(row)})
        return messages

    def scoring_identity(self) -> str:
        import json

        spec = self.spec
        return json.dumps([spec.type, spec.metrics, spec.metric_options, spec.answer_field], sort_keys=True, default=str)

    def score_fields(self, row: dict) -> tuple:
        return tuple(sorted((k, v) for k, v in row.items() if not k.startswith("_")))

    def score(self, completions: Sequence[str], rows: Sequence[dict]) -> list[Scored]:
        spec = self.spec
        if spec.type == "rag_qa":
            return self._score_rag_qa(completions, rows)
        golds = [_as_list(r[spec.answer_field]) for r in rows]
        per_metric: dict[str, list[Scored]] = {}
        names = list(spec.metrics)
        for m in names:
            if m in BUILTIN_METRICS:
                fn = exact_match if m == "exact_match" else token_f1
                vals = []
                for c, g in zip(completions, golds):
                    ans = short_answer(c)
                    s = fn(ans, g)
                    vals.append(Scored(s, ("matches" if s >= 1 else f"expected {g[0]!r}") if m == "exact_match"
                                       else f"token F1 {s:.2f}", ans))
                per_metric[m] = vals
            else:
                reward_rows = [{k: v for k, v in r.items() if not k.startswith("_")} for r in rows]
                for rr, g in zip(reward_rows, golds):
                    rr["answer"] = g[0]
                per_metric[m] = reward_scores(m, completions, reward_rows, spec.metric_options.get(m))
        primary = names[0]
        out = []
        for i in range(len(completions)):
            first = per_metric[primary][i]
            extra = {}
            for m in names[1:]:
                extra[m] = per_metric[m][i].score
            out.append(Scored(first.score, first.reason, first.extracted, extra))
        return out

    def _score_rag_qa(self, completions: Sequence[str], rows: Sequence[dict]) -> list[Scored]:
        from tasks.rag_qa import score_rag_qa

        spec = self.spec
        qa_rows = []
        for r in rows:
            answers = r[spec.answer_field]
            qa_rows.append({"answers": [str(a) for a in answers] if isinstance(answers, (list, tuple)) else [str(answers)],
                            "gold_docs": _as_list(r[spec.doc_field]) if spec.doc_field and spec.doc_field in r else [],
                            "contexts": r.get("contexts") or [], "retrieved": r.get("retrieved") or []})
        return score_rag_qa(completions, qa_rows, "retrieve")


def _as_list(value: Any) -> list[str]:
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value] or [""]
    return [str(value)]


def _first(value: Any) -> str:
    return _as_list(value)[0]


def load_spec_suite(path: str, *, data_root: str | None = None) -> SpecSuite:
    from core.config import load_config

    p = Path(path)
    if not p.exists():
        raise TaskError(f"suite spec {path!r} does not exist")
    spec = load_config(SuiteConfig, p)
    if spec.type not in ("custom", "rag_qa"):
        raise TaskError(f"{path}: type must be custom or rag_qa, got {spec.type!r}")
    if not spec.data and not (spec.hub and spec.hub.id):
        raise TaskError(f"{path}: give `data: FILE.jsonl` or `hub: {{id: ...}}`")
    if spec.prompt.style not in ("chat", "plain"):
        raise TaskError(f"{path}: prompt.style must be chat or plain, got {spec.prompt.style!r}")
    if not spec.metrics:
        raise TaskError(f"{path}: metrics must name at least one reward or exact_match/f1")
    if spec.type == "custom":
        from rewards.base import get

        for m in spec.metrics:
            if m not in BUILTIN_METRICS:
                get(m)  # an unknown reward name fails here, listing the known ones
    return SpecSuite(spec, p.parent, str(p), data_root)
