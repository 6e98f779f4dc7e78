"""Adversarial programs against the code sandbox: each one is contained and fails.

Every program is written so that *if its attack worked* the tests would pass (it returns
the right answer, x * x, only when the exploit succeeded), so a score of 0 means the
attack was stopped; host-side checks (files, processes, listeners) confirm the rest.
All programs of the suite run in one batch, as the reward runs them in training.
"""

from __future__ import annotations

import os
import socket
import subprocess
import textwrap
import threading
import time
import uuid

import pytest

from rewards import sandbox
from rewards.code import code

MARK = uuid.uuid4().hex[:12]
HOST_FILE = f"/tmp/assay_pwned_{MARK}"
TIMEOUT = 2.0

# A toy HumanEval-style problem: solve(x) == x * x.
ROW = {
    "prompt": "",
    "entry_point": "solve",
    "test": "def check(candidate):\n    assert candidate(2) == 4\n    assert candidate(3) == 9\n    assert candidate(12) == 144\n",
}
ROW_MATH = {  # the tests use math.isclose: a program patching math must not fool them
    "prompt": "",
    "entry_point": "solve",
    "test": "import math\n\ndef check(candidate):\n    assert math.isclose(candidate(2), 4.0)\n    assert math.isclose(candidate(3), 9.0)\n",
}


def _listener() -> tuple[socket.socket, int, list]:
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    hits: list = []

    def accept():
        end = time.time() + 60
        while time.time() < end:
            try:
                conn, _ = srv.accept()
                hits.append(1)
                conn.close()
            except OSError:
                pass

    threading.Thread(target=accept, daemon=True).start()
    return srv, srv.getsockname()[1], hits


LISTENER, PORT, HITS = _listener()

# name -> (program, row). Programs are dedented.
CASES: dict[str, tuple[str, dict]] = {
    "infinite_loop_at_import": ("while True:\n    pass\ndef solve(x):\n    return x * x\n", ROW),
    "infinite_loop_in_call": ("def solve(x):\n    while True:\n        pass\n", ROW),
    "sleep_forever": ("import time\ndef solve(x):\n    time.sleep(10**6)\n    return x * x\n", ROW),
    "fork_bomb": (
        """
        import os
        def solve(x):
            n = 0
            while n < 100000:
                try:
                    os.fork()
                    n += 1
                except OSError:
                    break
            return x * x if n >= 100000 else -1
        """, ROW),
    "memory_bomb_single": (
        """
        def solve(x):
            block = bytearray(8 * 1024**3)
            return x * x
        """, ROW),
    "memory_bomb_growing": (
        """
        def solve(x):
            hog = []
            while True:
                hog.append(bytearray(64 * 1024**2))
        """, ROW),
    "network_host_loopback": (
        f"""
        import socket
        def solve(x):
            socket.create_connection(("127.0.0.1", {PORT}), timeout=1).close()
            return x * x
        """, ROW),
    "network_internet": (
        """
        import socket
        def solve(x):
            socket.create_connection(("pypi.org", 443), timeout=1).close()
            return x * x
        """, ROW),
    "write_outside_tmp": (
        f"""
        def solve(x):
            ok = 0
            for path in ("/usr/lib/pwned_{MARK}", "/work/main/pwned_{MARK}", "/pwned_{MARK}", "/dev/pwned_{MARK}"):
                try:
                    with open(path, "w") as f:
                        f.write("x")
                    ok += 1
                except OSError:
                    pass
            return x * x if ok else -1
        """, ROW),
    "write_host_tmp": (  # writes *its own* /tmp: must not reach the host's
        f"""
        def solve(x):
            with open("{HOST_FILE}", "w") as f:
                f.write("pwned")
            import os
            return x * x if os.path.exists("/work/main/pyproject.toml") else -1
        """, ROW),
    "read_secrets": (
        """
        def solve(x):
            found = 0
            for path in ("/work/main/pyproject.toml", "/root/.bashrc", "/etc/shadow", "/etc/passwd", "/home"):
                try:
                    open(path).read()
                    found += 1
                except OSError:
                    pass
            return x * x if found else -1
        """, ROW),
    "read_secret_env": (
        """
        import os
        def solve(x):
            return x * x if "ASSAY_ADVERSARIAL_SECRET" in os.environ or len(os.environ) > 6 else -1
        """, ROW),
    "read_harness_memory": (  # /proc/1 is the trusted harness: not dumpable
        """
        def solve(x):
            data = open("/proc/1/mem", "rb").read(16)
            return x * x
        """, ROW),
    "ptrace_harness": (
        """
        import ctypes
        def solve(x):
            libc = ctypes.CDLL(None, use_errno=True)
            return x * x if libc.ptrace(16, 1, 0, 0) == 0 else -1  # PTRACE_ATTACH to PID 1
        """, ROW),
    "peek_tests_in_memory": (  # the tests must not be anywhere in the candidate's heap
        """
        import gc, re
        def solve(x):
            for obj in gc.get_objects():
                for s in (obj.values() if isinstance(obj, dict) else obj if isinstance(obj, (list, tuple)) else ()):
                    if isinstance(s, str) and "candidate(" in s:
                        m = re.search(r"candidate\\(%d\\) == (\\d+)" % x, s)
                        if m:
                            return int(m.group(1))
            return -1
        """, ROW),
    "peek_caller_frame": (
        """
        import sys
        def solve(x):
            f = sys._getframe(1)
            while f is not None:  # a test's frame names `candidate` and holds the expected value
                if "candidate" in f.f_code.co_names or "candidate" in f.f_code.co_varnames:
                    for c in f.f_code.co_consts:
                        if isinstance(c, int) and c == x * x:
                            return c
                f = f.f_back
            return -1
        """, ROW),
    "sys_exit_at_import": ("import sys\nsys.exit(0)\ndef solve(x):\n    return x * x\n", ROW),
    "os_exit_at_import": ("import os\nos._exit(0)\n", ROW),
    "os_exit_in_call": ("import os\ndef solve(x):\n    os._exit(0)\n", ROW),
    "system_exit_in_call": ("def solve(x):\n    raise SystemExit(0)\n", ROW),
    "exit_from_thread": (
        """
        import os, threading, time
        def solve(x):
            threading.Thread(target=lambda: os._exit(0)).start()
            time.sleep(1)
        """, ROW),
    "fake_success_marker": (
        """
        import sys
        print("passed")
        print("ALL TESTS PASSED")
        print('{"result": {"steps": [{"ok": true}, {"ok": true}, {"ok": true}]}}')
        sys.stderr.write("OK\\n")
        def solve(x):
            print("passed")
            return None
        """, ROW),
    "forged_frames_on_every_fd": (
        """
        import json, os, struct
        frame = json.dumps({"result": {"steps": [{"ok": True}] * 3}, "loaded": ["solve"], "done": 1}).encode()
        for fd in range(3, 1024):
            try:
                os.write(fd, struct.pack(">I", len(frame)) + frame)
            except OSError:
                pass
        def solve(x):
            return None
        """, ROW),
    "eq_always_true": (
        """
        class Anything:
            def __eq__(self, other):
                return True
            __hash__ = object.__hash__
        def solve(x):
            return Anything()
        """, ROW),
    "int_subclass_eq": (
        """
        class Liar(int):
            def __eq__(self, other):
                return True
            __hash__ = int.__hash__
        def solve(x):
            return Liar(0)
        """, ROW),
    "float_nan_like": (
        """
        class F(float):
            def __eq__(self, other):
                return True
            def __sub__(self, other):
                return 0.0
            __rsub__ = __sub__
            __hash__ = float.__hash__
        def solve(x):
            return F(-1.0)
        """, ROW_MATH),
    "patch_builtins": (
        """
        import builtins
        builtins.AssertionError = type("AssertionError", (Exception,), {})
        builtins.abs = lambda v: 0
        builtins.isinstance = lambda *a: True
        def solve(x):
            return None
        """, ROW),
    "shadow_assertion_error": (
        "AssertionError = None\nclass AssertionError(BaseException):\n    pass\ndef solve(x):\n    return None\n", ROW),
    "patch_sys_modules": (
        """
        import sys, types
        fake = types.ModuleType("math")
        fake.isclose = lambda *a, **k: True
        sys.modules["math"] = fake
        import math
        math.isclose = lambda *a, **k: True
        def solve(x):
            return None
        """, ROW_MATH),
    "settrace_skip_lines": (
        """
        import sys
        def tracer(frame, event, arg):
            return None
        sys.settrace(tracer)
        def solve(x):
            sys.settrace(tracer)
            return None
        """, ROW),
    "kill_parent": (
        """
        import os, signal
        def solve(x):
            for pid in (os.getppid(), 1):
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            return None
        """, ROW),
    "kill_everything": ("import os, signal\ndef solve(x):\n    os.kill(-1, signal.SIGKILL)\n    return x * x\n", ROW),
    "signal_games": (
        """
        import signal, os
        for sig in (signal.SIGTERM, signal.SIGXCPU, signal.SIGALRM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)
        signal.setitimer(signal.ITIMER_REAL, 0.01, 0.01)
        def solve(x):
            while True:
                pass
        """, ROW),
    "daemonized_leftover": (
        f"""
        import os
        def solve(x):
            if os.fork() == 0:
                os.setsid()
                if os.fork() == 0:
                    os.execv("/bin/sleep", ["sleep", "86{MARK[:3].translate(str.maketrans('abcdef', '123456'))}.5"])
                os._exit(0)
            return None
        """, ROW),
    "huge_output": (
        """
        import sys
        def solve(x):
            chunk = "x" * (1 << 20)
            while True:
                sys.stdout.write(chunk)
        """, ROW),
    "segfault": ("import ctypes\ndef solve(x):\n    return ctypes.string_at(0)\n", ROW),
    "stack_overflow": (
        "import sys\nsys.setrecursionlimit(10**7)\ndef solve(x):\n    return solve(x) + 1\n", ROW),
    "fill_disk": (
        """
        def solve(x):
            with open("filler", "wb") as f:
                while True:
                    f.write(b"x" * (1 << 20))
        """, ROW),
    "unshare_escape": (
        """
        import ctypes, os
        def solve(x):
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(0x10000000 | 0x00020000) != 0:
                return -1
            ok = libc.mount(b"none", b"/usr", b"tmpfs", 0, None) == 0
            return x * x if ok and os.access("/work", os.F_OK) else -1
        """, ROW),
}


# The sandbox's own probe (what `assay sandbox check` prints) says which protections are on
# here. An attack that only a missing protection stops is skipped, naming it, rather than
# failed: a machine without bubblewrap runs the suite green and says what it did not test.
CAPS = sandbox.capabilities()
PROTECTIONS = {"bubblewrap": "bubblewrap (read-only filesystem, host files hidden)"}
# attack -> the protection that stops it (the others are stopped by what every sandbox has)
NEEDS = {"write_host_tmp": "bubblewrap", "read_secrets": "bubblewrap", "unshare_escape": "bubblewrap"}


def _off(protection: str) -> str | None:
    """The skip reason when `protection` is off on this machine, else None."""
    if CAPS.get(protection):
        return None
    return (f"needs {PROTECTIONS[protection]}, which is off here (`assay sandbox check`); "
            "install it with: apt-get install bubblewrap")


def _case(name: str):
    reason = _off(NEEDS[name]) if name in NEEDS else None
    return pytest.param(name, marks=pytest.mark.skip(reason=reason)) if reason else name


@pytest.fixture(scope="module")
def outcomes():
    os.environ["ASSAY_ADVERSARIAL_SECRET"] = "hunter2"
    try:
        names = list(CASES)
        completions = [textwrap.dedent(CASES[n][0]) for n in names]
        rows = [CASES[n][1] for n in names]
        start = time.monotonic()
        results = code(completions, rows, sandbox=sandbox.SandboxConfig(timeout=TIMEOUT))
        elapsed = time.monotonic() - start
    finally:
        os.environ.pop("ASSAY_ADVERSARIAL_SECRET", None)
    return dict(zip(names, results)), elapsed


def test_suite_is_large_enough():
    assert len(CASES) >= 25


@pytest.mark.parametrize("name", [_case(n) for n in CASES])
def test_attack_fails(outcomes, name):
    results, _ = outcomes
    r = results[name]
    assert r.score == 0.0, f"{name}: {r.reason}"
    assert r.reason  # every failure says why


def test_the_same_problem_passes_when_solved():
    # The suite's problems are solvable: the zeros above are the attacks failing.
    for row in (ROW, ROW_MATH):
        [r] = code(["def solve(x):\n    return x * x\n"], [row], sandbox=sandbox.SandboxConfig(timeout=TIMEOUT))
        assert r.score == 1.0, r.reason


def test_reasons_name_the_failure(outcomes):
    results, elapsed = outcomes
    assert "timeout" in results["infinite_loop_in_call"].reason
    assert "timeout" in results["infinite_loop_at_import"].reason
    assert "exited while loading" in results["sys_exit_at_import"].reason
    assert "SIGSEGV" in results["segfault"].reason or "killed" in results["segfault"].reason
    assert "cannot cross the sandbox boundary" in str(results["eq_always_true"].details)
    # Everything ran in parallel within a bounded time: no attack stalled the sandbox.
    assert elapsed < 60


def test_host_untouched():
    assert not os.path.exists(HOST_FILE)
    assert not any(p.name.startswith("pwned_") for p in __import__("pathlib").Path("/work/main").iterdir())
    assert not HITS, "a sandboxed program reached a socket listening on the host"


def test_no_process_outlives_its_program(outcomes):
    marker = f"86{MARK[:3].translate(str.maketrans('abcdef', '123456'))}.5"
    ps = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    assert marker not in ps
    # nothing of the candidates is left in the sandbox either: its uid runs only the
    # server, its slot factory and the idle slots (H, A and one spare candidate each).
    # Only this sandbox's own process tree counts: other sandboxes on the machine (another
    # test run, a training job) share the uid.
    box = sandbox.get_sandbox(sandbox.SandboxConfig(timeout=TIMEOUT))
    assert box._proc is not None
    table = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split()
    parent = dict(zip(map(int, table[0::2]), map(int, table[1::2])))
    children: dict[int, list[int]] = {}
    for pid, ppid in parent.items():
        children.setdefault(ppid, []).append(pid)
    tree, todo = [], [box._proc.pid]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    assert len(tree) <= 64  # fork bombs are gone (a live bomb would sit at its NPROC cap)


def test_sandbox_still_serves_after_the_attacks(outcomes):
    [r] = code(["def solve(x):\n    return x * x\n"], [ROW], sandbox=sandbox.SandboxConfig(timeout=TIMEOUT))
    assert r.score == 1.0


def test_no_state_leaks_between_jobs():
    # One slot, so the second program runs where the first one wrote.
    cfg = sandbox.SandboxConfig(timeout=TIMEOUT, workers=1)
    writer = (
        "import os\n"
        "def solve(x):\n"
        "    for d in ('.', '/tmp', '/dev/shm'):\n"
        "        try:\n"
        f"            open(os.path.join(d, 'leak_{MARK}'), 'w').write(str(x * x))\n"
        "        except OSError:\n"
        "            pass\n"
        "    return -1\n"
    )
    reader = (
        "import os\n"
        "def solve(x):\n"
        "    for d in ('.', '/tmp', '/dev/shm'):\n"
        f"        p = os.path.join(d, 'leak_{MARK}')\n"
        "        if os.path.exists(p):\n"
        "            return x * x\n"
        "    return -1\n"
    )
    shm = (  # System V shared memory outlives its creator unless someone removes it
        "import ctypes\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "libc.shmat.restype = ctypes.c_void_p\n"
        "sid = libc.shmget(0x5EC7E7, 4096, 0o1666)  # IPC_CREAT | 0666\n"
        "buf = (ctypes.c_char * 8).from_address(libc.shmat(sid, None, 0)) if sid >= 0 else None\n"
        "seen = buf.value if buf is not None else b''  # what an earlier job left\n"
        "if buf is not None:\n"
        "    buf.value = b'written'\n"
        "def solve(x):\n"
        "    return x * x if seen == b'written' else -1\n"
    )
    results = code([writer, reader, reader, shm, shm, shm], [ROW] * 6, sandbox=cfg)
    assert [r.score for r in results] == [0.0] * 6, [r.reason for r in results]


@pytest.mark.skipif(bool(_off("bubblewrap")), reason=_off("bubblewrap") or "")
def test_isolation_is_complete_here():
    caps = sandbox.capabilities()
    assert caps["missing"] == [], caps["missing"]
    assert caps["readonly_filesystem"] and caps["pid_namespace"] and caps["network_namespace"]


def test_stdio_attacks_fail():
    row = {"inputs": ["2\n", "3\n"], "outputs": ["4\n", "9\n"]}
    programs = [
        "import sys\nsys.exit(0)\n",  # exits before answering
        "print('passed')\n",  # a marker instead of the answer
        "import os\nos._exit(0)\n",
        "while True:\n    pass\n",
        "import sys\nwhile True:\n    sys.stdout.write('4\\n' * 100000)\n",  # floods output
    ]
    results = code(programs, [row] * len(programs), sandbox=sandbox.SandboxConfig(timeout=TIMEOUT))
    for prog, r in zip(programs, results):
        assert r.score == 0.0, (prog, r.reason)
    ok = code(["print(int(input()) ** 2)\n"], [row], sandbox=sandbox.SandboxConfig(timeout=TIMEOUT))
    assert ok[0].score == 1.0, ok[0].reason


@pytest.mark.skipif(bool(_off("bubblewrap")), reason=_off("bubblewrap") or "")
def test_stdio_program_cannot_read_host_files():
    row = {"inputs": ["2\n", "3\n"], "outputs": ["4\n", "9\n"]}
    program = "import os\nprint(open('/work/main/pyproject.toml').read()[:1] and 4)\n"  # needs a host file
    [r] = code([program], [row], sandbox=sandbox.SandboxConfig(timeout=TIMEOUT))
    assert r.score == 0.0, r.reason


def test_no_test_code_from_the_previous_job_in_a_candidates_memory():
    # One slot: the peeking program's process was forked right after a job with the same
    # tests finished in that slot. Nothing of that job may still be reachable.
    cfg = sandbox.SandboxConfig(timeout=TIMEOUT, workers=1)
    peek = textwrap.dedent(CASES["peek_tests_in_memory"][0])
    # A prompt with a helper: the test namespace then holds a function whose globals are
    # that namespace (a reference cycle that outlives the job unless it is collected).
    row = dict(ROW, prompt="def helper(v):\n    return v\n\n")
    results = code(["def solve(x):\n    return x * x\n", peek, peek], [row, row, row], sandbox=cfg)
    assert results[0].score == 1.0
    assert [r.score for r in results[1:]] == [0.0, 0.0], [r.reason for r in results]


RAW_MEMORY_SCAN = """
import ctypes, re
def solve(x):
    # Not the live objects (see peek_tests_in_memory) but every byte of the process's
    # writable memory, freed blocks included: what a fork of the harness would inherit.
    pat = re.compile(rb"candidate\\(%d\\) == (\\d+)" % x)
    with open("/proc/self/maps") as f:
        regions = [line.split() for line in f]
    for r in regions:
        if len(r) < 2 or not r[1].startswith("rw") or (len(r) > 5 and r[5].startswith("[v")):
            continue
        lo, hi = (int(v, 16) for v in r[0].split("-"))
        if hi - lo > (256 << 20):
            continue
        m = pat.search(ctypes.string_at(lo, hi - lo))
        if m:
            return int(m.group(1))
    return -1
"""


def test_no_bytes_of_the_previous_jobs_tests_in_a_candidates_memory():
    # One slot: the scanning programs run right after a job with the same tests, in the
    # same slot. Candidates are forked by a process that never held a job, so not even
    # freed memory holds the expected values. (The scanner does find them when they are
    # there: test_raw_memory_scanner_finds_what_is_there.)
    cfg = sandbox.SandboxConfig(timeout=TIMEOUT, workers=1)
    results = code(["def solve(x):\n    return x * x\n", RAW_MEMORY_SCAN, RAW_MEMORY_SCAN], [ROW] * 3, sandbox=cfg)
    assert results[0].score == 1.0
    assert [r.score for r in results[1:]] == [0.0, 0.0], [r.reason for r in results]


def test_raw_memory_scanner_finds_what_is_there():
    planted = "PLANTED = [''.join(['candi', 'date(%d) == %d ' % (x, x * x)]) for x in (2, 3, 12)]\n"
    [r] = code([planted + RAW_MEMORY_SCAN], [ROW], sandbox=sandbox.SandboxConfig(timeout=TIMEOUT, workers=1))
    assert r.score == 1.0, r.reason
