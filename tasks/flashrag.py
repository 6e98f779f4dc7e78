"""Real RAG QA benchmarks in FlashRAG's layout, mapped to the knowledge world's question schema.

    rows = load_flashrag("nq", "test")                         # hub: RUC-NLPIR/FlashRAG_datasets
    rows = load_flashrag("hotpotqa_distractor", "dev")         # + each question's 10 paragraphs
    rows = load_flashrag("data/fixtures/flashrag/popqa", "test")   # a local DIR/<split>.jsonl
    rows = load_flashrag("my/nq/dev.jsonl")                    # a local file

FlashRAG (RUC-NLPIR) publishes its preprocessed benchmarks as one JSON Lines file per
split, ``<dataset>/<split>.jsonl``, each line ``{"id", "question", "golden_answers":
[...], "metadata": {...}}`` (flashrag/dataset/dataset.py reads exactly these keys; the
hub dataset card lists the configs and splits: nq train/dev/test, triviaqa train/dev/test,
popqa test, hotpotqa train/dev). HotpotQA's metadata carries the original fields: ``type``
("bridge" / "comparison"), ``level``, ``supporting_facts`` ({"title": [...], "sent_id":
[...]}) and ``context`` ({"title": [...], "sentences": [[...], ...]}); the list-of-pairs
form of the original HotpotQA JSON is accepted too.

Every row becomes: ``id``, ``question``, ``answers`` (golden_answers as strings), ``type``
(``single`` for NQ, TriviaQA and PopQA; HotpotQA's bridge -> ``two_hop``, comparison ->
``comparison``; no answers -> ``unanswerable``), ``split``, ``gold_docs`` (HotpotQA: the
supporting paragraphs' titles, in order of first support; these are Wikipedia titles, not
the ids of any particular corpus), ``entities`` (PopQA: the subject; HotpotQA: the
supporting titles), ``source`` (``flashrag/<dataset>``) and the original ``metadata``.

HotpotQA has two settings: *distractor* (``hotpotqa_distractor``) gives each question
its own 10 paragraphs, 2 gold + 8 distractors, attached as ``passages`` ([{"id", "title",
"text"}], id = title); *fullwiki* (``hotpotqa_fullwiki``, and plain ``hotpotqa``) gives
none: retrieve from a Wikipedia corpus. The questions are the same.

Where rows come from: a path (a ``.jsonl`` file, or a directory holding
``<split>.jsonl``); else a known name, read from ``<data root>/flashrag/<config>/<split>.jsonl``
when that file exists (``$ASSAY_SHARED_DATA``), else from the hub with
``datasets.load_dataset("RUC-NLPIR/FlashRAG_datasets", config, split=split)`` (online
users). A missing file, an unknown name or a malformed row is a one-line error naming it.
The offline tests use small fixtures written by the team in this layout
(data/fixtures/flashrag/, see its README), never downloaded data.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

from core.errors import UserError

HUB_ID = "RUC-NLPIR/FlashRAG_datasets"
# name -> (FlashRAG config, HotpotQA setting or None)
DATASETS: dict[str, tuple[str, str | None]] = {
    "nq": ("nq", None),
    "triviaqa": ("triviaqa", None),
    "popqa": ("popqa", None),
    "hotpotqa": ("hotpotqa", "fullwiki"),
    "hotpotqa_fullwiki": ("hotpotqa", "fullwiki"),
    "hotpotqa_distractor": ("hotpotqa", "distractor"),
}
SPLIT_ALIASES = {"validation": "dev", "val": "dev", "eval": "dev"}
HOTPOT_TYPES = {"bridge": "two_hop", "comparison": "comparison"}


class FlashRAGError(UserError, ValueError):
    """A missing file, unknown dataset or malformed row (one line, exit 2 from the CLI)."""


def load_flashrag(path_or_name: str | os.PathLike, split: str = "test", *, setting: str | None = None,
                  limit: int | None = None, data_root: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """Questions of a FlashRAG-layout benchmark in assay's question schema (see the module
    docstring). `setting` ("distractor" / "fullwiki") overrides the HotpotQA setting a
    name implies; `limit` keeps the first N rows."""
    split = SPLIT_ALIASES.get(split, split)
    if setting not in (None, "distractor", "fullwiki"):
        raise FlashRAGError(f"setting must be 'distractor' or 'fullwiki', got {setting!r}")
    text = os.fspath(path_or_name)
    path = Path(text)
    if text in DATASETS and not path.exists():
        config, implied = DATASETS[text]
        dataset = config
        local = _data_root(data_root) / "flashrag" / config / f"{split}.jsonl"
        if local.is_file():
            source, records = str(local), _read(local)
        else:
            source, records = f"{HUB_ID}/{config}:{split}", _hub(config, split)
    else:
        if path.is_dir():
            path = path / f"{split}.jsonl"
        looks_like_path = path.suffix in (".jsonl", ".json") or os.sep in text or path.exists()
        if not looks_like_path:
            raise FlashRAGError(f"unknown FlashRAG dataset {text!r}; known: {', '.join(DATASETS)} "
                                "(or a path to a <split>.jsonl file or its directory)")
        if not path.is_file():
            raise FlashRAGError(f"{path}: no such file (expected FlashRAG JSONL: id, question, golden_answers, metadata)")
        stem = path.parent.name.lower()
        dataset = DATASETS.get(stem, (stem, None))[0]
        implied = DATASETS.get(stem, (stem, None))[1]
        source, records = str(path), _read(path)
    setting = setting or implied
    rows = []
    for lineno, rec in records:
        rows.append(_convert(rec, dataset, split, setting, f"{source}:{lineno}"))
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _data_root(explicit) -> Path:
    if explicit:
        return Path(explicit)
    from core.files import shared_data_root

    return shared_data_root()


def _read(path: Path) -> Iterable[tuple[int, dict]]:
    from core.files import iter_jsonl

    return iter_jsonl(path, FlashRAGError)


def _hub(config: str, split: str) -> Iterable[tuple[int, dict]]:
    """The online path: FlashRAG's hub dataset, through the one hub loader (tasks.data)."""
    from tasks.data import TaskDataError, load_hub

    try:
        rows = load_hub(HUB_ID, split, config)
    except TaskDataError as exc:
        raise FlashRAGError(f"{exc} (FlashRAG config {config!r})") from None
    return ((r.pop("_line"), r) for r in rows)


def _convert(rec: dict, dataset: str, split: str, setting: str | None, where: str) -> dict[str, Any]:
    question = rec.get("question")
    if not isinstance(question, str) or not question.strip():
        raise FlashRAGError(f"{where}: missing or empty field 'question'")
    if "golden_answers" not in rec:
        raise FlashRAGError(f"{where}: missing field 'golden_answers'")
    golden = rec["golden_answers"]
    if golden is None:
        golden = []
    elif isinstance(golden, (str, int, float)):
        golden = [golden]
    if not isinstance(golden, list):
        raise FlashRAGError(f"{where}: field 'golden_answers' must be a list of strings, got {type(golden).__name__}")
    answers = list(dict.fromkeys(str(a) for a in golden if str(a).strip()))
    meta = rec.get("metadata") or {}
    if not isinstance(meta, dict):
        raise FlashRAGError(f"{where}: field 'metadata' must be an object, got {type(meta).__name__}")
    qid = rec.get("id")
    row: dict[str, Any] = {"id": str(qid) if qid is not None else where.rsplit(":", 1)[-1], "question": question,
                           "answers": answers, "type": "single", "split": split, "gold_docs": [],
                           "entities": [], "source": f"flashrag/{dataset}", "metadata": meta}
    if dataset == "hotpotqa":
        row["type"] = HOTPOT_TYPES.get(str(meta.get("type", "")).lower(), "two_hop")
        titles = _supporting_titles(meta.get("supporting_facts"), where)
        row["gold_docs"] = titles
        row["entities"] = list(titles)
        if meta.get("level"):
            row["level"] = meta["level"]
        if setting == "distractor":
            passages = _context(meta.get("context"), where)
            if not passages:
                raise FlashRAGError(f"{where}: the distractor setting needs metadata.context (the question's paragraphs)")
            row["passages"] = passages
    elif dataset == "popqa":
        subj = meta.get("subj") or meta.get("s_wiki_title")
        if subj:
            row["entities"] = [str(subj)]
    if not answers:
        row["type"] = "unanswerable"
    return row


def _supporting_titles(sf: Any, where: str) -> list[str]:
    if sf is None:
        return []
    if isinstance(sf, dict):
        titles = sf.get("title") or []
    elif isinstance(sf, list):
        titles = [p[0] for p in sf if isinstance(p, (list, tuple)) and p]
    else:
        raise FlashRAGError(f"{where}: metadata.supporting_facts must be an object or a list of [title, sent_id]")
    return list(dict.fromkeys(str(t) for t in titles))


def _context(ctx: Any, where: str) -> list[dict[str, str]]:
    if ctx is None:
        return []
    if isinstance(ctx, dict):
        pairs = list(zip(ctx.get("title") or [], ctx.get("sentences") or []))
    elif isinstance(ctx, list):
        pairs = [(p[0], p[1]) for p in ctx if isinstance(p, (list, tuple)) and len(p) == 2]
    else:
        raise FlashRAGError(f"{where}: metadata.context must be an object or a list of [title, sentences]")
    out = []
    for title, sentences in pairs:
        text = "".join(sentences) if isinstance(sentences, list) else str(sentences)
        out.append({"id": str(title), "title": str(title), "text": text.strip()})
    return out
