"""Reward hosts: scoring past one machine on a Ray cluster.

    rewards.score("math", completions, rows, backend="ray")                  # the cluster of RAY_ADDRESS, a running one, or a new local one
    rewards.score("code", completions, rows, backend="ray", ray_address="10.0.0.5:6379")
    assay score --rewards code --input outs.jsonl --ray [ADDRESS]

One `RewardHost` actor per node (`RayConfig.hosts_per_node`) owns what a local run owns:
assay's killable worker pool (`rewards.workers`, sized like the local default from the
*node's* cores: one per core, at most 8) and the warm code sandbox server (the node's cores
plus one slots). The driver cuts a batch into a few chunks per host and hands them out as
hosts finish; each host runs `rewards.score` on its chunk exactly as a local call would, so
per-item deadlines and kills stay inside assay, on the node where the item runs, and the
results are the local path's, row for row and reason for reason. Rows a group-wise reward
compares (``length``: the completions of one prompt) always go to the same host.

Faults: a host that dies (`ray.kill`, its node lost, an OOM kill of the actor) fails its
chunks; each is retried on another live host (`RayConfig.retries` times), and rows that
still have no host get a None score with the reason ``"error: reward host ... died ..."``
(or 0.0 with ``on_error="zero"``, as any reward error) -- never a hang, never a silent 0.
The next batch starts a fresh host on that node.

What crosses the network: the completions and rows of each chunk (pickled by Ray) one way,
`RewardResult`s the other. Programs, their outputs and the sandbox never leave the node.
A reward registered outside `rewards` must be importable on every node (same install, or
the same shared filesystem: the driver's PYTHONPATH additions are passed along).

Ray is imported only here, and only when ``backend="ray"`` is asked for.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from core.ray_cluster import init_ray
from rewards.base import RewardError, RewardResult, get

log = logging.getLogger("rewards")

# Rewards whose result for a row depends on other rows of the batch, and the key of the
# group they compare within: such rows are never split across hosts.
GROUPWISE = {"length": ("rewards.length", "_group_key")}


@dataclass
class RayConfig:
    """How the Ray backend places and feeds reward hosts (`score(..., ray=RayConfig(...))`)."""

    address: str | None = None
    """Cluster to join: "host:6379", "ray://host:10001", "auto"; None: $RAY_ADDRESS, else a
    cluster started on this machine with `ray start`, else a new local one-node Ray."""
    hosts_per_node: int = 1
    """Reward hosts started on each node (each sized to the node's cores)."""
    chunks_per_host: int = 2
    """A batch is cut into about this many chunks per host: small enough to rebalance and to
    retry after a host dies, large enough to keep each host's pool busy (2 overlap a chunk's
    tail with the next chunk's start)."""
    retries: int = 1
    """Times a chunk whose host died is retried on another host before its rows get errors."""
    host_num_cpus: float = 0.0
    """CPUs each host reserves in Ray's accounting. 0: hosts coexist with Ray Data and other
    tasks; their worker processes are outside Ray's accounting anyway."""
    object_store_mb: int | None = None
    """Object store of a local Ray started here (None: Ray's default)."""


class RewardHost:
    """One node's reward runner (a Ray actor; see the module docstring)."""

    def __init__(self, cores: int, python_path: Sequence[str] = (), modules: Sequence[str] = ()):
        for d in reversed(list(python_path)):
            if d not in sys.path:
                sys.path.insert(0, d)
        if python_path:  # the host's own worker processes import the same modules
            parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
            os.environ["PYTHONPATH"] = os.pathsep.join([*[d for d in python_path if d not in parts], *parts])
        self.cores = max(1, int(cores))
        self.pool_size = max(1, min(self.cores, 8))  # rewards.workers.default_workers, for this node
        self.sandbox_slots = self.cores + 1  # rewards.sandbox.SandboxConfig.workers' default, for this node
        self._modules: set[str] = set()
        self.load(modules)
        import socket

        import ray

        self.node_id = ray.get_runtime_context().get_node_id()
        self.hostname = socket.gethostname()
        import gc

        gc.freeze()  # Ray's own objects out of every GC pass (scoring allocates many small ones)

    def load(self, modules: Sequence[str]) -> None:
        import importlib

        for m in modules:
            if m and m not in self._modules:
                importlib.import_module(m)
                self._modules.add(m)

    def info(self) -> dict[str, Any]:
        return {"node": self.node_id, "host": self.hostname, "cores": self.cores, "pid": os.getpid(),
                "pool": self.pool_size, "sandbox_slots": self.sandbox_slots}

    def warm(self, names: Sequence[str]) -> bool:
        """Start the worker pool and the sandbox server before the first batch needs them."""
        from rewards.compose import MATH_BASED

        if any(n in MATH_BASED for n in names):
            from rewards.workers import shared_pool

            shared_pool(self.pool_size).warm()
        if "code" in names:
            from rewards import sandbox

            sandbox.get_sandbox(sandbox.SandboxConfig(workers=self.sandbox_slots)).capabilities()
        return True

    def score(self, pairs, texts, rows, workers, timeout, on_error, options, modules=()) -> dict[str, Any]:
        """`rewards.score` on this node, sized to its cores unless the caller set `workers`."""
        from rewards.compose import score

        self.load(modules)
        options = {k: dict(v) for k, v in (options or {}).items()}
        names = [n for n, _ in pairs]
        if workers is None and "code" in names and not {"workers", "sandbox"} & set(options.get("code", {})):
            options.setdefault("code", {})["workers"] = self.sandbox_slots
        t0 = time.perf_counter()
        report = score(pairs, texts, rows, workers=workers or self.pool_size, timeout=timeout, on_error=on_error,
                       options=options or None)
        return {"results": report.results, "reward_seconds": report.reward_seconds,
                "seconds": time.perf_counter() - t0, "node": self.node_id}


# ---------------------------------------------------------------- the driver's side
@dataclass
class _Handle:
    actor: Any
    node: str
    cores: int
    inflight: int = 0
    alive: bool = True


_HOSTS: dict[tuple[str, int], _Handle] = {}
_HOSTS_LOCK = threading.Lock()
_REMOTE: Any = None


def _remote_class(ray):
    global _REMOTE
    if _REMOTE is None:
        # Two calls at once: one chunk's tail overlaps the next one's start (the sandbox
        # and the pool are thread-safe; the pool runs one batch at a time). Only the code
        # reward's chunks are sent two at a time: its work is in the sandbox's processes,
        # while in-process work (math's fast path) would only contend for the GIL.
        _REMOTE = ray.remote(max_concurrency=2)(RewardHost)
    return _REMOTE


def _extra_path() -> list[str]:
    return [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]


def _reward_modules(names: Sequence[str]) -> list[str]:
    """Modules outside `rewards` that define the named rewards (the hosts import them)."""
    out = []
    for n in names:
        mod = getattr(get(n).fn, "__module__", "") or ""
        if mod and not mod.startswith("rewards.") and mod != "__main__" and mod not in out:
            out.append(mod)
    return out


def hosts(config: RayConfig | None = None, *, warm: Sequence[str] = ()) -> list[_Handle]:
    """The live reward hosts, one (or `hosts_per_node`) per alive node with CPUs, starting
    any that are missing (a node that joined, a host that died)."""
    config = config or RayConfig()
    ray = init_ray(config.address, object_store_mb=config.object_store_mb)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
    alive_ids = {n["NodeID"] for n in nodes}
    cls = _remote_class(ray)
    started = []
    with _HOSTS_LOCK:
        for key in [k for k, h in _HOSTS.items() if not h.alive or k[0] not in alive_ids]:
            _HOSTS.pop(key)
        for n in nodes:
            cores = max(1, int(n["Resources"]["CPU"]))
            for slot in range(max(1, config.hosts_per_node)):
                key = (n["NodeID"], slot)
                if key in _HOSTS:
                    continue
                actor = cls.options(
                    num_cpus=config.host_num_cpus,
                    scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=False),
                ).remote(cores, _extra_path(), _reward_modules(warm) if warm else [])
                _HOSTS[key] = _Handle(actor, n["NodeID"], cores)
                started.append(_HOSTS[key])
        live = [h for h in _HOSTS.values() if h.alive]
    if warm:
        for h in started:
            h.actor.warm.remote(list(warm))  # fire and forget: the host's queue orders it first
    if not live:
        raise RewardError("the Ray cluster has no alive node with CPUs to host rewards")
    return live


def _units(pairs, rows) -> list[list[int]]:
    """Indices that must stay together: whole groups for group-wise rewards, else single rows."""
    keyed = [GROUPWISE[n] for n, _ in pairs if n in GROUPWISE]
    if not keyed:
        return [[i] for i in range(len(rows))]
    import importlib

    module, fn = keyed[0]
    key = getattr(importlib.import_module(module), fn)
    groups: dict[str, list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(key(row), []).append(i)
    return list(groups.values())


def _chunks(units: list[list[int]], n_chunks: int) -> list[list[int]]:
    total = sum(len(u) for u in units)
    size = max(1, -(-total // max(1, n_chunks)))
    out, cur = [], []
    for u in units:
        cur.extend(u)
        if len(cur) >= size:
            out.append(cur)
            cur = []
    if cur:
        out.append(cur)
    return out


def _dead_errors() -> tuple[type, ...]:
    from ray import exceptions as rex

    kinds = [rex.RayActorError, rex.WorkerCrashedError, rex.NodeDiedError if hasattr(rex, "NodeDiedError") else None,
             getattr(rex, "ActorUnavailableError", None), rex.ObjectLostError]
    return tuple(k for k in kinds if k is not None)


def score_on_ray(
    pairs: list[tuple[str, float]],
    texts: list[str],
    rows: Sequence[Mapping],
    *,
    workers: int | None,
    timeout: float | None,
    on_error: str,
    options: Mapping[str, Mapping[str, Any]],
    config: RayConfig | None = None,
) -> tuple[dict[str, list[RewardResult]], dict[str, float], dict[str, int]]:
    """Score on the cluster's reward hosts: (results per reward, seconds per reward summed
    over hosts, rows per node)."""
    config = config or RayConfig()
    names = [n for n, _ in pairs]
    live = hosts(config, warm=names)
    ray = init_ray(config.address)
    dead_kinds = _dead_errors()
    from ray.exceptions import RayTaskError

    n = len(texts)
    results: dict[str, list[RewardResult | None]] = {name: [None] * n for name in names}
    seconds: dict[str, float] = {name: 0.0 for name in names}
    per_node: dict[str, int] = {}
    plain_rows = [dict(r) for r in rows]
    modules = _reward_modules(names)
    queue = deque((idx, 0) for idx in _chunks(_units(pairs, plain_rows), len(live) * max(1, config.chunks_per_host)))
    inflight: dict[Any, tuple[_Handle, list[int], int]] = {}
    depth = max(1, config.chunks_per_host) if "code" in names else 1

    def fail(idx: list[int], reason: str) -> None:
        bad = RewardResult(0.0 if on_error == "zero" else None, reason)
        for name in names:
            for i in idx:
                results[name][i] = bad
        log.warning("%d rows: %s", len(idx), reason)

    while queue or inflight:
        for h in [h for h in live if h.alive]:
            while queue and h.inflight < depth:
                idx, attempt = queue.popleft()
                ref = h.actor.score.remote(pairs, [texts[i] for i in idx], [plain_rows[i] for i in idx], workers,
                                           timeout, on_error, dict(options), modules)
                h.inflight += 1
                inflight[ref] = (h, idx, attempt)
        if not inflight:
            break
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            h, idx, attempt = inflight.pop(ref)
            h.inflight -= 1
            try:
                out = ray.get(ref)
            except dead_kinds as exc:
                h.alive = False
                what = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
                reason = f"error: reward host on node {h.node[:8]} died ({type(exc).__name__}: {what})"[:300]
                if attempt < config.retries:
                    try:  # the survivors, and a fresh host where the node lives on
                        live = hosts(config, warm=names)
                    except RewardError:
                        live = []
                if attempt < config.retries and any(o.alive for o in live):
                    log.warning("%s; retrying %d rows on another host", reason, len(idx))
                    queue.append((idx, attempt + 1))
                else:
                    fail(idx, reason)
                continue
            except RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, RewardError):
                    raise RewardError(str(cause)) from None  # the caller's mistake, as locally
                fail(idx, f"error: reward host failed: {type(cause or exc).__name__}: {cause or exc}"[:300])
                continue
            for name in names:
                for i, r in zip(idx, out["results"][name]):
                    results[name][i] = r
                seconds[name] += out["reward_seconds"].get(name, 0.0)
            per_node[out["node"]] = per_node.get(out["node"], 0) + len(idx)
        if queue and not any(h.alive for h in live):
            while queue:
                idx, _ = queue.popleft()
                fail(idx, "error: no reward host left alive on the Ray cluster")
    with _HOSTS_LOCK:
        for key in [k for k, h in _HOSTS.items() if not h.alive]:
            _HOSTS.pop(key)
    return results, seconds, per_node  # type: ignore[return-value]


def warm_hosts(names: Sequence[str], config: RayConfig | None = None) -> None:
    """Start (and warm) the hosts now, e.g. while a trainer loads its model."""
    hosts(config, warm=list(names))


def shutdown_hosts() -> None:
    """Stop this process's reward hosts (the next Ray score starts new ones)."""
    try:
        import ray
    except ImportError:
        return
    with _HOSTS_LOCK:
        handles = list(_HOSTS.values())
        _HOSTS.clear()
    for h in handles:
        try:
            ray.kill(h.actor)
        except Exception:  # noqa: BLE001 - already gone
            pass


__all__ = ["GROUPWISE", "RayConfig", "RewardHost", "hosts", "init_ray", "score_on_ray", "shutdown_hosts", "warm_hosts"]
