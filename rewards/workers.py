"""Worker processes with caller-enforced time limits.

Why not `signal.alarm` (Math-Verify's way) or a thread: an alarm only works on the main
thread, and TRL/verl call rewards from other threads, where Math-Verify's timeout then
silently zeroes every reward; a thread stuck in sympy cannot be stopped at all. A process
can always be killed, from any thread. So slow work (symbolic math, any `heavy` reward)
runs in small worker subprocesses (`python -m rewards.workers`) that speak JSON lines over
their stdin/stdout: no pickle, no re-import of the caller's `__main__`, no fork of a
process that holds torch threads.

The caller sends each worker a few items ahead (pipelining hides the round trip) and
watches the item at the head of each worker's queue: if it has run longer than the time
limit, the worker is killed, that item gets a "timeout" result, the items queued behind it
are handed to other workers, and a fresh worker replaces the dead one. A worker that dies
(segfault, OOM kill) is handled the same way with an "error" result.

A task names a *job*: a "module:function" that takes one item (a JSON value) and returns
a JSON value. Jobs run inside the worker with everything caught, so one bad item never
takes down the batch.
"""

from __future__ import annotations

import atexit
import importlib
import json
import os
import select
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

# How many items a worker holds at once. More hides IPC latency; fewer means less work is
# redone elsewhere after a kill. Items are ~1 ms of sympy each, a round trip ~50 us.
PIPELINE_DEPTH = 8
# Starting a worker imports sympy/math-verify (~1 s). A worker says "ready" once it has;
# until then it has this long to start (its items' clocks have not started), after that
# every item has exactly its own timeout -- start-up is never charged to an item, and a
# replaced worker's start-up is never added to the next item's deadline.
STARTUP_GRACE_S = 60.0
READY = b"ready"


@dataclass
class TaskOutcome:
    """What happened to one item: ``ok`` with the job's return value, or why not."""

    ok: bool
    value: Any = None
    error: str = ""  # "timeout after 5s", "worker died (exit -11)", "ValueError: ..."


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


# The one sizing rule, for this machine (`cores` None) and for a Ray reward host (the
# cores its node declares): the caller's `workers`, when given, wins over both.
def pool_workers(cores: int | None = None) -> int:
    """Worker processes of the pool: one per core, at most 8."""
    return max(1, min(int(cores or usable_cores()), 8))


def sandbox_slots(cores: int | None = None) -> int:
    """Code sandbox slots (programs at once): the cores plus one (a slot spends part of each
    job waiting on pipes; one more keeps the cores busy meanwhile)."""
    return max(1, int(cores or usable_cores())) + 1


def default_workers() -> int:
    return pool_workers()


@dataclass
class _Worker:
    proc: subprocess.Popen
    inflight: deque = field(default_factory=deque)  # task indexes, oldest first
    head_since: float = 0.0  # when the head item started (approximately: last reply or send)
    started: float = 0.0
    ready: bool = False  # has it finished starting (imports done): item clocks run from then
    buf: bytes = b""


class WorkerPool:
    """A fixed number of killable worker subprocesses. Thread-safe (one batch at a time)."""

    def __init__(self, workers: int | None = None):
        self.size = workers or default_workers()
        self._workers: list[_Worker] = []
        self._lock = threading.Lock()
        self.restarts = 0  # workers replaced after a timeout or crash (for reports)

    # -- process management ---------------------------------------------------------
    def _spawn(self) -> _Worker:
        env = dict(os.environ)
        # The worker must import this very `rewards` package, wherever it lives.
        root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        env.setdefault("OMP_NUM_THREADS", "1")
        proc = subprocess.Popen(
            [sys.executable, "-u", "-m", "rewards.workers"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
            close_fds=True,
        )
        os.set_blocking(proc.stdout.fileno(), False)
        now = time.monotonic()
        return _Worker(proc=proc, started=now, head_since=now)

    def _ensure(self) -> None:
        self._workers = [w for w in self._workers if w.proc.poll() is None]
        while len(self._workers) < self.size:
            self._workers.append(self._spawn())

    @staticmethod
    def _kill(w: _Worker) -> None:
        try:
            w.proc.kill()
        except ProcessLookupError:
            pass
        w.proc.wait()
        for stream in (w.proc.stdin, w.proc.stdout):
            try:
                stream.close()
            except Exception:  # noqa: BLE001 - closing a dead pipe
                pass

    def close(self) -> None:
        # At exit a daemon thread may still hold the lock mid-batch: kill anyway.
        got = self._lock.acquire(timeout=2.0)
        try:
            for w in list(self._workers):
                self._kill(w)
            self._workers = []
        finally:
            if got:
                self._lock.release()

    def warm_in_background(self) -> None:
        """Start and warm the workers on a daemon thread (overlaps with model loading)."""
        threading.Thread(target=self.warm, name="rewards-pool-warm", daemon=True).start()

    def warm(self) -> None:
        """Start the workers and wait until each has imported its jobs' modules."""
        self.broadcast("rewards.workers:ping")

    def broadcast(self, job: str) -> list[TaskOutcome]:
        """Run ``job(None)`` once on every worker (warm-up, cache clearing)."""
        return self.run(job, [None] * self.size, timeout=STARTUP_GRACE_S, depth=1)

    # -- running a batch --------------------------------------------------------------
    def run(
        self, job: str, items: Sequence[Any], *, timeout: float | None = None, depth: int = PIPELINE_DEPTH
    ) -> list[TaskOutcome]:
        """Run ``job(item)`` for every item across the workers; one outcome per item, in order.

        ``timeout`` (seconds, per item, None = no limit) is enforced here, by killing.
        """
        outcomes: list[TaskOutcome | None] = [None] * len(items)
        if not items:
            return []
        payloads = [json.dumps({"job": job, "item": it}, default=str).encode() + b"\n" for it in items]
        with self._lock:
            self._ensure()
            pending = deque(range(len(items)))
            remaining = len(items)
            while remaining:
                # Feed every worker up to the pipeline depth.
                for w in self._workers:
                    while pending and len(w.inflight) < depth:
                        i = pending.popleft()
                        if not w.inflight and w.ready:
                            w.head_since = time.monotonic()
                        try:
                            w.proc.stdin.write(payloads[i])
                        except (BrokenPipeError, OSError):
                            pending.appendleft(i)
                            break
                        w.inflight.append(i)
                    try:
                        w.proc.stdin.flush()
                    except (BrokenPipeError, OSError):
                        pass
                busy = [w for w in self._workers if w.inflight]
                now = time.monotonic()
                wait_s = 1.0
                if timeout is not None:
                    deadlines = [self._deadline(w, timeout) for w in busy]
                    wait_s = max(0.0, min(deadlines, default=now + 1.0) - now)
                ready, _, _ = select.select([w.proc.stdout for w in busy], [], [], min(wait_s, 1.0))
                ready_ids = {r.fileno() for r in ready}
                for w in busy:
                    if w.proc.stdout.fileno() in ready_ids:
                        remaining -= self._drain(w, outcomes)
                # Kill whoever is over time or dead; requeue what it still held.
                now = time.monotonic()
                replaced = False
                for w in list(self._workers):
                    dead = w.proc.poll() is not None
                    late = timeout is not None and w.inflight and now > self._deadline(w, timeout)
                    if not (dead or late):
                        continue
                    if dead:
                        remaining -= self._drain(w, outcomes)  # it may have answered before dying
                    if w.inflight:
                        head = w.inflight.popleft()
                        if late and not dead and not w.ready:
                            msg = f"worker start-up over {STARTUP_GRACE_S:g}s"
                        elif late and not dead:
                            msg = f"timeout after {timeout:g}s"
                        else:
                            msg = f"worker died (exit {w.proc.returncode})"
                        outcomes[head] = TaskOutcome(False, error=msg)
                        remaining -= 1
                        pending.extendleft(reversed(w.inflight))
                        w.inflight.clear()
                    self._kill(w)
                    self._workers.remove(w)
                    self.restarts += 1
                    replaced = True
                if replaced:
                    self._ensure()
        return outcomes  # type: ignore[return-value]

    @staticmethod
    def _deadline(w: _Worker, timeout: float) -> float:
        if not w.ready:
            return w.started + STARTUP_GRACE_S  # starting: no item's clock runs yet
        return w.head_since + timeout

    @staticmethod
    def _drain(w: _Worker, outcomes: list) -> int:
        """Read every complete reply the worker has written; return how many items finished."""
        done = 0
        while True:
            try:
                chunk = os.read(w.proc.stdout.fileno(), 1 << 16)
            except BlockingIOError:
                break
            except OSError:
                break
            if not chunk:
                break
            w.buf += chunk
        while b"\n" in w.buf:
            line, w.buf = w.buf.split(b"\n", 1)
            if line == READY:
                w.ready = True
                w.head_since = time.monotonic()  # the head item's clock starts now
                continue
            if not w.inflight:
                continue  # a reply we no longer wait for
            i = w.inflight.popleft()
            reply = json.loads(line)
            if "value" in reply:
                outcomes[i] = TaskOutcome(True, value=reply["value"])
            else:
                outcomes[i] = TaskOutcome(False, error=reply.get("error", "unknown error"))
            w.head_since = time.monotonic()
            done += 1
        return done


_POOLS: dict[int, WorkerPool] = {}
_POOLS_LOCK = threading.Lock()


def shared_pool(workers: int | None = None) -> WorkerPool:
    """The process-wide pool of that size (started lazily, stopped at exit)."""
    size = workers or default_workers()
    with _POOLS_LOCK:
        pool = _POOLS.get(size)
        if pool is None:
            pool = _POOLS[size] = WorkerPool(size)
        return pool


@atexit.register
def _close_all() -> None:
    for pool in list(_POOLS.values()):
        pool.close()


# -- inside the worker -------------------------------------------------------------------
def ping(_item: Any) -> str:
    # Importing the math path and running it once on every kind of answer makes `warm()`
    # pay sympy's and the LaTeX parser's first-use costs up front (several seconds).
    symbolic = importlib.import_module("rewards.math_symbolic")
    for gold, pred in (("\\frac{\\sqrt{3}}{2}", "\\frac{1}{2}\\sqrt{3}"), ("(1,2]", "(1,2)"), ("x^2+1", "1+x^2"),
                       ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
                       ("y=2x", "y=x+x"), ("\\{1,2\\}", "\\{2,1\\}")):
        symbolic.check({"gold": gold, "pred": pred})
    symbolic.clear_cache()
    return "pong"


def _resolve(job: str, cache: dict) -> Any:
    fn = cache.get(job)
    if fn is None:
        module, _, name = job.partition(":")
        fn = cache[job] = getattr(importlib.import_module(module), name)
    return fn


def _serve() -> None:
    jobs: dict[str, Any] = {}
    out = sys.stdout.buffer
    # The slow part of starting (sympy, math-verify) happens before "ready", on the
    # start-up budget, not on the first item's timeout.
    try:
        importlib.import_module("rewards.math_symbolic")
    except Exception:  # noqa: BLE001 - a job that needs it will say why
        pass
    out.write(READY + b"\n")
    out.flush()
    for line in sys.stdin.buffer:
        try:
            task = json.loads(line)
            value = _resolve(task["job"], jobs)(task["item"])
            reply = {"value": value}
        except Exception as exc:  # noqa: BLE001 - reported to the caller as this item's error
            reply = {"error": f"{type(exc).__name__}: {exc}"[:500]}
        out.write(json.dumps(reply, default=str).encode() + b"\n")
        out.flush()


if __name__ == "__main__":
    _serve()
