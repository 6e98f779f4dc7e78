"""Issue 13: a clear error for every bad input. Each row is a user mistake at one CLI entry
point; each must exit 2 with one line on stderr naming the file, row or field (or the
option and its range), no traceback, and leave no output behind."""

from __future__ import annotations

import pytest

from assay.cli import main


def _files(tmp):
    (tmp / "ok.jsonl").write_text('{"completion": "\\\\boxed{5}", "answer": "5"}\n')
    (tmp / "num.jsonl").write_text('{"completion": 5, "answer": "5"}\n')
    (tmp / "null.jsonl").write_text('{"completion": null, "answer": "5"}\n')
    (tmp / "dict_gold.jsonl").write_text('{"completion": "\\\\boxed{5}", "answer": {"x": 1}}\n')
    (tmp / "empty.jsonl").write_text("")
    (tmp / "latin1.jsonl").write_bytes(b'{"completion": "caf\xe9", "answer": "5"}\n')
    (tmp / "badjson.jsonl").write_text('{"completion": "x", "answer": "5"}\n{"completion": \n')
    (tmp / "adir").mkdir()
    (tmp / "afile").write_text("not an index\n")
    (tmp / "bad.yaml").write_bytes(b"trainer: \xff\xfe\n")
    (tmp / "neg_lr.yaml").write_text("model: {name: toy:lucky}\ndata: {source: 'toy:lucky'}\nsft: {learning_rate: -0.1}\n")


CASES = [
    # (argv, what the one line must name)
    (["score", "--rewards", "math", "--input", "{t}/num.jsonl"], "num.jsonl:1: field 'completion' is int"),
    (["score", "--rewards", "math", "--input", "{t}/null.jsonl"], "null.jsonl:1: field 'completion' is null"),
    (["score", "--rewards", "math", "--input", "{t}/dict_gold.jsonl"], "dict_gold.jsonl:1: field 'answer' is an object"),
    (["score", "--rewards", "math", "--input", "{t}/empty.jsonl"], "empty.jsonl: no rows"),
    (["score", "--rewards", "math", "--input", "{t}/latin1.jsonl"], "latin1.jsonl:1: not UTF-8"),
    (["score", "--rewards", "math", "--input", "{t}/badjson.jsonl"], "badjson.jsonl:2: invalid JSON"),
    (["score", "--rewards", "math", "--input", "{t}/ok.jsonl", "--output", "{t}/adir"], "is a directory"),
    (["score", "--rewards", "math:nan", "--input", "{t}/ok.jsonl"], "weight nan"),
    (["score", "--rewards", "math", "--option", "math.timeout=-5", "--input", "{t}/ok.jsonl"], "math.timeout"),
    (["score", "--rewards", "math", "--input", "{t}/ok.jsonl", "--workers", "0"], "--workers: must be an integer >= 1"),
    (["search", "q", "--index", "{t}/idx", "--k", "0"], "--k: must be an integer >= 1"),
    (["search", "q", "--index", "{t}/idx", "--snippet", "-1"], "--snippet: must be an integer >= 0"),
    (["search", "q", "--index", "{t}/afile"], "afile"),
    (["index", "{t}/adir", "--index", "{t}/idx", "--batch-size", "0"], "--batch-size: must be an integer >= 1"),
    (["index", "{t}/adir", "--index", "{t}/idx", "--batch-size", "-3"], "--batch-size: must be an integer >= 1"),
    (["eval", "run", "gsm8k", "--model", "x", "--limit", "0"], "--limit: must be an integer >= 1"),
    (["eval", "retrieval", "--data", "{t}/adir", "--k", "-5"], "--k: must be an integer >= 1"),
    (["train", "sft", "--config", "{t}/adir", "--out", "{t}/run"], "adir"),
    (["train", "sft", "--config", "{t}/bad.yaml", "--out", "{t}/run"], "bad.yaml"),
    (["train", "sft", "--config", "{t}/neg_lr.yaml", "--out", "{t}/run"], "learning_rate"),
]


@pytest.mark.parametrize("argv,names", CASES, ids=[" ".join(c[0][:4]) + " " + c[1][:24] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_leaves_nothing(argv, names, tmp_path, capsys):
    _files(tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    try:
        code = main([a.replace("{t}", str(tmp_path)) for a in argv])
    except SystemExit as exc:  # argparse's own exit, with our one-line message
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert names in err, err
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing written, nothing half-written


def test_odd_directory_entries_are_skipped_and_counted_never_hang(tmp_path):
    """A FIFO named x.txt blocked indexing forever; a dangling link, a link loop and a
    non-UTF-8 file name crashed (the last only after all the embedding was done)."""
    import os

    from rag.documents import load_sources

    d = tmp_path / "docs"
    d.mkdir()
    (d / "good.txt").write_text("a real document")
    os.mkfifo(d / "x.txt")
    os.symlink(d / "missing.txt", d / "dangling.txt")
    os.symlink(d / "loop.txt", d / "loop.txt")
    (d / os.fsdecode(b"caf\xe9.txt")).write_text("latin-1 name")
    result = load_sources([d])
    assert [doc.id for doc in result.documents] == ["good.txt"]
    reasons = sorted(r for _, r in result.skipped)
    assert len(reasons) == 4
    assert any("FIFO" in r for r in reasons) and any("not UTF-8" in r for r in reasons)
