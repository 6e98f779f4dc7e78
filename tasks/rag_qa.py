"""RAG QA as a task: the knowledge world's questions (or a FlashRAG benchmark's), trained on
and evaluated on with one prompt.

    task = tasks.get_task("world:data/world:test:retrieve:k=3")
    rows = task.load()                 # one split's questions; retrieve mode adds contexts/citations/retrieved
    task.prompt(rows[0])               # chat messages: tasks.passages.grounded_prompt(question, contexts)
    task.score(completions, rows)      # EM/F1, citations, support, abstention, recall@k

    assay eval run world:data/world --model SmolLM2-135M-Instruct         # test split, retrieve mode
    # a training config:  data: {source: "world:data/world:retrieve"}    # data.split (train) is the split

The name is ``world:DIR`` (a directory written by `assay data world`) or ``flashrag:PATH``
(anything `tasks.flashrag.load_flashrag` reads: a FlashRAG JSONL file or directory, or a
known name), followed by ``:``-separated options in any order:

- a split: ``train``, ``dev`` or ``test`` (default: the split asked for, else test);
- a mode: ``closed_book`` (the question alone), ``retrieve`` (default: the top-k passages
  of an assay index over the world's corpus, in the one grounded prompt of
  `tasks.passages`), ``search`` (search in the loop: the prompt tells the model how to
  call ``<search>…</search>``; generation with retrieval between turns is
  `tasks.search_loop.SearchRollout`, which `assay eval run` uses through
  `eval.search_generation` and training through `train.rollouts`; SFT learns from
  programmatic traces, `RagQA.search_trace`);
- ``k=N`` (passages per prompt, default 3), ``retriever=bm25|hybrid|dense`` (default bm25:
  the cheap mode, no query embedding; invented names make lexical search strong here),
  ``types=single,two_hop`` (keep these question types only), ``index=DIR`` (the index;
  default DIR/index for a world, built there on first use from corpus.jsonl).

FlashRAG rows with their own paragraphs (HotpotQA distractor) use those as the retrieved
passages (the first k); other FlashRAG rows need ``index=DIR`` for retrieve mode.

Scoring, per completion (`score_rag_qa`; `Scored.score` is EM on answerable questions,
abstaining on unanswerable ones; the rest are extra metrics the eval
runner averages, None where they do not apply): ``exact_match`` and ``f1`` (answerable
only; max over answers), ``contains_answer`` (answerable: an accepted answer occurs in
the response, FlashRAG's lenient ``acc``, beside EM), ``abstained`` (every row), ``abstention`` (unanswerable: did it
abstain), ``false_abstention`` (answerable: did it abstain), ``citation_precision`` and
``citation_recall`` (over responses that cite: `rag_qa_metrics.citation_scores`),
``cited`` (did it cite), ``supported`` (answerable, answered: the short answer occurs in
a retrieved passage), ``recall@k`` (share of the gold documents among the retrieved) and
``hit@k`` (any gold document among them). In search mode
the retrieved passages are read back from the completion's ``<information>`` blocks and
mapped to corpus ids, so a predictions file scores the same way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from rewards.conventions import ABSTENTION, blocks, claim, information_passages, is_abstention, short_answer
from tasks import rag_qa_metrics as M
from tasks.base import Scored, Task, TaskError
from tasks.passages import SEARCH_INSTRUCTIONS, grounded_prompt

MODES = ("closed_book", "retrieve", "search")
SPLITS = ("train", "dev", "test")
ABSTAIN_TEXT = ABSTENTION  # what assay's targets and traces say when the passages do not give the answer
CLOSED_BOOK_INSTRUCTION = "Answer the question in a few words."
SEARCH_TEMPLATE = "{instruction}\n\nQuestion: {question}"
DEFAULT_K = 3


def closed_book_prompt(question: str) -> str:
    return f"{CLOSED_BOOK_INSTRUCTION}\n\nQuestion: {question}"


def search_prompt(question: str) -> str:
    return SEARCH_TEMPLATE.format(instruction=SEARCH_INSTRUCTIONS, question=question)


def _collapse(text: str) -> str:
    return " ".join(str(text).split())


class RagQA(Task):
    """Questions of one split of a knowledge world (or FlashRAG file), in one of three modes."""

    description = "RAG QA over a knowledge world: EM/F1, citations, abstention, recall@k (world:DIR[:split][:mode])"
    metrics = ("accuracy", "exact_match", "f1", "citation_precision", "abstention")
    fields = ("question", "answers")
    id_field = "id"
    group_fields = ("type",)
    default_split = "test"

    def __init__(self, spec: str, data_root: str | None = None, split: str | None = None):
        kind, _, rest = spec.partition(":")
        if kind not in ("world", "flashrag") or not rest:
            raise TaskError(f"RAG QA task {spec!r}: use world:DIR[:split][:mode][:k=N] or flashrag:PATH[...]")
        parts = rest.split(":")
        self.kind, self.path = kind, parts[0]
        self.mode, self.k, self.retriever, self.types, self.index_dir = "retrieve", DEFAULT_K, "bm25", None, None
        name_split = None
        for opt in parts[1:]:
            key, eq, value = opt.partition("=")
            if not eq and opt in SPLITS:
                name_split = opt
            elif not eq and opt.replace("-", "_") in MODES:
                self.mode = opt.replace("-", "_")
            elif key == "k" and value.isdigit() and int(value) > 0:
                self.k = int(value)
            elif key == "retriever" and value in ("hybrid", "bm25", "dense"):
                self.retriever = value
            elif key == "types" and value:
                self.types = tuple(t for t in value.split(",") if t)
            elif key == "index" and value:
                self.index_dir = value
            elif key == "split" and value:
                name_split = value
            else:
                raise TaskError(f"RAG QA task {spec!r}: unknown option {opt!r} (a split {'/'.join(SPLITS)}, a mode "
                                f"{'/'.join(MODES)}, k=N, retriever=hybrid|bm25|dense, types=a,b, index=DIR)")
        super().__init__(data_root, name_split or split)
        self.name = spec
        self.max_new_tokens = 160 if self.mode == "search" else 32
        if kind == "world":
            d = Path(self.path)
            if not (d / "questions.jsonl").is_file() or not (d / "corpus.jsonl").is_file():
                raise TaskError(f"world:{self.path}: not a knowledge-world directory (no questions.jsonl/corpus.jsonl; "
                                "write one with `assay data world --out DIR`)")
            if self.index_dir is None:
                self.index_dir = str(d / "index")
        self._index = None
        self._corpus_ids: dict[str, str] | None = None

    # ---- data -----------------------------------------------------------------------------
    def source(self) -> str:
        return str(Path(self.path) / "questions.jsonl") if self.kind == "world" else self.path

    def _questions(self) -> list[dict]:
        if self.kind == "world":
            from tasks.data import read_jsonl

            rows = [r for r in read_jsonl(Path(self.path) / "questions.jsonl") if r.get("split") == self.split]
        else:
            from tasks.flashrag import load_flashrag

            rows = load_flashrag(self.path, self.split, data_root=self.root)
        if self.types:
            rows = [r for r in rows if r.get("type") in self.types]
        for r in rows:
            r.pop("_line", None)
        return rows

    def _load(self) -> list[dict]:
        rows = self._questions()
        if not rows:
            raise TaskError(f"{self.source()}: no questions in split {self.split!r}"
                            + (f" of types {','.join(self.types)}" if self.types else ""))
        if self.mode == "retrieve":
            rows = self._retrieve(rows)
        return rows

    def index(self):
        """The assay index over the world's corpus (built under DIR/index on first use)."""
        if self._index is None:
            from rag.index import Index

            if not self.index_dir:
                raise TaskError(f"{self.name}: retrieve/search mode needs an index (add :index=DIR)")
            path = Path(self.index_dir)
            if not (path / "manifest.json").exists():
                if self.kind != "world":
                    raise TaskError(f"{self.name}: index {path} does not exist (build it with `assay index`)")
                from rag.documents import Document

                docs = [Document(str(d["_id"]), str(d["text"]), "corpus.jsonl")
                        for d in _read_corpus(Path(self.path) / "corpus.jsonl")]
                Index.build(docs, path, progress=False)
            self._index = Index.open(path)
        return self._index

    def _retrieve(self, rows: list[dict]) -> list[dict]:
        out = []
        if all(isinstance(r.get("passages"), list) and r["passages"] for r in rows) and self.kind == "flashrag":
            for r in rows:
                ps = r["passages"][: self.k]
                out.append({**r, "contexts": [p["text"] for p in ps], "retrieved": [str(p.get("id")) for p in ps],
                            "citations": [{"n": n, "doc_id": str(p.get("id"))} for n, p in enumerate(ps, 1)]})
            return out
        found = self._cached_retrievals(rows)
        todo = [r for r in rows if r["id"] not in found]
        if todo:
            index = self.index()
            questions = [r["question"] for r in todo]
            for i in range(0, len(questions), 128):
                for r, hs in zip(todo[i : i + 128], index.search_many(questions[i : i + 128], k=self.k, mode=self.retriever)):
                    found[r["id"]] = {"contexts": [h.chunk.text for h in hs], "retrieved": [h.chunk.doc_id for h in hs],
                                      "citations": [{"n": n, "doc_id": h.chunk.doc_id, "chunk_id": h.chunk.id,
                                                     "start": h.chunk.start, "end": h.chunk.end, "score": float(h.score)}
                                                    for n, h in enumerate(hs, 1)]}
            self._save_retrievals(found)
        return [{**r, **found[r["id"]]} for r in rows]

    def _retrieval_cache(self) -> Path | None:
        """Where retrievals are kept (a world's DIR/retrieved/), keyed by the index version,
        retriever and k: the same questions are never searched twice."""
        if self.kind != "world":
            return None
        try:
            from rag.index import read_manifest

            version = str(read_manifest(self.index_dir).get("version", ""))
        except Exception:  # noqa: BLE001 - no index yet: nothing cached
            return None
        return Path(self.path) / "retrieved" / f"{Path(self.index_dir).name}-{version}-{self.retriever}-k{self.k}.json"

    def _cached_retrievals(self, rows: list[dict]) -> dict[str, dict]:
        path = self._retrieval_cache()
        if path is None or not path.exists():
            return {}
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return {}
        return {r["id"]: data[r["id"]]["hit"] for r in rows if r["id"] in data and data[r["id"]]["q"] == r["question"]}

    def _save_retrievals(self, found: dict[str, dict]) -> None:
        path = self._retrieval_cache()
        if path is None:
            return
        from core.files import atomic_write_text

        questions = {str(r["id"]): r["question"] for r in self._questions_all()}
        old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
        old.update({i: {"q": questions.get(i, ""), "hit": h} for i, h in found.items()})
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(old))

    def _questions_all(self) -> list[dict]:
        from tasks.data import read_jsonl

        return read_jsonl(Path(self.path) / "questions.jsonl")

    # ---- prompts --------------------------------------------------------------------------
    def user_text(self, row: dict) -> str:
        q = row["question"]
        if self.mode == "closed_book":
            return closed_book_prompt(q)
        if self.mode == "search":
            return search_prompt(q)
        if "contexts" not in row:
            raise TaskError(f"{self.name}: row {row.get('id')!r} has no retrieved contexts (load it with this task)")
        return grounded_prompt(q, row["contexts"])

    def prompt(self, row: dict) -> list[dict]:
        return [{"role": "user", "content": self.user_text(row)}]

    def evidence(self, row: dict) -> list[int]:
        """1-based positions of the shown passages that back the answer: for a comparison,
        the gold documents shown; otherwise the gold documents that contain an accepted
        answer, else any passage that contains one. [] for an unanswerable question."""
        answers = row.get("answers") or []
        if not answers:
            return []
        contexts = list(row.get("contexts") or [])
        gold = {str(g) for g in row.get("gold_docs") or []}
        retrieved = [str(d) for d in row.get("retrieved") or []]
        shown_gold = [n for n, d in enumerate(retrieved, 1) if d in gold]
        if row.get("type") == "comparison" and shown_gold:
            return shown_gold
        holds = [n for n, c in enumerate(contexts, 1) if any(M.answer_supported(a, [c]) for a in answers)]
        return [n for n in holds if n in shown_gold] or holds

    def target(self, row: dict) -> str:
        """The SFT target: the short gold answer with citations of the passages holding it
        ("Varno Keltis [2]"); "The passages do not say." when the question is unanswerable
        or no shown passage holds the answer. Closed book: the bare answer."""
        answers = row.get("answers") or []
        if self.mode == "closed_book":
            return answers[0] if answers else "I don't know."
        if self.mode == "search":  # the trace's last step: the answer after the searches
            return self.search_trace(row)[-1]["action"]
        if not answers:
            return ABSTAIN_TEXT
        pos = self.evidence(row)
        if not pos:
            return ABSTAIN_TEXT
        return f"{answers[0]} {''.join(f'[{n}]' for n in pos)}"

    def search_queries(self, row: dict) -> list[str]:
        """The searches a programmatic trace makes, one per entity the question needs: the
        question's entity (single, unanswerable), then the bridge entity the first result
        names (two_hop), or both compared entities (comparison). A search for a name is what
        finds an invented entity; the second hop's name appears only in the first hop's
        document, so a model taught these traces must read it from the results."""
        ents = [str(e) for e in row.get("entities") or []]
        if not ents:
            return [row["question"]]
        if row.get("type") == "two_hop" and row.get("bridge"):
            return [ents[0], str(row["bridge"])]
        if row.get("type") == "comparison" and len(ents) > 1:
            return ents[:2]
        return ents[:1]

    def search_trace(self, row: dict) -> list[dict]:
        """A search-mode SFT target written by program (Search-R1's warm start): each step's
        `action` (what the model writes: ``<search>query</search>``, then ``<answer>…</answer>``)
        and, for a search, the `passages` it got back (possibly none: the rollout then pastes
        "No results.") -- this task's index, retriever and k, numbered on across searches as
        the rollout numbers them. The answer cites the shown
        passages that hold it (gold documents first); when none does, or the question is
        unanswerable, the answer is the abstention."""
        steps, shown, ids = [], [], []
        from tasks.search_loop import index_retriever

        retrieve = index_retriever(self.index(), self.retriever)  # the rollout's own retriever
        for query in self.search_queries(row):
            found = retrieve(query, self.k)
            steps.append({"action": f"<search>{query}</search>", "passages": [p.text for p in found]})
            shown += [p.text for p in found]
            ids += [p.doc_id for p in found]
        answers = row.get("answers") or []
        cites = self.evidence({**row, "contexts": shown, "retrieved": ids}) if answers else []
        answer = f"{answers[0]} {''.join(f'[{n}]' for n in cites)}" if cites else ABSTAIN_TEXT
        steps.append({"action": f"<answer>{answer}</answer>"})
        return steps

    def train_row(self, row: dict) -> dict:
        """A fixed set of columns (Arrow wants one schema): the question, gold fields, the
        retrieved passages and the SFT `completion`."""
        out = {"id": str(row.get("id")), "question": row["question"], "answers": [str(a) for a in row.get("answers") or []],
               "type": str(row.get("type", "")), "gold_docs": [str(g) for g in row.get("gold_docs") or []]}
        if self.mode == "retrieve":
            out["contexts"] = list(row["contexts"])
            out["retrieved"] = list(row["retrieved"])
        out["answer"] = out["answers"][0] if out["answers"] else ABSTAIN_TEXT
        if self.mode == "search":  # steps with what the search returned: train.data renders the turns
            trace = self.search_trace(row)
            out["search_trace"] = json.dumps(trace)
            out["completion"] = trace[-1]["action"]
        else:
            out["completion"] = self.target(row)
        return out

    # ---- scoring --------------------------------------------------------------------------
    def scoring_identity(self) -> str:
        return json.dumps([self.mode, self.k, self.retriever])

    def score_fields(self, row: dict) -> tuple:
        return (row.get("answers"), row.get("gold_docs"), row.get("contexts"), row.get("retrieved"))

    def _corpus_lookup(self) -> dict[str, str]:
        """Collapsed passage-text prefix -> document id (to map pasted search results back)."""
        if self._corpus_ids is None:
            self._corpus_ids = {}
            if self.kind == "world":
                for d in _read_corpus(Path(self.path) / "corpus.jsonl"):
                    self._corpus_ids.setdefault(_collapse(d["text"])[:80], str(d["_id"]))
        return self._corpus_ids

    def searched(self, completion: str) -> tuple[list[str], list[str]]:
        """(passage texts, doc ids) pasted into a search-mode completion, numbered as shown."""
        texts = information_passages(completion)
        lookup = self._corpus_lookup()
        ids = [lookup.get(_collapse(t)[:80], "") for t in texts]
        return texts, ids

    def score(self, completions: Sequence[str], rows: Sequence[dict]) -> list[Scored]:
        return score_rag_qa(completions, rows, self.mode, searched=self.searched)


def score_rag_qa(completions: Sequence[str], rows: Sequence[dict], mode: str = "retrieve",
                 searched: Callable[[str], tuple[list[str], list[str]]] | None = None) -> list[Scored]:
    """RAG QA's scores of each completion (the module doc lists them). A row holds
    ``answers`` ([] = unanswerable) and, in retrieve mode, the ``contexts`` shown and the
    ``retrieved`` document ids (``gold_docs`` for citations and recall); in search mode the
    passages are read back from the completion by `searched`. Every RAG QA scorer -- the
    knowledge world's task and a YAML ``rag_qa`` suite -- is this one function."""
    out = []
    for c, row in zip(completions, rows):
        answers = [str(a) for a in row.get("answers") or []]
        gold = [str(g) for g in row.get("gold_docs") or []]
        if mode == "search":
            if searched is None:
                raise TaskError("search mode needs a reader of the passages pasted into the completion")
            contexts, retrieved = searched(c)
        else:
            contexts, retrieved = list(row.get("contexts") or []), [str(d) for d in row.get("retrieved") or []]
        said = claim(c)  # the model's own words: its answer, never the pasted information
        pred = short_answer(c)
        abstained = is_abstention(said)
        extra: dict[str, float | None] = {"abstained": float(abstained)}
        if answers:
            em, f1 = M.exact_match(pred, answers), M.token_f1(pred, answers)
            extra.update(exact_match=em, f1=f1, abstention=None, false_abstention=float(abstained),
                         contains_answer=M.contains_answer(said, answers))
            extra["supported"] = None if abstained or not contexts else float(M.answer_supported(pred, contexts))
            score, reason = em, ("matches" if em else f"expected {answers[0]!r}")
        else:
            extra.update(exact_match=None, f1=None, abstention=float(abstained), false_abstention=None, supported=None,
                         contains_answer=None)
            score, reason = float(abstained), "abstained" if abstained else "answered an unanswerable question"
        if mode != "closed_book":
            passages = [{"text": t, "id": d} for t, d in zip(contexts, retrieved)] if retrieved else contexts
            cs = M.citation_scores(said, passages, gold, answers)
            cited = bool(cs["cited"])
            extra["cited"] = float(cited)
            extra["citation_precision"] = cs["precision"] if cited else None
            extra["citation_recall"] = cs["recall"] if cited and answers else None
            k = max(len(retrieved), 1)
            extra["recall@k"] = M.recall_at_k(retrieved, gold, k) if gold else None
            extra["hit@k"] = M.hit_at_k(retrieved, gold, k) if gold else None
        if mode == "search":
            extra["search_calls"] = float(len(blocks(c, "search")))
        out.append(Scored(score, reason, pred, extra))
    return out


def _read_corpus(path: Path) -> list[dict]:
    from core.files import iter_jsonl

    return [rec for _, rec in iter_jsonl(path, TaskError)]
