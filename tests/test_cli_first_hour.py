"""Issue 16, the first hour of a new user: set-up, errors and surprises, progress.

Each test runs the real thing (the real sandbox, the real parser, a real tiny training run);
an absent tool is faked by leaving it off PATH in a subprocess, never by a mock.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from assay.cli import main

REPO = Path(__file__).resolve().parent.parent


def _env_without_bwrap(tmp_path: Path) -> dict[str, str]:
    empty = tmp_path / "bin"
    empty.mkdir(exist_ok=True)
    return {**os.environ, "PATH": str(empty)}


# ------------------------------------------------------------------ set-up and the sandbox
def test_without_bubblewrap_the_tests_that_need_it_skip_naming_it(tmp_path):
    env = _env_without_bwrap(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider",
         str(REPO / "tests" / "test_rewards_sandbox_adversarial.py"),
         "-k", "write_host_tmp or read_secrets or unshare_escape or host_files or isolation_is_complete"],
        capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "5 skipped" in out, out
    assert "needs bubblewrap" in out and "apt-get install bubblewrap" in out, out


def test_a_command_that_runs_code_says_when_bubblewrap_is_off(tmp_path):
    program = tmp_path / "p.py"
    program.write_text("print(6 * 7)\n")
    cmd = [sys.executable, "-m", "assay", "sandbox", "run", str(program)]
    off = subprocess.run(cmd, capture_output=True, text=True, env=_env_without_bwrap(tmp_path), timeout=120)
    assert off.returncode == 0 and off.stdout == "42\n", off.stderr
    lines = [line for line in off.stderr.splitlines() if line.startswith("sandbox:")]
    assert len(lines) == 1 and "bubblewrap not found" in lines[0] and "apt-get install bubblewrap" in lines[0]
    check = subprocess.run([sys.executable, "-m", "assay", "sandbox", "check", "--json"], capture_output=True,
                           text=True, env=_env_without_bwrap(tmp_path), timeout=120)
    assert json.loads(check.stdout)["bubblewrap"] is False and "sandbox:" not in check.stderr
    from rewards import sandbox

    if sandbox.capabilities()["missing"] == []:  # all on here: not a word
        on = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert on.stdout == "42\n" and "sandbox:" not in on.stderr, on.stderr


def test_ci_installs_nothing_the_readme_does_not():
    ci = (REPO / ".ci" / "run").read_text()
    assert "apt-get" not in ci
    assert "bash setup.sh --dev && .venv/bin/python -m pytest -q" in ci
    setup = (REPO / "setup.sh").read_text()
    assert "apt-get update -qq && apt-get install -y -qq bubblewrap" in setup


# ------------------------------------------------------------------------ unknown models
@pytest.mark.parametrize("name, expect", [
    ("does-not-exist", "model 'does-not-exist': not a known name, a local path or a reachable hub id"),
    ("./models/nope", "cannot load model ./models/nope: no such file or directory"),
    ("../nope/model", "cannot load model ../nope/model: no such file or directory"),
    ("no-org/no-such-model", "not a known name, a local path or a reachable hub id"),
])
def test_an_unknown_model_is_one_line_at_once(tmp_path, name, expect):
    import time

    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "assay", "eval", "run", "gsm8k", "--model", name, "--limit", "1",
                           "--out", str(tmp_path / "run"), "--no-cache"],
                          capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert time.monotonic() - t0 < 30
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and expect in lines[0], proc.stderr
    assert "all-MiniLM-L6-v2, SmolLM2-135M-Instruct" in lines[0]
    assert "Retrying" not in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()  # nothing half-written


def test_no_network_is_offline_without_retries(monkeypatch):
    # the hub endpoint unreachable (a closed local port), HF_HUB_OFFLINE unset: fails fast
    from core import models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(models.ModelError, match="unreachable"):
        models.resolve("some-org/some-model")


def test_a_known_name_and_a_local_path_still_resolve(tmp_path):
    from core import models

    assert models.resolve(str(tmp_path)) == str(tmp_path)
    assert models.canonical_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert Path(models.resolve("all-MiniLM-L6-v2")).is_dir()


# ------------------------------------------------------------------- search --rerank QUERY
def test_rerank_before_the_query_does_not_swallow_it():
    from assay.cli import build_parser
    from rag.cli import _query_and_rerank

    parser = build_parser()
    for argv, want in [
        (["search", "--rerank", "how do I chain exceptions?", "--index", "idx"], ("how do I chain exceptions?", "llm")),
        (["search", "how?", "--rerank", "--index", "idx"], ("how?", "llm")),
        (["search", "--rerank", "cross-encoder", "how?", "--index", "idx"], ("how?", "cross-encoder")),
        (["search", "--index", "idx", "how?"], ("how?", None)),
    ]:
        args = parser.parse_args(argv)
        assert _query_and_rerank(args.query, args.rerank) == want, argv


def test_rerank_with_a_bad_kind_or_no_query_is_one_line(tmp_path, capsys):
    assert main(["search", "how?", "--rerank", "bogus", "--index", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--rerank: unknown kind 'bogus'" in err
    assert main(["search", "--index", str(tmp_path)]) == 2
    assert "query text is required" in capsys.readouterr().err


# -------------------------------------------------------- train --out an existing run
CONFIGS = REPO / "data" / "configs"
QUICK = ["--set", "data.eval_size=0", "--set", "logging.plot=false"]


def _old_run(out: Path) -> None:
    out.mkdir(parents=True)
    (out / "config.yaml").write_text("seed: 0\n")
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 9.0}\n')
    (out / "stray.txt").write_text("from the old run\n")


def test_train_into_an_existing_run_is_refused(tmp_path, capsys):
    out = tmp_path / "run"
    _old_run(out)
    assert main(["train", "sft", "--config", str(CONFIGS / "sft-smoke.yaml"), "--out", str(out), *QUICK]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already holds a training run" in err and "--resume" in err and "--fresh" in err
    assert (out / "metrics.jsonl").read_text() == '{"step": 1, "loss": 9.0}\n' and (out / "stray.txt").exists()
    assert main(["train", "sft", "--config", str(CONFIGS / "sft-smoke.yaml"), "--out", str(out), "--fresh",
                 "--resume"]) == 2
    assert "give one of them" in capsys.readouterr().err


@pytest.mark.slow
def test_fresh_replaces_the_run_and_training_prints_a_line_per_step(tmp_path, capsys):
    out = tmp_path / "run"
    _old_run(out)
    assert main(["train", "sft", "--config", str(CONFIGS / "sft-smoke.yaml"), "--out", str(out), "--fresh",
                 "--set", "sft.max_steps=2", "--set", "sft.save_strategy=no", *QUICK]) == 0
    assert not (out / "stray.txt").exists()
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert steps[:2] == [1, 2] and 9.0 not in [json.loads(x).get("loss") for x in (out / "metrics.jsonl").read_text().splitlines()]
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("train: step")]
    assert len(lines) == 2 and lines[0].startswith("train: step 1/2  loss ") and lines[1].endswith(" s/step"), err


@pytest.mark.slow
def test_grpo_progress_names_each_reward_and_json_stays_one_object(tmp_path, capsys):
    args = ["train", "grpo", "--config", str(CONFIGS / "grpo-smoke.yaml"), "--set", "grpo.max_steps=2",
            "--set", "grpo.save_strategy=no", *QUICK]
    assert main([*args, "--out", str(tmp_path / "a")]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("train: step")]
    assert len(lines) == 2 and "step 2/2  reward " in lines[1] and "(math " in lines[1] and "s/step" in lines[1], err
    assert main([*args, "--out", str(tmp_path / "b"), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["global_step"] == 2 and captured.out.count("\n") == 1
    assert "train: step" not in captured.err


# --------------------------------------------------------- rewards of your own, by name
README_REWARD = '''
from rewards import register, RewardResult

@register("{name}", fields=("source",))
def mentions_source(completions, rows, **options):
    """1 when the completion names the row's source document."""
    return [RewardResult(float(r["source"] in c), "named" if r["source"] in c else "not named")
            for c, r in zip(completions, rows)]
'''
ROWS = [{"completion": "see doc-a, answer \\\\boxed{4}", "answer": "4", "source": "doc-a"},
        {"completion": "\\\\boxed{5}", "answer": "4", "source": "doc-b"}]


def _assay(args: list[str], cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "assay", *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=120)


def _rows(tmp_path: Path) -> Path:
    path = tmp_path / "outs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


def test_score_imports_a_module_that_registers_a_reward(tmp_path):
    (tmp_path / "my_rewards.py").write_text(README_REWARD.format(name="mentions_source"))
    rows = _rows(tmp_path)
    spec = "math,mentions_source:0.5"
    missing = _assay(["score", "--rewards", spec, "--input", str(rows)], tmp_path)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1
    assert "unknown reward 'mentions_source'" in missing.stderr and "--import" in missing.stderr
    ok = _assay(["score", "--import", "my_rewards", "--rewards", spec, "--input", str(rows), "--json"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    report = json.loads(ok.stdout)
    assert report["mean"]["mentions_source"] == 0.5 and report["mean"]["math"] == 0.5, report
    by_path = _assay(["score", "--import", str(tmp_path / "my_rewards.py"), "--rewards", spec, "--input", str(rows),
                      "--json"], REPO)
    assert by_path.returncode == 0 and json.loads(by_path.stdout)["mean"]["mentions_source"] == 0.5, by_path.stderr
    bad = _assay(["score", "--import", "no_such_module_here", "--rewards", "math", "--input", str(rows)], tmp_path)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "no module named 'no_such_module_here'" in bad.stderr


def test_an_installed_entry_point_names_a_reward(tmp_path):
    site = tmp_path / "site"
    dist = site / "assay_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: assay-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text(
        "[assay.rewards]\nshouts = assay_plugin_mod:shouts\nmentions_source = assay_plugin_registers\n")
    (site / "assay_plugin_mod.py").write_text(
        "from rewards import RewardResult\n"
        "def shouts(completions, rows, **options):\n"
        "    return [RewardResult(float(c.isupper()), 'upper' if c.isupper() else 'lower') for c in completions]\n")
    (site / "assay_plugin_registers.py").write_text(README_REWARD.format(name="mentions_source"))
    rows = _rows(tmp_path)
    proc = _assay(["score", "--rewards", "shouts,mentions_source", "--input", str(rows), "--json"], tmp_path,
                  env={"PYTHONPATH": str(site)})
    assert proc.returncode == 0, proc.stderr
    mean = json.loads(proc.stdout)["mean"]
    assert mean == {"shouts": 0.0, "mentions_source": 0.5}, mean


@pytest.mark.slow
def test_a_training_config_imports_its_rewards(tmp_path, capsys, monkeypatch):
    import yaml

    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    (tmp_path / "fh_rewards.py").write_text(
        "from rewards import register, RewardResult\n"
        "@register('fh_says_seven')\n"
        "def says_seven(completions, rows, **options):\n"
        "    return [RewardResult(float('7' in c), 'seven' if '7' in c else 'no seven') for c in completions]\n")
    cfg = yaml.safe_load((CONFIGS / "grpo-smoke.yaml").read_text())
    cfg["rewards"] = [{"name": "fh_says_seven"}]
    cfg["grpo"].update(max_steps=1, save_strategy="no")
    cfg["data"]["eval_size"] = 0
    cfg["logging"]["plot"] = False
    bad = dict(cfg, rewards=[{"name": "fh_says_seven"}])
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(bad))
    assert main(["train", "grpo", "--config", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "bad")]) == 2
    assert "unknown reward 'fh_says_seven'" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    cfg["rewards_import"] = ["fh_rewards"]  # found beside the config, wherever the command runs
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["train", "grpo", "--config", str(tmp_path / "run.yaml"), "--out", str(tmp_path / "run")]) == 0
    rec = json.loads((tmp_path / "run" / "metrics.jsonl").read_text().splitlines()[0])
    assert "rewards/fh_says_seven/mean" in rec
    assert yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["rewards_import"] == ["fh_rewards"]


def test_eval_imports_a_reward_named_by_a_suite(tmp_path):
    (tmp_path / "my_rewards.py").write_text(README_REWARD.format(name="mentions_source"))
    (tmp_path / "qa.jsonl").write_text("".join(json.dumps({"id": f"q{i}", "question": "which?", "answer": "x",
                                                           "source": s}) + "\n" for i, s in enumerate(["a", "b"])))
    (tmp_path / "qa.yaml").write_text("name: qa\ndata: qa.jsonl\nid_field: id\nprompt:\n  style: plain\n"
                                      "  template: '{question}'\nanswer_field: answer\nmetrics: [mentions_source]\n")
    (tmp_path / "preds.jsonl").write_text('{"id": "q0", "completion": "from a"}\n{"id": "q1", "completion": "none"}\n')
    args = ["eval", "score", "qa.yaml", "--predictions", "preds.jsonl", "--no-cache", "--json"]
    missing = _assay(args, tmp_path)
    assert missing.returncode == 2 and "unknown reward 'mentions_source'" in missing.stderr, missing.stderr
    ok = _assay([*args, "--import", "my_rewards"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["accuracy"] == 0.5


# ------------------------------------------------------------ shared data, CPU budgets
def test_one_variable_names_the_shared_data_everywhere(capsys):
    from assay.cli import build_parser

    parser = build_parser()
    for argv in (["eval", "run", "--help"], ["eval", "score", "--help"], ["eval", "retrieval", "--help"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "$ASSAY_SHARED_DATA" in text and "ASSAY_DATA_ROOT" not in text, argv
    readme = (REPO / "README.md").read_text()
    assert "ASSAY_DATA_ROOT" not in readme and "--data ../shared/data/cranfield" not in readme


def test_retrieval_data_takes_a_built_in_collection_name(tmp_path, capsys, monkeypatch):
    col = tmp_path / "shared" / "cranfield"
    (col / "qrels").mkdir(parents=True)
    docs = [("d1", "boundary layer flow over a flat plate"), ("d2", "heat transfer in hypersonic flow"),
            ("d3", "buckling of thin cylindrical shells")]
    (col / "corpus.jsonl").write_text("".join(json.dumps({"_id": i, "title": "", "text": t}) + "\n" for i, t in docs))
    (col / "queries.jsonl").write_text(json.dumps({"_id": "q1", "text": "hypersonic heat transfer"}) + "\n")
    (col / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td2\t1\n")
    monkeypatch.setenv("ASSAY_SHARED_DATA", str(tmp_path / "shared"))
    args = ["eval", "retrieval", "--data", "cranfield", "--mode", "bm25", "--index", str(tmp_path / "idx"), "--json"]
    assert main(args) == 0
    assert json.loads(capsys.readouterr().out)["ndcg@10"] == 1.0
    monkeypatch.setenv("ASSAY_SHARED_DATA", str(tmp_path / "elsewhere"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--data cranfield" in err and "ASSAY_SHARED_DATA" in err


def test_generation_budget_is_cpu_sized_on_a_cpu(capsys):
    from assay.cli import build_parser
    from core.models import pick_device
    from eval.suites_cli import CPU_MAX_NEW_TOKENS, default_max_new_tokens

    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"on a CPU: at most {CPU_MAX_NEW_TOKENS}" in text and "2048" in text
    assert default_max_new_tokens(None, "vllm") == 2048
    if pick_device() == "cpu":
        assert default_max_new_tokens(None) == CPU_MAX_NEW_TOKENS == 512
        assert default_max_new_tokens(16) == 16  # a suite's smaller budget stands


# ------------------------------------------------------------------------------ noise
@pytest.mark.slow
@pytest.mark.parametrize("trainer", ["reward", "dpo"])
def test_training_says_what_assay_says_and_no_library_noise(tmp_path, trainer):
    proc = _assay(["train", trainer, "--config", str(CONFIGS / f"{trainer}-smoke.yaml"), "--out", str(tmp_path / "r"),
                   "--set", f"{trainer}.max_steps=1", "--set", f"{trainer}.save_strategy=no", *QUICK], tmp_path)
    assert proc.returncode == 0, proc.stderr
    for noise in ("FutureWarning", "examples/s", "LOAD REPORT", "MISSING"):
        assert noise not in proc.stderr, proc.stderr
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        line for line in proc.stderr.splitlines() if line.startswith("train: step 1/1  loss ")], proc.stderr


def test_score_with_the_code_reward_says_when_bubblewrap_is_off(tmp_path):
    rows = tmp_path / "code.jsonl"
    rows.write_text(json.dumps({"completion": "def solve(x):\n    return x * x\n", "entry_point": "solve",
                                "prompt": "", "test": "def check(candidate):\n    assert candidate(3) == 9\n"}) + "\n")
    proc = subprocess.run([sys.executable, "-m", "assay", "score", "--rewards", "code", "--input", str(rows), "--json"],
                          capture_output=True, text=True, env=_env_without_bwrap(tmp_path), timeout=120)
    assert proc.returncode == 0 and json.loads(proc.stdout)["mean"]["code"] == 1.0, proc.stderr
    notes = [line for line in proc.stderr.splitlines() if line.startswith("sandbox:")]
    assert len(notes) == 1 and "bubblewrap not found" in notes[0], proc.stderr
