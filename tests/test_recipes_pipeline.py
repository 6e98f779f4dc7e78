"""`assay pipeline run`: stages in order, outputs by reference, finished stages skipped, one report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assay.cli import main
from core.config import ConfigError
from recipes.pipeline import Pipeline, load_pipeline

CONFIGS = Path(__file__).resolve().parent.parent / "data" / "configs"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    (tmp_path / "sft.yaml").write_text("model: {name: toy:lucky}\n")
    return path


@pytest.mark.parametrize("text, message", [
    ("stages: [{name: a, kind: sfft, config: sft.yaml}]", "did you mean 'sft'"),
    ("stages: [{name: a, kind: sft}]", "needs `config: FILE`"),
    ("stages: [{name: a, kind: sft, config: sft.yaml, set: {model.name: '${b.model}'}}, {name: b, kind: sft, config: sft.yaml}]",
     "names a later stage"),
    ("stages: [{name: a, kind: sft, config: sft.yaml}, {name: b, kind: sft, config: sft.yaml, set: {data.source: '${a.sft}'}}]",
     "a sft stage has no output 'sft'"),
    ("stages: [{name: a, kind: sft, config: sft.yaml}, {name: a, kind: sft, config: sft.yaml}]", "used twice"),
    ("stages: [{name: a, kind: eval, eval: {task: gsm8k}}]", "needs `eval:"),
])
def test_bad_pipelines_fail_before_anything_runs(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        load_pipeline(_write(tmp_path, text))


def test_a_bad_pipeline_is_one_line_exit_2(tmp_path, capsys):
    path = _write(tmp_path, "stages: [{name: a, kind: sft, config: missing.yaml}]")
    assert main(["pipeline", "run", str(path), "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "missing.yaml does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_r1_smoke_runs_skips_what_is_done_and_redoes_from_a_stage(tmp_path):
    out = tmp_path / "run"
    pipe = Pipeline(CONFIGS / "r1-smoke.yaml", out, progress=False, cache=tmp_path / "cache.sqlite")
    first = pipe.run()
    assert [s["name"] for s in first["stages"]] == ["sft", "grpo", "sample", "sft2", "eval"]
    assert not any(s.get("skipped") for s in first["stages"])
    evals = json.loads((out / "stages" / "eval" / "stage.json").read_text())["summary"]["models"]
    assert set(evals) == {"sft", "grpo", "sft2"}
    assert all("ci95" in s and s["ci95"]["accuracy"][0] <= s["accuracy"] <= s["ci95"]["accuracy"][1]
               for s in evals.values())
    sample = json.loads((out / "stages" / "sample" / "stage.json").read_text())
    assert sample["summary"]["counts"]["samples"] == 24 * 4
    assert Path(sample["outputs"]["sft"]).is_file()
    report = (out / "report.html").read_text()
    assert "held-out evaluation" in report and "95% bootstrap interval" in report and "curves.png" in report
    second = pipe.run()  # nothing changed: every stage is skipped
    assert all(s.get("skipped") for s in second["stages"])
    third = pipe.run(redo_from="sft2")
    assert [bool(s.get("skipped")) for s in third["stages"]] == [True, True, True, False, False]
