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
    ("does-not-exist", "'does-not-exist' is not a known name, a local path or a reachable hub id"),
    ("./models/nope", "model path ./models/nope does not exist"),
    ("../nope/model", "model path ../nope/model does not exist"),
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
    from rag import models

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(models.ModelError, match="unreachable"):
        models.resolve("some-org/some-model")


def test_a_known_name_and_a_local_path_still_resolve(tmp_path):
    from rag import models

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
