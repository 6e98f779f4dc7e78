"""Issue 13, item 7: a run directory is replaced as a whole. An interrupted
`assay eval score --out` used to leave new samples beside the old summary and report."""

from __future__ import annotations

import json

import pytest

from core.files import atomic_dir


def test_an_interrupted_rewrite_leaves_the_old_run_whole(tmp_path, monkeypatch):
    import eval.report as report

    class Suite:
        description = "d"

    out = tmp_path / "run"
    report.write_run(out, Suite(), {"n": 1, "accuracy": 1.0}, [{"id": "a", "score": 1.0}])
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def interrupted(*_a, **_k):
        raise KeyboardInterrupt  # Ctrl-C (or SIGTERM under the CLI) in the middle of the write

    monkeypatch.setattr(report, "write_plots", interrupted)
    with pytest.raises(KeyboardInterrupt):
        report.write_run(out, Suite(), {"n": 2, "accuracy": 0.0}, [{"id": "b", "score": 0.0}] * 2)
    after = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    assert after == before  # the old samples, summary and report, nothing new beside them
    assert json.loads((out / "summary.json").read_text())["n"] == 1
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left


def test_atomic_dir_swaps_in_one_step(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as t:
        (t / "x").write_text("1")
    with atomic_dir(target) as t:
        (t / "y").write_text("2")
    assert sorted(p.name for p in target.iterdir()) == ["y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
