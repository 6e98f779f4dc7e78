"""Loading documents: every supported format, skipped files, errors with file:line."""

from __future__ import annotations

import json

import pytest

from core.errors import UserError
from rag.documents import LoadError, html_to_text, load_sources


def _pdf_bytes(text: str) -> bytes:
    """A minimal one-page PDF showing `text` in Helvetica (correct xref offsets)."""
    stream = f"BT /F1 18 Tf 72 700 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, obj in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def test_every_format_loads_with_ids_sources_and_meta(tmp_path, capsys):
    d = tmp_path / "docs"
    (d / "sub").mkdir(parents=True)
    (d / "a.txt").write_text("plain text about wings")
    (d / "b.md").write_text("# Title\n\nmarkdown body")
    (d / "sub" / "c.rst").write_text("Heading\n=======\n\nrst body")
    (d / "d.html").write_text("<html><head><title>x</title><style>p{}</style><script>var a=1;</script></head>"
                              "<body><p>Boundary layer &amp; shock</p><div>second block</div></body></html>")
    (d / "e.pdf").write_bytes(_pdf_bytes("Supersonic flow over a flat plate"))
    (d / "f.bin.txt").write_bytes(b"\x00\x01\x02binary")
    (d / "g.txt").write_bytes("caf\xe9".encode("latin-1"))  # not UTF-8
    (d / "notes.csv").write_text("ignored,because,unsupported")
    (d / ".hidden.txt").write_text("hidden files are not indexed")
    res = load_sources([d])
    by_id = {doc.id: doc for doc in res.documents}
    assert set(by_id) == {"a.txt", "b.md", "sub/c.rst", "d.html", "e.pdf"}
    assert by_id["a.txt"].text == "plain text about wings"
    assert by_id["a.txt"].source == str(d / "a.txt")
    html = by_id["d.html"].text
    assert "Boundary layer & shock" in html and "second block" in html
    assert "var a" not in html and "p{}" not in html and "<" not in html
    assert "Supersonic flow over a flat plate" in by_id["e.pdf"].text
    assert by_id["e.pdf"].meta["pages"] == 1
    assert res.summary() == {"documents": 5, "skipped": 2, "ignored": 1}
    assert "skipping" in capsys.readouterr().err


def test_beir_jsonl(tmp_path):
    p = tmp_path / "corpus.jsonl"
    rows = [{"_id": "1", "title": "Wings", "text": "lift and drag"},
            {"_id": "2", "title": "", "text": "no title here", "extra": 5},
            {"_id": "3", "title": "already", "text": "already in the text"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    docs = load_sources([p]).documents
    assert [d.id for d in docs] == ["1", "2", "3"]
    assert docs[0].text == "Wings\n\nlift and drag" and docs[0].meta["title"] == "Wings"
    assert docs[1].text == "no title here" and docs[1].meta["extra"] == 5
    assert docs[2].text == "already in the text"


@pytest.mark.parametrize("line,message", [
    ('{"_id": "2", "text": ', "invalid JSON"),
    ('{"title": "x", "text": "y"}', "missing field '_id'"),
    ('{"_id": "2"}', "missing field 'text'"),
    ('["not", "an", "object"]', "expected a JSON object"),
])
def test_malformed_jsonl_names_file_and_line(tmp_path, line, message):
    p = tmp_path / "corpus.jsonl"
    p.write_text('{"_id": "1", "text": "fine"}\n' + line + "\n")
    with pytest.raises(LoadError, match=message) as exc:
        load_sources([p])
    assert f"{p}:2" in str(exc.value)
    assert issubclass(LoadError, UserError)


def test_missing_paths_duplicates_and_unsupported_files_are_errors(tmp_path):
    with pytest.raises(LoadError, match="no such file"):
        load_sources([tmp_path / "nope"])
    (tmp_path / "x.csv").write_text("a,b")
    with pytest.raises(LoadError, match="unsupported file type"):
        load_sources([tmp_path / "x.csv"])
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "same.txt").write_text("one")
    (tmp_path / "b" / "same.txt").write_text("two")
    with pytest.raises(LoadError, match="duplicate document id 'same.txt'"):
        load_sources([tmp_path / "a", tmp_path / "b"])


def test_html_to_text_keeps_blocks_and_entities():
    assert html_to_text("<p>a&lt;b</p><p>c</p>") == "a<b\n\nc" or html_to_text("<p>a&lt;b</p><p>c</p>") == "a<b\nc"


def test_shared_data_is_found_beside_the_checkout_or_its_origin(tmp_path, monkeypatch):
    from core.files import shared_data_root

    monkeypatch.delenv("ASSAY_SHARED_DATA", raising=False)
    monkeypatch.delenv("ASSAY_DATA_ROOT", raising=False)
    data = tmp_path / "work" / "shared" / "data"
    data.mkdir(parents=True)
    assert shared_data_root(tmp_path / "work" / "main") == data
    clone = tmp_path / "ci" / "main"  # a clone elsewhere, of /…/work/main
    (clone / ".git").mkdir(parents=True)
    (clone / ".git" / "config").write_text(
        f'[core]\n\tbare = false\n[remote "origin"]\n\turl = {tmp_path / "work" / "main"}\n')
    assert shared_data_root(clone) == data
    (clone / ".git" / "config").write_text('[remote "origin"]\n\turl = https://example.com/x.git\n')
    assert shared_data_root(clone) == tmp_path / "ci" / "shared" / "data"  # named in the error
    monkeypatch.setenv("ASSAY_SHARED_DATA", str(tmp_path / "elsewhere"))
    assert shared_data_root(clone) == tmp_path / "elsewhere"
