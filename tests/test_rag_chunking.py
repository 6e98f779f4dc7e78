"""Chunk offsets are exact and consecutive chunks overlap: property tests (hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.chunking import ChunkConfig, Chunker, ChunkingError, chunk_text
from rag.documents import Document

# Text built from words, punctuation, repeated passages and all kinds of whitespace: the
# cases where searching for a chunk's text (LangChain's start_index) goes wrong.
_PIECES = st.sampled_from(["alpha", "beta", "gamma", "the wing", "stall.", "a", "é", "数据", " ", "  ",
                           "\n", "\n\n", "\t", ". ", "x" * 37, "repeat me. " * 3])
TEXTS = st.lists(_PIECES, max_size=120).map("".join)


def _check(doc: Document, chunks, cfg: ChunkConfig, length) -> None:
    prev = None
    for c in chunks:
        assert doc.text[c.start:c.end] == c.text
        assert c.doc_id == doc.id and c.text.strip()
        if prev is not None:
            assert c.start > prev.start  # progress, never a chunk inside its predecessor
            # no gaps, except a run of blank text (kept out of chunks)
            assert c.start <= prev.end or not doc.text[prev.end:c.start].strip()
            blank_gap = not doc.text[prev.end:c.start + 1].strip() and c.start >= prev.end
            if cfg.chunk_overlap > 0 and prev.end - prev.start > 1 and not blank_gap:
                assert c.start < prev.end, "consecutive chunks must share text"
        prev = c
    # everything that is not whitespace is covered
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    assert all(i in covered for i, ch in enumerate(doc.text) if not ch.isspace())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(text=TEXTS, size=st.integers(5, 120), frac=st.floats(0, 0.9))
def test_char_chunks_are_exact_overlapping_and_bounded(text, size, frac):
    cfg = ChunkConfig(chunk_size=size, chunk_overlap=min(size - 1, int(size * frac)))
    doc = Document(id="d", text=text)
    chunks = Chunker(cfg).chunk(doc)
    _check(doc, chunks, cfg, len)
    assert all(len(c.text) <= size for c in chunks)
    if not text.strip():
        assert chunks == []


@pytest.fixture(scope="module")
def minilm_tokenizer():
    from rag.chunking import load_tokenizer

    return load_tokenizer("all-MiniLM-L6-v2")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                               HealthCheck.function_scoped_fixture])
@given(text=TEXTS, size=st.integers(8, 60), frac=st.floats(0.05, 0.6))
def test_token_chunks_are_exact_and_overlapping(minilm_tokenizer, text, size, frac):
    cfg = ChunkConfig(chunk_size=size, chunk_overlap=max(1, min(size - 1, int(size * frac))), chunk_unit="tokens")
    doc = Document(id="d", text=text)
    chunker = Chunker(cfg, minilm_tokenizer)
    chunks = chunker.chunk(doc)
    _check(doc, chunks, cfg, chunker.length)


def test_repeated_passages_get_their_own_offsets():
    passage = "The same sentence appears again and again. "
    text = passage * 12
    chunks = chunk_text(text, ChunkConfig(chunk_size=100, chunk_overlap=30))
    starts = [c.start for c in chunks]
    assert starts == sorted(set(starts)) and len(chunks) > 4
    assert chunks[-1].end == len(text.rstrip()) or chunks[-1].end == len(text)
    for c in chunks:
        assert text[c.start:c.end] == c.text


def test_langchain_start_index_is_wrong_where_ours_is_right(minilm_tokenizer):
    """The motivating bug: LangChain's own start_index with token overlap on repeats."""
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    words = ("aerodynamic boundary layer transition supersonic compressible viscous laminar "
             "turbulent separation shock interaction heating conduction slab").split()
    text = " ".join(words * 3)  # a passage repeated three times
    tok = minilm_tokenizer
    lc = RecursiveCharacterTextSplitter.from_huggingface_tokenizer(tok, chunk_size=12, chunk_overlap=5,
                                                                   add_start_index=True)
    lc_starts = [d.metadata["start_index"] for d in lc.create_documents([text])]
    # LangChain: -1 (not found) and offsets jumping to a later repeat, then back
    assert -1 in lc_starts or lc_starts != sorted(lc_starts)
    ours = Chunker(ChunkConfig(12, 5, "tokens"), tok).chunk(Document(id="d", text=text))
    assert len(ours) == len(lc_starts) or len(ours) > 3
    assert all(text[c.start:c.end] == c.text for c in ours)
    assert [c.start for c in ours] == sorted({c.start for c in ours})
    assert all(b.start < a.end for a, b in zip(ours, ours[1:]))


def test_no_overlap_tiles_the_text():
    text = "one two three. " * 50
    chunks = chunk_text(text, ChunkConfig(chunk_size=40, chunk_overlap=0))
    assert "".join(c.text for c in chunks) == text
    assert all(b.start == a.end for a, b in zip(chunks, chunks[1:]))


def test_invalid_settings_are_user_errors():
    with pytest.raises(ChunkingError, match="chunk_overlap"):
        ChunkConfig(chunk_size=10, chunk_overlap=10)
    with pytest.raises(ChunkingError):
        ChunkConfig(chunk_size=0)
    with pytest.raises(ChunkingError, match="tokenizer"):
        Chunker(ChunkConfig(chunk_unit="tokens"))
    from core.errors import UserError

    assert issubclass(ChunkingError, UserError)
