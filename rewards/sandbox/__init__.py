"""The code sandbox: runs untrusted programs, one process each, behind as many walls as
this machine offers, and reports what it could not put up.

Front door::

    from rewards import sandbox
    sandbox.capabilities()            # which protections are active here, which are missing
    sandbox.run([job, ...])           # -> one result dict per job, in order

A job is a plain dict (the reward builds them; see `rewards.code`):

- ``{"kind": "call", "program": src, "steps": [{"source": stmt}], "setup": [{"source":
  src, "required": bool}], "bind": {"candidate": "fn"}, "proxy_all": bool, "timeout": s}``:
  the program runs in its own process; the steps (test code) run in the trusted harness,
  calling the program's functions through proxies that carry only plain data. Result:
  ``{"steps": [{"ok": bool, "error": {...}}], "timed_out": bool, "stdout", "stderr", ...}``
  or ``{"load_error": {"type", "message", "line"}}`` / ``{"setup_error": ...}``.
- ``{"kind": "stdio", "program": src, "inputs": [str], "timeout": s}``: one run per input,
  each in a fresh process. Result: ``{"runs": [{"stdout", "stderr", "exit_code" | "signal",
  "timed_out", "seconds"}]}``.

Every result also has ``killed`` (the server's hard deadline fired) and ``id``.

How: a fork-server (`server.py`, standard library only) runs under the system
``/usr/bin/python3`` as an unprivileged uid, inside bubblewrap when it is installed
(read-only /usr, nothing else of the host filesystem, no network). Each slot (reused job
after job, emptied between them) has its own user, mount, PID, network, IPC and UTS
namespaces, a private tmpfs and /proc; candidates are forked by a factory process that
never holds a job, in a PID namespace of their own, with rlimits, no capabilities and a
scrubbed environment. See the
docstring of `server.py` for the process tree and why verdicts cannot be forged.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import struct
import subprocess
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

SERVER_SOURCE = Path(__file__).with_name("server.py")


class SandboxError(RuntimeError):
    """The sandbox server could not start or died; not the candidate's fault."""


@dataclass(frozen=True)
class SandboxConfig:
    timeout: float = 5.0
    """Wall-clock seconds per program run: the whole test run of a call job, each input of
    a stdio job. The server kills the job at timeout (x runs) + `grace`."""
    memory_mb: int = 512
    """RLIMIT_AS of each candidate process (virtual memory), MiB. There is no cgroup here,
    so a program's worst case is `processes` x `memory_mb` (5 GiB by default), and the
    sandbox's is that times `workers`: keep the product well under the machine's RAM."""
    cpu_seconds: int | None = None
    """RLIMIT_CPU of each candidate process; default: ceil(timeout) + 1."""
    processes: int = 10
    """RLIMIT_NPROC inside a slot's user namespace (fork bombs stop here; the harness, its
    candidate factory and the candidate count too). Only enforced for an unprivileged
    uid, hence `uid`."""
    open_files: int = 128
    """RLIMIT_NOFILE of each candidate process."""
    file_mb: int = 16
    """RLIMIT_FSIZE: largest file (and stdout/stderr) a candidate can write, MiB."""
    tmpfs_mb: int = 64
    """Size of the job's private, writable /tmp (its working directory), MiB."""
    output_bytes: int = 1 << 20
    """How much of each run's stdout/stderr comes back to the caller."""
    python: str = "/usr/bin/python3"
    """Interpreter for the server and the candidates: the system one, which an unprivileged
    uid can read (the project venv lives under root's mode-700 home)."""
    bubblewrap: bool | None = None
    """Run the server inside bubblewrap: True requires it, False never, None where installed."""
    uid: int = 65534
    """When started as root, the server drops to this uid/gid (nobody)."""
    net_namespace: bool = True
    """A network namespace per job, on top of the server's own (isolates abstract sockets
    between concurrent jobs)."""
    workers: int | None = None
    """Jobs in flight at once; default: the number of CPUs plus one (a slot spends part
    of each job waiting on pipes -- the candidate's answers, its fork -- and one more slot
    keeps the cores busy meanwhile: ~12% more programs/s on 2 cores)."""
    grace: float = 2.0
    """Seconds past a job's timeout before the server kills its whole namespace."""
    recycle: int = 500
    """A slot (one set of namespaces, reused job after job) is replaced after this many jobs."""

    def limits(self) -> dict[str, Any]:
        import math

        return {
            "memory_mb": int(self.memory_mb),
            "cpu_seconds": int(self.cpu_seconds or math.ceil(self.timeout) + 1),
            "processes": int(self.processes),
            "open_files": int(self.open_files),
            "file_mb": int(self.file_mb),
            "tmpfs_mb": int(self.tmpfs_mb),
            "output_bytes": int(self.output_bytes),
        }


def _bwrap_argv() -> list[str]:
    # Only /usr (read-only) and the merged-/usr symlinks; no /home, /root, /work, /etc
    # secrets. /tmp is a tmpfs that each job replaces with its own.
    argv = [
        shutil.which("bwrap") or "bwrap",
        "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts",
        "--unshare-cgroup-try", "--new-session", "--clearenv",
        "--setenv", "PATH", "/usr/bin:/bin", "--setenv", "LANG", "C.UTF-8",
        "--ro-bind", "/usr", "/usr",
    ]
    for name in ("bin", "lib", "lib64", "lib32", "libx32", "sbin"):
        p = Path("/") / name
        if p.is_symlink():
            argv += ["--symlink", os.readlink(p), f"/{name}"]
        elif p.is_dir():
            argv += ["--ro-bind", str(p), f"/{name}"]
    for etc in ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives"):
        argv += ["--ro-bind-try", etc, etc]
    # The sandbox's own root and /dev are tmpfs that every slot shares: read-only, or
    # one job could leave files for the next. Each slot mounts its own /tmp and /dev/shm.
    argv += ["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--chdir", "/tmp",
             "--remount-ro", "/dev", "--remount-ro", "/", "--hostname", "sandbox", "--"]
    return argv


class Sandbox:
    """One warm fork-server and a client for it. Thread-safe; the server runs
    `config.workers` jobs at once. Use `get_sandbox()` for the shared per-process instance."""

    def __init__(self, config: SandboxConfig | None = None):
        self.config = config or SandboxConfig()
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._pending: dict[int, Future] = {}
        self._next_id = 0
        self._hello: dict[str, Any] = {}
        self._bwrap = False
        self._pid = os.getpid()
        self.slots = max(1, self.config.workers or (os.cpu_count() or 1) + 1)

    # ---------------------------------------------------------------- lifecycle
    def _start(self) -> None:
        cfg = self.config
        use_bwrap = cfg.bubblewrap
        if use_bwrap is None:
            use_bwrap = shutil.which("bwrap") is not None
        elif use_bwrap and shutil.which("bwrap") is None:
            raise SandboxError("bubblewrap was required (bubblewrap=True) but `bwrap` is not installed")
        if not os.path.exists(cfg.python):
            raise SandboxError(f"sandbox interpreter {cfg.python} not found")
        server_cfg = {"limits": cfg.limits(), "net_namespace": cfg.net_namespace, "grace": cfg.grace,
                      "slots": self.slots, "recycle": cfg.recycle}
        argv = [cfg.python, "-I", "-S", "-c", SERVER_SOURCE.read_text(), json.dumps(server_cfg)]
        if use_bwrap:
            argv = _bwrap_argv() + argv
        kwargs: dict[str, Any] = {}
        if os.geteuid() == 0:
            kwargs.update(user=cfg.uid, group=cfg.uid, extra_groups=[])
        self._proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd="/",
            env={"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"},
            start_new_session=True,
            **kwargs,
        )
        self._bwrap = use_bwrap
        hello = self._read_frame()
        if hello is None or "hello" not in hello:
            err = self._proc.stderr.read().decode(errors="replace")[-2000:] if self._proc.stderr else ""
            self._proc.kill()
            self._proc = None
            raise SandboxError(f"the sandbox server did not start: {err.strip() or 'no output'}")
        self._hello = hello["hello"]
        _announce(self._capabilities()["missing"])
        threading.Thread(target=self._reader, name="sandbox-reader", daemon=True).start()
        threading.Thread(target=self._drain_stderr, args=(self._proc,), daemon=True).start()

    def _ensure(self) -> None:
        if os.getpid() != self._pid:  # forked: the server belongs to the parent
            self._proc, self._pending, self._pid = None, {}, os.getpid()
            self._lock = threading.Lock()
            self._write_lock = threading.Lock()
        if self._proc is None or self._proc.poll() is not None:
            self._start()

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or os.getpid() != self._pid:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=self.config.timeout + self.config.grace + 5)
        except Exception:  # noqa: BLE001 - closing must not raise
            proc.kill()
            proc.wait()

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------------- transport
    def _read_frame(self) -> dict | None:
        out = self._proc.stdout
        head = out.read(4)
        if len(head) < 4:
            return None
        (n,) = struct.unpack(">I", head)
        data = out.read(n)
        if len(data) < n:
            return None
        return json.loads(data)

    def _reader(self) -> None:
        proc = self._proc
        while True:
            try:
                frame = self._read_frame()
            except Exception:  # noqa: BLE001
                frame = None
            if frame is None:
                break
            fut = self._pending.pop(frame.get("id"), None)
            if fut is not None:
                fut.set_result(frame)
        err = SandboxError(f"the sandbox server exited (status {proc.poll()})")
        for fut in list(self._pending.values()):
            if not fut.done():
                fut.set_exception(err)
        self._pending.clear()

    @staticmethod
    def _drain_stderr(proc: subprocess.Popen) -> None:
        for _ in iter(lambda: proc.stderr.read(65536), b""):
            pass

    def run(self, jobs: Sequence[dict], *, workers: int | None = None) -> list[dict]:
        """Run jobs on the server's slots (`config.workers` at once); results in the order
        of `jobs`. The whole batch is sent in one write and queued by the server, so a
        slot never waits for this process to hand it the next job. `workers` is accepted
        for symmetry with other rewards and ignored: the server's slots bound parallelism."""
        if not jobs:
            return []
        with self._lock:
            self._ensure()
            futures, payload = [], bytearray()
            for job in jobs:
                self._next_id += 1
                fut: Future = Future()
                self._pending[self._next_id] = fut
                futures.append(fut)
                frame = dict(job, id=self._next_id)
                frame.setdefault("timeout", self.config.timeout)
                data = json.dumps(frame).encode()
                payload += struct.pack(">I", len(data)) + data
        with self._write_lock:
            try:
                self._proc.stdin.write(payload)
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError) as exc:
                raise SandboxError(f"the sandbox server is gone: {exc}") from None
        return [fut.result() for fut in futures]

    # ---------------------------------------------------------------- reporting
    def capabilities(self) -> dict[str, Any]:
        """What protects a candidate here, and a plain list of what is missing."""
        with self._lock:
            self._ensure()
        return self._capabilities()

    def _capabilities(self) -> dict[str, Any]:
        h = self._hello
        ns = h.get("namespaces") is True
        caps = {
            "bubblewrap": self._bwrap,
            "readonly_filesystem": self._bwrap,
            "host_filesystem_hidden": self._bwrap,
            "user_namespace": ns,
            "pid_namespace": ns and h.get("pid1") is True,
            "candidate_pid_namespace": ns and h.get("nested_pid") is True,
            "network_namespace": ns,
            "private_tmp": h.get("private_tmp") is True,
            "private_proc": h.get("private_proc") is True,
            "capabilities_dropped": h.get("drop_capabilities") is True,
            "unprivileged_uid": h.get("uid", 0) != 0 or os.geteuid() != 0,
            "rlimits": ["address space", "cpu", "file size", "open files", "core"]
            + (["processes"] if h.get("rlimit_nproc_enforced") else []),
            "tree_kill": "pid namespace" if h.get("isolated") else "process group",
            "server_python": h.get("python"),
        }
        missing = []
        if not self._bwrap:
            missing.append("read-only filesystem and hidden host files (bubblewrap not installed: apt-get install bubblewrap)")
        if not ns:
            missing.append(f"user/PID/network namespaces ({h.get('namespaces')})")
        for key in ("private_tmp", "private_proc", "capabilities_dropped", "candidate_pid_namespace"):
            if ns and not caps[key]:
                missing.append(key.replace("_", " "))
        if not h.get("rlimit_nproc_enforced"):
            missing.append("process limit (RLIMIT_NPROC is not enforced for root)")
        if not h.get("isolated"):
            missing.append("whole-tree kill (only the process group is killed; daemonized processes may escape)")
        caps["missing"] = missing
        return caps


BWRAP_OFF = ("sandbox: bubblewrap not found — programs can read host files; "
             "install it with: apt-get install bubblewrap")
_announced = False


def _announce(missing: list[str]) -> None:
    """Once per process, when a sandbox starts with a protection off: one line on stderr
    (every command that runs code says so, not only `assay sandbox check`)."""
    global _announced
    if _announced or not missing:
        return
    _announced = True
    import sys

    others = [m for m in missing if not m.startswith("read-only filesystem")]
    line = BWRAP_OFF if len(others) < len(missing) else "sandbox: protections off"
    if others:
        line += ("; also off: " if len(others) < len(missing) else ": ") + "; ".join(others)
    print(line + " (see `assay sandbox check`)", file=sys.stderr, flush=True)


_shared: dict[SandboxConfig, Sandbox] = {}
_shared_lock = threading.Lock()


def get_sandbox(config: SandboxConfig | None = None) -> Sandbox:
    """The process-wide sandbox for `config` (started on first use, closed at exit)."""
    config = config or SandboxConfig()
    with _shared_lock:
        box = _shared.get(config)
        if box is None:
            box = _shared[config] = Sandbox(config)
        return box


@atexit.register
def _close_all() -> None:
    for box in list(_shared.values()):
        box.close()


def run(jobs: Sequence[dict], *, config: SandboxConfig | None = None, workers: int | None = None) -> list[dict]:
    """Run jobs on the shared sandbox; see the module docstring for the job format."""
    return get_sandbox(config).run(jobs, workers=workers)


def capabilities(config: SandboxConfig | None = None) -> dict[str, Any]:
    """Which protections are active on this machine and which are missing."""
    return get_sandbox(config).capabilities()


__all__ = ["Sandbox", "SandboxConfig", "SandboxError", "capabilities", "get_sandbox", "run"]
