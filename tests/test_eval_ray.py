"""Eval generation on a real Ray cluster (two simulated nodes, `ray_cluster` in conftest)
with a tiny random Llama built from a config: greedy outputs identical to one process,
only what the cache lacks is generated, results written to the cache by the driver, a
rerun generates nothing; `assay eval run --ray`."""

from __future__ import annotations

import json
import shutil

import pytest

from assay.cli import main
from eval.cache import Cache
from eval.generation import GenerationConfig, Generator
from eval.ray_generation import RayGenConfig, RayGenerator

PROMPTS = [f"Question {i}: what is {i} plus {2 * i}?" + " Think." * (i % 5) + "\nAnswer:" for i in range(14)]


def _cfg(**kw) -> GenerationConfig:
    return GenerationConfig(**{"max_new_tokens": 12, "batch_size": 4, **kw})


@pytest.fixture(scope="module")
def local_texts(tiny_lm):
    gen = Generator(str(tiny_lm), _cfg(), cache=Cache(None), progress=False)
    return [g[0].text for g in gen.generate(PROMPTS)], gen


def test_greedy_identical_to_one_process_and_rerun_generates_nothing(ray_cluster, tiny_lm, local_texts, tmp_path):
    texts, _ = local_texts
    db = Cache(tmp_path / "cache.sqlite")
    gen = RayGenerator(str(tiny_lm), _cfg(), cache=db, progress=False)
    got = gen.generate(PROMPTS)
    assert [g[0].text for g in got] == texts
    assert gen.stats["generated"] == len(PROMPTS) and gen.stats["actors"] == 2 and gen.stats["batches"] == 4
    # the driver wrote them: a one-process Generator on the same cache finds them all
    plain = Generator(str(tiny_lm), _cfg(), cache=Cache(tmp_path / "cache.sqlite"), progress=False)
    assert [g[0].text for g in plain.generate(PROMPTS)] == texts and plain.stats["generated"] == 0
    again = RayGenerator(str(tiny_lm), _cfg(), cache=Cache(tmp_path / "cache.sqlite"), progress=False)
    assert [g[0].text for g in again.generate(PROMPTS)] == texts
    assert again.stats["generated"] == 0 and again.stats["actors"] == 0  # nothing to do: no actor started
    gen.close()


def test_only_missing_prompts_go_to_the_cluster(ray_cluster, tiny_lm, local_texts, tmp_path):
    texts, _ = local_texts
    path = tmp_path / "cache.sqlite"
    Generator(str(tiny_lm), _cfg(), cache=Cache(path), progress=False).generate(PROMPTS[:9])
    gen = RayGenerator(str(tiny_lm), _cfg(), cache=Cache(path), progress=False, ray=RayGenConfig(actors=1))
    got = gen.generate(PROMPTS)
    assert gen.stats["generated"] == 5 and sum(g[0].cached for g in got) == 9
    # greedy is batch-independent (left padding): the five alone match the full run
    assert [g[0].text for g in got] == texts
    gen.close()


@pytest.mark.slow
def test_sampling_seeded_like_one_process(ray_cluster, tiny_lm):
    cfg = dict(temperature=0.9, seed=3)
    one = Generator(str(tiny_lm), _cfg(**cfg), cache=Cache(None), progress=False).generate(PROMPTS[:10], n=2)
    gen = RayGenerator(str(tiny_lm), _cfg(**cfg), cache=Cache(None), progress=False)
    many = gen.generate(PROMPTS[:10], n=2)
    assert [[g.text for g in gs] for gs in many] == [[g.text for g in gs] for gs in one]
    gen.close()


@pytest.mark.slow  # two runs of the CLI, actors loading torch (~25 s)
def test_cli_eval_run_ray(ray_cluster, tiny_lm, repo_root, tmp_path, capsys):
    spec_dir = tmp_path / "suites"
    shutil.copytree(repo_root / "data" / "suites", spec_dir, ignore=shutil.ignore_patterns("rag_qa"))
    base = ["eval", "run", str(spec_dir / "capitals.yaml"), "--model", str(tiny_lm), "--limit", "4",
            "--max-new-tokens", "5", "--json"]
    assert main([*base, "--cache", str(tmp_path / "a.sqlite"), "--out", str(tmp_path / "a")]) == 0
    local = json.loads(capsys.readouterr().out)
    assert main([*base, "--cache", str(tmp_path / "b.sqlite"), "--out", str(tmp_path / "b"),
                 "--ray", ray_cluster.address]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["generations"]["new"] == 4 == local["generations"]["new"]
    a = [json.loads(x) for x in open(tmp_path / "a" / "samples.jsonl")]
    b = [json.loads(x) for x in open(tmp_path / "b" / "samples.jsonl")]
    assert [r["completion"] for r in a] == [r["completion"] for r in b]
    assert main([*base, "--cache", str(tmp_path / "b.sqlite"), "--out", str(tmp_path / "c"), "--ray",
                 ray_cluster.address]) == 0
    assert json.loads(capsys.readouterr().out)["generations"]["new"] == 0
