"""Load a retrieval collection in the BEIR layout, with errors that name file and line.

    DIR/corpus.jsonl       {"_id": ..., "title": ..., "text": ...}   one document a line
    DIR/queries.jsonl      {"_id": ..., "text": ...}                 one query a line
    DIR/qrels/test.tsv     query-id <TAB> corpus-id <TAB> score       graded; header optional

Also accepted: a 4-column TREC qrels line (``qid 0 docid rel``, whitespace separated).
Ids are kept as strings. ``split_queries`` makes the seeded dev/test halves used to tune
on one half and report on the other.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import UserError
from core.files import iter_jsonl


class BeirError(UserError, ValueError):
    pass


@dataclass
class BeirDoc:
    id: str
    title: str
    text: str

    def full_text(self, title: str = "auto") -> str:
        """The text to index. title: "auto" (prepend the title unless the text already
        starts with it), "prepend" (always) or "skip" (never)."""
        t = self.title.strip()
        if not t or title == "skip":
            return self.text
        if title == "auto" and self.text.lstrip().lower().startswith(t.lower()):
            return self.text
        return f"{t}\n\n{self.text}"


@dataclass
class Collection:
    root: Path
    corpus: dict[str, BeirDoc]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    split: str = "test"
    warnings: list[str] = field(default_factory=list)

    def documents(self, title: str = "auto"):
        """The corpus as rag Documents (id = the BEIR _id, so qrels match hits)."""
        from rag import Document

        path = str(self.root / "corpus.jsonl")
        return [Document(id=d.id, text=d.full_text(title), source=path, meta={"title": d.title})
                for d in self.corpus.values()]

    def judged_queries(self) -> dict[str, str]:
        """Queries that have qrels, in file order."""
        return {q: t for q, t in self.queries.items() if q in self.qrels}


def _read_jsonl(path: Path, what: str):
    if not path.exists():
        raise BeirError(f"{path}: no such file (expected the BEIR {what})")
    return iter_jsonl(path, BeirError)


def _id(rec: dict, path: Path, lineno: int) -> str:
    if "_id" not in rec:
        raise BeirError(f"{path}:{lineno}: missing field '_id'")
    v = rec["_id"]
    if not isinstance(v, (str, int)) or isinstance(v, bool) or str(v) == "":
        raise BeirError(f"{path}:{lineno}: field '_id' must be a non-empty string or integer, got {v!r}")
    return str(v)


def _str(rec: dict, key: str, path: Path, lineno: int, required: bool) -> str:
    if key not in rec or rec[key] is None:
        if required:
            raise BeirError(f"{path}:{lineno}: missing field {key!r}")
        return ""
    v = rec[key]
    if not isinstance(v, str):
        raise BeirError(f"{path}:{lineno}: field {key!r} must be a string, got {type(v).__name__}")
    return v


def load_corpus(path: str | Path) -> dict[str, BeirDoc]:
    path = Path(path)
    out: dict[str, BeirDoc] = {}
    for lineno, rec in _read_jsonl(path, "corpus"):
        did = _id(rec, path, lineno)
        if did in out:
            raise BeirError(f"{path}:{lineno}: duplicate document id {did!r}")
        out[did] = BeirDoc(did, _str(rec, "title", path, lineno, False), _str(rec, "text", path, lineno, True))
    if not out:
        raise BeirError(f"{path}: no documents")
    return out


def load_queries(path: str | Path) -> dict[str, str]:
    path = Path(path)
    out: dict[str, str] = {}
    for lineno, rec in _read_jsonl(path, "queries"):
        qid = _id(rec, path, lineno)
        if qid in out:
            raise BeirError(f"{path}:{lineno}: duplicate query id {qid!r}")
        out[qid] = _str(rec, "text", path, lineno, True)
    if not out:
        raise BeirError(f"{path}: no queries")
    return out


def load_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    path = Path(path)
    if not path.exists():
        raise BeirError(f"{path}: no such file (expected BEIR qrels: query-id, corpus-id, score)")
    out: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", errors="strict") as fh:
        try:
            lines = list(fh)
        except UnicodeDecodeError as exc:
            raise BeirError(f"{path}: not UTF-8 ({exc.reason})") from None
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        parts = line.rstrip("\n\r").split("\t")
        if len(parts) == 1:
            parts = line.split()
        if len(parts) == 4:  # TREC: qid iter docid rel
            parts = [parts[0], parts[2], parts[3]]
        if len(parts) != 3:
            raise BeirError(f"{path}:{lineno}: expected 3 tab-separated columns (query-id, corpus-id, score), "
                            f"got {len(parts)}")
        qid, did, rel = (p.strip() for p in parts)
        try:
            score = int(float(rel))
            if score != float(rel):
                raise ValueError
        except ValueError:
            if lineno == 1:  # the header line ("query-id corpus-id score")
                continue
            raise BeirError(f"{path}:{lineno}: relevance {rel!r} is not an integer") from None
        out.setdefault(qid, {})[did] = score
    if not out:
        raise BeirError(f"{path}: no judgments")
    return out


def load(root: str | Path, split: str = "test", *, check: bool = True) -> Collection:
    """Read DIR/corpus.jsonl, DIR/queries.jsonl and DIR/qrels/<split>.tsv."""
    root = Path(root)
    if not root.is_dir():
        raise BeirError(f"{root}: not a directory (expected corpus.jsonl, queries.jsonl, qrels/{split}.tsv)")
    corpus = load_corpus(root / "corpus.jsonl")
    queries = load_queries(root / "queries.jsonl")
    qrels = load_qrels(root / "qrels" / f"{split}.tsv")
    col = Collection(root, corpus, queries, qrels, split)
    if check:
        missing_q = [q for q in qrels if q not in queries]
        if missing_q:
            raise BeirError(f"{root / 'qrels' / (split + '.tsv')}: {len(missing_q)} judged queries are not in "
                            f"queries.jsonl (first: {missing_q[0]!r})")
        unknown = sorted({d for j in qrels.values() for d in j if d not in corpus})
        if unknown:
            col.warnings.append(f"{len(unknown)} judged documents are not in corpus.jsonl (first: {unknown[0]!r})")
    return col


def split_queries(qids, fraction: float = 0.5, seed: int = 0) -> tuple[list[str], list[str]]:
    """(dev, test): a seeded shuffle of `qids` cut at `fraction`; both keep input order."""
    qids = list(qids)
    order = list(qids)
    random.Random(seed).shuffle(order)
    n_dev = int(round(len(order) * fraction))
    dev = set(order[:n_dev])
    return [q for q in qids if q in dev], [q for q in qids if q not in dev]
