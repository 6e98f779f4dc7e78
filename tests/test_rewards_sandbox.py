"""The sandbox transport: limits, output caps, parallelism, deadlines, recovery, the
plain-data codec, and running (with the gaps reported) where bubblewrap is not used."""

from __future__ import annotations

import json
import math
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewards import sandbox
from rewards.sandbox import server


def stdio(box: sandbox.Sandbox, program: str, data: str = "", **job) -> dict:
    [out] = box.run([{"kind": "stdio", "program": program, "inputs": [data], **job}])
    return out["result"]["runs"][0]


@pytest.fixture(scope="module")
def box():
    b = sandbox.Sandbox(sandbox.SandboxConfig(timeout=3.0, memory_mb=256, processes=24, output_bytes=4096, workers=2))
    yield b
    b.close()


def test_output_is_capped_and_its_size_reported(box):
    run = stdio(box, "import sys\nsys.stdout.write('y' * 3_000_000)\n")
    assert len(run["stdout"]) == 4096
    assert run["stdout_bytes"] == 3_000_000
    assert run["exit_code"] == 0


def test_file_size_limit_stops_endless_output(box):
    run = stdio(box, "import sys\nwhile True:\n    sys.stdout.write('z' * 65536)\n")
    assert run.get("signal") == "SIGXFSZ" or run.get("exit_code") not in (0, None)
    assert run["stdout_bytes"] <= 16 << 20
    assert not run["timed_out"]


def test_memory_limit(box):
    run = stdio(box, "x = bytearray(400 * 1024 * 1024)\nprint('allocated')\n")
    assert "allocated" not in run["stdout"]
    assert "MemoryError" in run["stderr"]
    small = stdio(box, "x = bytearray(50 * 1024 * 1024)\nprint('allocated')\n")
    assert small["stdout"].strip() == "allocated"


def test_a_job_can_lower_its_limits(box):
    run = stdio(box, "x = bytearray(120 * 1024 * 1024)\nprint('ok')\n", limits={"memory_mb": 100})
    assert "MemoryError" in run["stderr"]


def test_process_limit_is_enforced(box):
    prog = (
        "import os\nn = 0\n"
        "while n < 500:\n"
        "    try:\n        pid = os.fork()\n    except OSError:\n        break\n"
        "    if pid == 0:\n        import time\n        time.sleep(30)\n        os._exit(0)\n"
        "    n += 1\n"
        "print(n)\n"
    )
    run = stdio(box, prog)
    assert 0 < int(run["stdout"]) < 24  # the cap (24) counts the harness and the program too


def test_environment_is_scrubbed_and_cwd_is_private(box):
    run = stdio(box, "import os, json\nprint(json.dumps([dict(os.environ), os.getcwd(), os.getuid()]))\n")
    env, cwd, uid = json.loads(run["stdout"])
    assert set(env) <= {"PATH", "HOME", "LANG", "TMPDIR", "LC_CTYPE"}
    assert cwd == "/tmp" and uid != 0


def test_results_keep_order_and_jobs_run_in_parallel(box):
    # Each job reports when it started and ended; parallel means two of them overlapped
    # (an order of events, not a wall-clock limit on a VM whose speed drifts).
    prog = "import time\nt0 = time.time()\ntime.sleep(0.6)\nprint({i}, t0, time.time())\n"
    jobs = [{"kind": "stdio", "program": prog.format(i=i), "inputs": [""]} for i in range(4)]
    outs = box.run(jobs)
    lines = [o["result"]["runs"][0]["stdout"].split() for o in outs]
    assert [line[0] for line in lines] == ["0", "1", "2", "3"]
    spans = sorted((float(a), float(b)) for _, a, b in lines)
    assert any(spans[i + 1][0] < spans[i][1] for i in range(len(spans) - 1)), spans


def test_hard_deadline_kills_a_stuck_job_and_the_slot_is_replaced():
    cfg = sandbox.SandboxConfig(timeout=0.5, grace=0.5, workers=1)
    with sandbox.Sandbox(cfg) as b:
        # Trusted test code that never returns: only the server's hard deadline ends it.
        stuck = {"kind": "call", "program": "def f():\n    return 1\n", "bind": {"f": "f"},
                 "setup": [{"source": "while True:\n    pass\n"}], "steps": [{"source": "assert f() == 1"}]}
        ok = {"kind": "call", "program": "def f():\n    return 1\n", "bind": {"f": "f"}, "steps": [{"source": "assert f() == 1"}]}
        start = time.monotonic()
        first, second = b.run([stuck, ok])
        assert first["killed"] is True and first["result"] is None
        assert second["result"]["steps"] == [{"ok": True}]
        assert time.monotonic() - start < 5


def test_server_death_is_reported_and_recovered():
    with sandbox.Sandbox(sandbox.SandboxConfig(timeout=2.0, workers=1)) as b:
        b.capabilities()
        b._proc.kill()
        b._proc.wait()
        # The next job starts a fresh server.
        assert stdio(b, "print(6 * 7)\n")["stdout"].strip() == "42"


def test_without_bubblewrap_it_still_runs_and_says_what_is_missing():
    with sandbox.Sandbox(sandbox.SandboxConfig(timeout=2.0, workers=1, bubblewrap=False)) as b:
        caps = b.capabilities()
        assert caps["bubblewrap"] is False and caps["readonly_filesystem"] is False
        assert any("read-only filesystem" in m for m in caps["missing"])
        assert stdio(b, "print('still isolated by namespaces and rlimits')\n")["exit_code"] == 0


def test_bubblewrap_required_but_missing_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    with pytest.raises(sandbox.SandboxError, match="bubblewrap"):
        sandbox.Sandbox(sandbox.SandboxConfig(bubblewrap=True)).capabilities()


def test_assay_sandbox_cli(tmp_path, capsys):
    from assay.cli import main

    prog = tmp_path / "p.py"
    prog.write_text("import sys\nprint(sum(map(int, sys.stdin.read().split())))\n")
    data = tmp_path / "in.txt"
    data.write_text("1 2 3\n")
    assert main(["sandbox", "run", str(prog), "--stdin", str(data)]) == 0
    assert capsys.readouterr().out.strip() == "6"
    assert main(["sandbox", "check", "--json"]) == 0
    caps = json.loads(capsys.readouterr().out)
    assert {"missing", "bubblewrap", "pid_namespace"} <= set(caps)
    assert main(["sandbox", "run", str(tmp_path / "missing.py")]) == 2


# ---------------------------------------------------------------- the plain-data codec

plain = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text() | st.binary()
    | st.complex_numbers(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.integers() | st.text(max_size=5) | st.tuples(st.integers()), inner, max_size=4)
    | st.frozensets(st.integers() | st.text(max_size=4), max_size=4),
    max_leaves=20,
)


def _same(a, b) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    return a == b


@given(plain)
@settings(max_examples=200, deadline=None)
def test_codec_round_trips_exact_types(value):
    wire = json.loads(json.dumps(server.encode_value(value)))
    assert _same(server.decode_value(wire), value)


def test_codec_strips_subclasses_and_refuses_objects():
    class Liar(int):
        def __eq__(self, other):
            return True

        __hash__ = int.__hash__

    decoded = server.decode_value(json.loads(json.dumps(server.encode_value([Liar(3)]))))
    assert type(decoded[0]) is int and decoded[0] == 3 and decoded[0] != 4
    with pytest.raises(TypeError, match="cannot cross the sandbox boundary"):
        server.encode_value(object())
    with pytest.raises(ValueError):
        server.decode_value({"x": 1})  # unknown tag from a hostile candidate


def test_decoder_builds_only_builtin_types():
    value = server.decode_value({"d": [[{"t": [1, {"f": [2]}]}, {"n": "nan"}]]})
    [(key, v)] = value.items()
    assert type(value) is dict and type(key) is tuple and type(key[1]) is frozenset
    assert type(v) is float and v != v
    for hostile in ({"d": [[{"s": [1]}, 1]]}, {"t": 5}, {"b": "zz"}, {"q": []}):
        with pytest.raises((ValueError, TypeError)):
            server.decode_value(hostile)
