"""Chunking with overlap and exact character offsets.

How it works, and why not LangChain's `start_index`: LangChain finds each chunk's start
with `text.find(chunk, previous_start + previous_length - overlap)`, a guess that is
wrong whenever a passage repeats or the overlap is measured in tokens. Here offsets are
never searched for. LangChain's RecursiveCharacterTextSplitter, run with no overlap,
`keep_separator="start"` and no stripping, cuts the text into *tiles* that concatenate
back to the text exactly (paragraph, then line, then word, then character boundaries),
so each tile's offsets are a running sum. The tiles are at most
`chunk_size - chunk_overlap` long; every chunk after the first is then its tile extended
backwards by up to `chunk_overlap` units (moved forward to a word start when one is
there), so consecutive chunks always share text and no chunk exceeds `chunk_size`.

Units: `chars`, or `tokens` of a Hugging Face tokenizer (the embedder's), counted
without special tokens; token overlap is placed with the tokenizer's offset mapping.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal

from core.errors import UserError
from rag.documents import Chunk, Document


class ChunkingError(UserError, ValueError):
    pass


@dataclass
class ChunkConfig:
    chunk_size: int = 1000
    """Largest chunk, in `chunk_unit`s."""
    chunk_overlap: int = 200
    """How much of the previous chunk's end each chunk repeats (must be < chunk_size)."""
    chunk_unit: Literal["chars", "tokens"] = "chars"
    """`chars`, or `tokens` of the embedder's tokenizer."""

    def __post_init__(self) -> None:
        if self.chunk_size < 1:
            raise ChunkingError(f"chunk_size must be at least 1, got {self.chunk_size}")
        if not 0 <= self.chunk_overlap < self.chunk_size:
            raise ChunkingError(f"chunk_overlap must be in [0, chunk_size={self.chunk_size}), got {self.chunk_overlap}")
        if self.chunk_unit not in ("chars", "tokens"):
            raise ChunkingError(f"chunk_unit must be 'chars' or 'tokens', got {self.chunk_unit!r}")


class Chunker:
    """Splits documents into Chunks per a ChunkConfig. `tokenizer` is needed for tokens."""

    def __init__(self, config: ChunkConfig | None = None, tokenizer: Any = None) -> None:
        self.config = config or ChunkConfig()
        if self.config.chunk_unit == "tokens" and tokenizer is None:
            raise ChunkingError("chunk_unit='tokens' needs the embedder's tokenizer")
        self.tokenizer = tokenizer if self.config.chunk_unit == "tokens" else None
        from langchain_text_splitters import RecursiveCharacterTextSplitter

        self._splitter = RecursiveCharacterTextSplitter(
            chunk_size=self.config.chunk_size - self.config.chunk_overlap,
            chunk_overlap=0,
            length_function=self.length,
            keep_separator="start",
            strip_whitespace=False,
        )

    def length(self, text: str) -> int:
        if self.tokenizer is None:
            return len(text)
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _tiles(self, text: str) -> list[tuple[int, int]]:
        spans, pos = [], 0
        for piece in self._splitter.split_text(text):
            if text.startswith(piece, pos):
                spans.append((pos, pos + len(piece)))
                pos += len(piece)
            else:  # LangChain dropped or rewrote something; resynchronise
                found = text.find(piece, pos)
                if found < 0:
                    # It re-joined pieces with a separator the document does not have there
                    # ("alpha alpha" for "alpha\talpha"): the same number of characters of
                    # the document itself stands in, so offsets stay exact.
                    end = min(len(text), pos + len(piece))
                    spans.append((pos, end))
                    pos = end
                    continue
                spans.append((found, found + len(piece)))
                pos = found + len(piece)
        if pos < len(text) and text[pos:].strip():
            spans.append((pos, len(text)))  # nothing of the document is ever lost
        # A tile of only whitespace carries nothing retrievable: it joins a neighbour when
        # the result still fits, else it is dropped (the gap between chunks is then blank).
        limit = self.config.chunk_size - self.config.chunk_overlap
        merged: list[tuple[int, int]] = []
        pending: int | None = None  # start of a dropped whitespace run before the next tile
        for start, end in spans:
            if not text[start:end].strip():
                if merged and merged[-1][1] == start and self.length(text[merged[-1][0]:end]) <= limit:
                    merged[-1] = (merged[-1][0], end)
                elif pending is None:
                    pending = start
                continue
            if pending is not None and self.length(text[pending:end]) <= limit:
                start = pending
            pending = None
            merged.append((start, end))
        return merged

    def _overlap_start(self, text: str, lo: int, tile_start: int, tile_end: int) -> int:
        """Where a chunk whose own tile is [tile_start, tile_end) begins, >= lo."""
        overlap = self.config.chunk_overlap
        if overlap == 0 or tile_start <= lo:
            return tile_start
        if self.tokenizer is None:
            start = max(lo, tile_start - overlap)
        else:
            window_lo = max(lo, tile_start - 8 * overlap - 16)
            enc = self.tokenizer(text[window_lo:tile_start], add_special_tokens=False,
                                 return_offsets_mapping=True)
            offsets = [o for o in enc["offset_mapping"] if o[1] > o[0]]
            if not offsets:
                return tile_start
            start = window_lo + offsets[max(0, len(offsets) - overlap)][0]
        # begin at a word start when the overlap window has one
        if start > 0 and not (text[start - 1].isspace() and not text[start].isspace()):
            for i in range(start + 1, tile_start):
                if text[i - 1].isspace() and not text[i].isspace():
                    start = i
                    break
        if self.tokenizer is not None:
            # tokenizing across the seam can add a token: keep the chunk within chunk_size
            while start < tile_start and self.length(text[start:tile_end]) > self.config.chunk_size:
                start = _next_word(text, start, tile_start)
        return start

    def chunk(self, doc: Document) -> list[Chunk]:
        text = doc.text
        if not text.strip():
            return []
        chunks: list[Chunk] = []
        prev_start = -1
        for i, (tile_start, tile_end) in enumerate(self._tiles(text)):
            start = tile_start if i == 0 else self._overlap_start(text, prev_start + 1, tile_start, tile_end)
            chunks.append(Chunk(id=f"{doc.id}#{i}", doc_id=doc.id, start=start, end=tile_end,
                                text=text[start:tile_end]))
            prev_start = start
        return chunks

    def chunk_many(self, docs: list[Document]) -> list[list[Chunk]]:
        return [self.chunk(d) for d in docs]


def _next_word(text: str, pos: int, limit: int) -> int:
    """The next position after `pos` (< limit) that starts a word, else pos + 1."""
    i = pos + 1
    while i < limit and not (text[i - 1].isspace() and not text[i].isspace()):
        i += 1
    return i if i < limit else min(pos + 1, limit)


def chunk_text(text: str, config: ChunkConfig | None = None, tokenizer: Any = None, doc_id: str = "doc") -> list[Chunk]:
    """Chunks of a bare string (a convenience for tests and notebooks)."""
    return Chunker(config, tokenizer).chunk(Document(id=doc_id, text=text))


def load_tokenizer(embedder: str) -> Callable:
    """The embedder's tokenizer (fast, for offset mappings), without loading its weights."""
    import os

    from transformers import AutoTokenizer

    from core.models import resolve

    path = resolve(embedder)
    try:
        return AutoTokenizer.from_pretrained(path, use_fast=True)
    except OSError:
        # sentence-transformers folders keep the tokenizer in the root or in 0_Transformer
        sub = os.path.join(path, "0_Transformer")
        if os.path.isdir(sub):
            return AutoTokenizer.from_pretrained(sub, use_fast=True)
        raise


__all__ = ["ChunkConfig", "Chunker", "ChunkingError", "chunk_text", "load_tokenizer"]
