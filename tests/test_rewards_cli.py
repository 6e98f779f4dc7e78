"""`assay score`: output rows, --json summary, errors with file:line, atomic output."""

from __future__ import annotations

import json

from assay.cli import main

ROWS = [
    {"completion": "<think>a</think><answer>\\boxed{4}</answer>", "answer": "4"},
    {"completion": [{"role": "assistant", "content": "The answer is 5."}], "answer": "#### 4"},
    {"completion": "\\boxed{3} or \\boxed{4}", "answer": "4", "id": "hedge"},
]


def _write(path, rows, extra=""):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + extra)
    return path


def test_score_writes_rows_and_summary(tmp_path, capsys):
    src = _write(tmp_path / "in.jsonl", ROWS)
    out = tmp_path / "out" / "scored.jsonl"
    assert main(["score", "--rewards", "math,format:0.5", "--input", str(src), "--output", str(out)]) == 0
    text = capsys.readouterr().out
    assert "scored 3 rows" in text and "rows/s" in text and "hedging 1" in text
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["rewards"]["math"] for r in rows] == [1.0, 0.0, 0.0]
    assert [r["score"] for r in rows] == [1.5, 0.0, 0.0]
    assert rows[2]["id"] == "hedge" and rows[2]["reasons"]["math"].startswith("hedging")
    assert rows[1]["completion"] == ROWS[1]["completion"]  # input repeated as is


def test_json_summary_is_one_object(tmp_path, capsys):
    src = _write(tmp_path / "in.jsonl", ROWS, extra="\n")
    assert main(["score", "--rewards", "math", "--input", str(src), "--json", "--workers", "1", "--timeout", "5"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["n"] == 3 and obj["mean"]["math"] == 1 / 3
    assert obj["per_row"][0] == {"score": 1.0, "rewards": {"math": 1.0}, "reasons": {"math": obj["per_row"][0]["reasons"]["math"]}}


def test_options_reach_the_reward(tmp_path, capsys):
    src = _write(tmp_path / "in.jsonl", [{"completion": "one two three four five six"}])
    assert main(["score", "--rewards", "overlong", "--input", str(src), "--json",
                 "--option", "overlong.max_len=4", "--option", "overlong.cache_len=2"]) == 0
    assert json.loads(capsys.readouterr().out)["per_row"][0]["score"] == -1.0
    assert main(["score", "--rewards", "overlong", "--input", str(src), "--option", "math.lenient=true"]) == 2
    assert "not in --rewards" in capsys.readouterr().err


def test_errors_name_file_line_and_field_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text("previous\n")
    missing = _write(tmp_path / "missing.jsonl", [ROWS[0], {"completion": "x"}])
    assert main(["score", "--rewards", "math", "--input", str(missing), "--output", str(out)]) == 2
    assert f"{missing}:2: missing field 'answer'" in capsys.readouterr().err
    bad = _write(tmp_path / "bad.jsonl", [ROWS[0]], extra="\n{oops\n")
    assert main(["score", "--rewards", "math", "--input", str(bad), "--output", str(out)]) == 2
    assert f"{bad}:3: invalid JSON" in capsys.readouterr().err
    no_completion = _write(tmp_path / "nc.jsonl", [{"answer": "1"}])
    assert main(["score", "--rewards", "math", "--input", str(no_completion)]) == 2
    assert "nc.jsonl:1: missing field 'completion'" in capsys.readouterr().err
    assert main(["score", "--rewards", "maths", "--input", str(bad)]) == 2
    assert "unknown reward 'maths'" in capsys.readouterr().err
    assert main(["score", "--rewards", "math", "--input", str(tmp_path / "nope.jsonl")]) == 2
    assert out.read_text() == "previous\n"  # nothing half-written, nothing clobbered
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
