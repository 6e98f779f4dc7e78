"""Documents, chunks and hits, and loading documents from files.

    load_sources(["notes/", "corpus.jsonl"]) -> LoadResult(documents, skipped, ...)

Supported: .txt .md .rst .html/.htm (tags stripped with the stdlib HTML parser), .pdf
(pypdf, pages joined by blank lines), and .jsonl in the BEIR corpus layout (`_id`,
`title`, `text`; one document per line). A file that is not UTF-8 or looks binary is
skipped with a warning and counted; a malformed JSONL line is an error naming the file
and line, because silently dropping corpus records would corrupt every evaluation.

Document ids: a JSONL record's `_id`; a file inside a directory argument gets its path
relative to that directory; a file named directly gets its file name. Ids must be unique
across the sources (the index is keyed by them).
"""

from __future__ import annotations

import hashlib
import html
import html.parser
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from core.errors import UserError
from core.files import iter_jsonl

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text"}
HTML_SUFFIXES = {".html", ".htm", ".xhtml"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".pdf", ".jsonl"}


class LoadError(UserError, ValueError):
    """A source cannot be read as asked (missing path, malformed record, duplicate id)."""


@dataclass
class Document:
    id: str
    text: str
    source: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """sha256 of the text: what incremental indexing compares."""
        return text_hash(self.text)


@dataclass(frozen=True)
class Chunk:
    """A span of a document: `doc.text[start:end] == text` always."""

    id: str
    doc_id: str
    start: int
    end: int
    text: str


@dataclass
class Hit:
    """One search result. `rank` is 1-based; `scores` holds per-retriever scores
    (`bm25`, `dense`, `rerank`, ...) next to the final `score`."""

    chunk: Chunk
    score: float
    rank: int
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self, snippet_chars: int | None = None) -> dict[str, Any]:
        text = self.chunk.text if snippet_chars is None else snippet(self.chunk.text, snippet_chars)
        return {"rank": self.rank, "doc_id": self.chunk.doc_id, "chunk_id": self.chunk.id,
                "start": self.chunk.start, "end": self.chunk.end, "score": self.score,
                "scores": dict(self.scores), "text": text}


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def snippet(text: str, width: int = 160) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


@dataclass
class LoadResult:
    documents: list[Document]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    ignored: int = 0  # files in walked directories with unsupported suffixes

    def summary(self) -> dict[str, int]:
        return {"documents": len(self.documents), "skipped": len(self.skipped), "ignored": self.ignored}


class _TextExtractor(html.parser.HTMLParser):
    """Visible text of an HTML page: drops script/style/head, keeps block breaks."""

    _SKIP = {"script", "style", "head", "noscript", "template"}
    _BLOCK = {"p", "div", "br", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "section",
              "article", "pre", "blockquote", "table", "ul", "ol", "title", "hr"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in self._SKIP:
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_endtag(self, tag):
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append("\n")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parts for parts in parser.parts).splitlines()]
    # collapse runs of empty lines into one paragraph break
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return html.unescape("\n".join(out).strip())


def _decode(path: Path) -> str | None:
    """The file's text, or None when it is binary or not UTF-8."""
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None


def _pdf_text(path: Path) -> tuple[str, dict[str, Any]]:
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    pages, starts, pos = [], [], 0
    for page in reader.pages:
        text = (page.extract_text() or "").strip()
        starts.append(pos)
        pages.append(text)
        pos += len(text) + 2
    return "\n\n".join(pages), {"pages": len(pages), "page_starts": starts}


def _jsonl_documents(path: Path) -> Iterable[Document]:
    for lineno, rec in iter_jsonl(path, LoadError):
        where = f"{path}:{lineno}"
        doc_id = rec.get("_id", rec.get("id"))
        if doc_id is None or doc_id == "":
            raise LoadError(f"{where}: missing field '_id'")
        if "text" not in rec:
            raise LoadError(f"{where}: missing field 'text'")
        text, title = rec["text"], rec.get("title") or ""
        if not isinstance(text, str) or not isinstance(title, str):
            raise LoadError(f"{where}: fields 'text' and 'title' must be strings")
        meta = {k: v for k, v in rec.items() if k not in ("_id", "id", "text")}
        meta["line"] = lineno
        # BEIR convention: the title is part of what is retrieved; Cranfield's texts
        # repeat it, so it is only prepended when the text does not already start with it.
        body = text if (not title or text.startswith(title)) else f"{title}\n\n{text}"
        yield Document(id=str(doc_id), text=body, source=str(path), meta=meta)


def file_documents(path: Path, doc_id: str, result: LoadResult) -> list[Document]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return list(_jsonl_documents(path))
    if suffix == ".pdf":
        try:
            text, meta = _pdf_text(path)
        except Exception as exc:  # noqa: BLE001 - pypdf raises many types for broken files
            _skip(result, path, f"unreadable PDF ({type(exc).__name__}: {exc})")
            return []
        return [Document(id=doc_id, text=text, source=str(path), meta={"type": "pdf", **meta})]
    text = _decode(path)
    if text is None:
        _skip(result, path, "binary or not UTF-8")
        return []
    if suffix in HTML_SUFFIXES:
        return [Document(id=doc_id, text=html_to_text(text), source=str(path), meta={"type": "html"})]
    return [Document(id=doc_id, text=text, source=str(path), meta={"type": suffix.lstrip(".") or "txt"})]


def _unreadable(file: Path) -> str | None:
    """Why a directory entry cannot be read as a document (None: it can)."""
    try:
        str(file).encode("utf-8")
    except UnicodeEncodeError:
        return "the file name is not UTF-8 (rename it)"
    try:
        st = file.stat()  # follows links: a dangling link or a loop raises
    except OSError as exc:
        return "a dangling or looping symlink" if file.is_symlink() else f"cannot stat it ({exc.strerror})"
    import stat as stat_mod

    if not stat_mod.S_ISREG(st.st_mode):
        return "not a regular file (a FIFO, socket or device)"
    if not os.access(file, os.R_OK):
        return "not readable (permission denied)"
    return None


def _skip(result: LoadResult, path: Path, reason: str) -> None:
    result.skipped.append((str(path), reason))
    print(f"warning: skipping {path}: {reason}", file=sys.stderr)


def load_sources(sources: Iterable[str | os.PathLike | Document]) -> LoadResult:
    """Read files, directories (recursively; hidden entries skipped) and Documents."""
    result = LoadResult(documents=[])
    seen: dict[str, str] = {}

    def add(doc: Document) -> None:
        if doc.id in seen:
            raise LoadError(f"duplicate document id {doc.id!r} (in {seen[doc.id]} and {doc.source or 'a Document'})")
        seen[doc.id] = doc.source or "a Document"
        result.documents.append(doc)

    for src in sources:
        if isinstance(src, Document):
            add(src)
            continue
        path = Path(src)
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith("."):
                        continue
                    file = Path(root) / name
                    if file.suffix.lower() not in SUPPORTED_SUFFIXES:
                        result.ignored += 1
                        continue
                    why = _unreadable(file)
                    if why:  # a FIFO would block forever; a dangling link has nothing to read
                        _skip(result, file, why)
                        continue
                    for doc in file_documents(file, file.relative_to(path).as_posix(), result):
                        add(doc)
        elif path.is_file() or path.exists() and not path.is_dir():
            why = _unreadable(path)
            if why:
                raise LoadError(f"{path}: {why}")
            if path.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise LoadError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; "
                                f"supported: {', '.join(sorted(SUPPORTED_SUFFIXES))}")
            for doc in file_documents(path, path.name, result):
                add(doc)
        elif path.is_symlink():
            raise LoadError(f"{path}: a dangling or looping symlink")
        else:
            raise LoadError(f"{path}: no such file or directory")
    return result
