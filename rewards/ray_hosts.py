"""Reward hosts: scoring past one machine on a Ray cluster.

    rewards.score("math", completions, rows, backend="ray")                  # the cluster of RAY_ADDRESS, a running one, or a new local one
    rewards.score("code", completions, rows, backend="ray", ray_address="10.0.0.5:6379")
    assay score --rewards code --input outs.jsonl --ray [ADDRESS]

One `RewardHost` actor per node (`RayConfig.hosts_per_node`) owns what a local run owns:
assay's killable worker pool and the warm code sandbox server, sized by the one rule of
`rewards.workers` (`pool_workers`, `sandbox_slots`) from the *node's* cores. Hosts persist
across batches (their pool and sandbox stay warm). The driver cuts a batch into one chunk
per host -- a few per host for rewards that run programs in the sandbox, whose work is
outside the host's process and overlaps -- and hands them out as hosts finish; each host
runs `rewards.base.score_local` on its chunk, the very function a local `rewards.score`
runs, so per-item deadlines and kills stay inside assay, on the node where the item runs,
and the results are the local path's, row for row and reason for reason. Rows a group-wise
reward compares (its `RewardSpec.group_key`; ``length``: the completions of one prompt)
always go to the same host.

A cluster that is this machine alone (one node with CPUs, the driver's) is scored in the
driver's process by the same `score_local`, sized to the node's cores: a host there would
run on the same cores and only add a round trip per batch (`RayConfig.in_process_on_one_node`;
False sends batches to a host anyway).

Faults: a host that dies (`ray.kill`, its node lost, an OOM kill of the actor) fails its
chunks; each is retried on another live host (`RayConfig.retries` times), and rows that
still have no host get a None score with the reason ``"error: reward host ... died ..."``
(or 0.0 with ``on_error="zero"``, as any reward error) -- never a hang, never a silent 0.
The next batch starts a fresh host on that node.

What crosses the network, once per chunk: the completions and rows, pickled and cut into
pieces small enough for Ray to carry inline with the call (no object-store round trip);
back, the results as columns (scores, reasons, details per reward), pickled and
compressed. Programs, their outputs and the sandbox never leave the node.
A reward registered outside `rewards` must be importable on every node (same install, or
the same shared filesystem: the driver's PYTHONPATH additions are passed along).

Ray is imported only here, and only when ``backend="ray"`` is asked for.
"""

from __future__ import annotations

import logging
import os
import pickle
import sys
import threading
import time
import zlib
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from core.ray_cluster import init_ray
from rewards.base import RewardError, RewardResult, get, score_local, warm_local
from rewards.workers import pool_workers, sandbox_slots

log = logging.getLogger("rewards")


@dataclass
class RayConfig:
    """How the Ray backend places and feeds reward hosts (`score(..., ray=RayConfig(...))`)."""

    address: str | None = None
    """Cluster to join: "host:6379", "ray://host:10001", "auto"; None: $RAY_ADDRESS, else a
    cluster started on this machine with `ray start`, else a new local one-node Ray."""
    hosts_per_node: int = 1
    """Reward hosts started on each node (each sized to the node's cores)."""
    chunks_per_host: int = 2
    """For rewards that run programs in the sandbox, a batch is cut into about this many
    chunks per host, sent to it this many at a time: small enough to rebalance and to retry
    after a host dies, and 2 overlap a chunk's tail with the next chunk's start. Rewards
    scored in the host's own process (math's fast path) get one chunk per host: one round
    trip per batch, since a second chunk would only contend for the host's GIL."""
    retries: int = 1
    """Times a chunk whose host died is retried on another host before its rows get errors."""
    host_num_cpus: float = 0.0
    """CPUs each host reserves in Ray's accounting. 0: hosts coexist with Ray Data and other
    tasks; their worker processes are outside Ray's accounting anyway."""
    object_store_mb: int | None = None
    """Object store of a local Ray started here (None: Ray's default)."""
    in_process_on_one_node: bool = True
    """When the cluster is this machine alone (one node with CPUs: the driver's), score in
    this process with `score_local`, sized to the node's cores as its host would be: a host
    there would use the same cores and add a round trip per batch, a fixed cost as large as
    scoring a few hundred math rows (`python bench/ray.py` measures both). False: always
    through reward hosts."""


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
        self.pool_size = pool_workers(self.cores)
        self.sandbox_slots = sandbox_slots(self.cores)
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
        warm_local(names, self.cores)
        return True

    def score(self, *pieces: bytes) -> bytes:
        """One chunk (see `pack`): `score_local` on this node, sized to its cores unless the
        caller set `workers`; the results packed as columns (see `unpack_results`)."""
        pairs, texts, rows, workers, timeout, on_error, options, modules = unpack(pieces)
        self.load(modules)
        t0 = time.perf_counter()
        results, seconds = score_local(pairs, texts, rows, workers=workers, timeout=timeout, on_error=on_error,
                                       options=options, cores=self.cores)
        return pack_results(results, seconds, time.perf_counter() - t0, self.node_id)


# ---------------------------------------------------------------- what crosses the wire
# Ray carries an argument up to 100 KiB inline with the call; a larger one takes a round
# trip through the object store, which costs as much as scoring a few hundred math rows.
INLINE_BYTES = 90_000


def _dumps(obj: Any) -> bytes:
    try:
        return pickle.dumps(obj, protocol=5)
    except (pickle.PicklingError, TypeError, AttributeError):  # a lambda, a local class: by value
        from ray import cloudpickle

        return cloudpickle.dumps(obj)


def pack(obj: Any) -> list[bytes]:
    """`obj` pickled and cut into pieces Ray passes inline (`RewardHost.score(*pieces)`)."""
    data = _dumps(obj)
    return [data[i:i + INLINE_BYTES] for i in range(0, len(data), INLINE_BYTES)] or [b""]


def unpack(pieces: Sequence[bytes]) -> Any:
    return pickle.loads(b"".join(pieces))


def pack_results(results: Mapping[str, Sequence[RewardResult]], seconds: Mapping[str, float], total: float,
                 node: str) -> bytes:
    """Results as columns per reward (scores, reasons, details): a fraction of the size and
    the (de)serialisation time of a list of `RewardResult`s; compressed (reasons repeat)."""
    cols = {name: ([r.score for r in res], [r.reason for r in res], [r.details for r in res])
            for name, res in results.items()}
    return zlib.compress(_dumps((cols, dict(seconds), total, node)), 1)


def unpack_results(blob: bytes) -> tuple[dict[str, list[RewardResult]], dict[str, float], float, str]:
    cols, seconds, total, node = pickle.loads(zlib.decompress(blob))
    results = {name: [RewardResult(s, r, d) for s, r, d in zip(*c)] for name, c in cols.items()}
    return results, seconds, total, node


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
        # and the pool are thread-safe; the pool runs one batch at a time). Only sandbox
        # rewards' chunks are sent two at a time: their work is in the sandbox's processes,
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


# The cluster's node list costs a round trip to Ray's control store: it is asked for when
# a host is missing (first use, a host that died) and otherwise at most every NODES_TTL_S,
# so a node that joins gets its host within that time and a stream of batches pays nothing.
NODES_TTL_S = 5.0
_NODES: dict[str, Any] = {"job": None, "at": float("-inf"), "nodes": []}


def _alive_nodes(ray, *, refresh: bool = False) -> list[dict]:
    """The cluster's alive nodes with CPUs (cached, see NODES_TTL_S); call under _HOSTS_LOCK."""
    job = _context(ray, "get_job_id")
    if _NODES["job"] != job:  # a new connection to Ray: the old one's actors are gone
        _HOSTS.clear()
        _NODES.update(job=job, nodes=[])
    if refresh or not _NODES["nodes"] or time.monotonic() - _NODES["at"] > NODES_TTL_S:
        _NODES["nodes"] = [n for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) > 0]
        _NODES["at"] = time.monotonic()
        alive_ids = {n["NodeID"] for n in _NODES["nodes"]}
        for key in [k for k in _HOSTS if k[0] not in alive_ids]:
            _HOSTS.pop(key)
    return _NODES["nodes"]


def this_machine_alone(config: RayConfig | None = None) -> tuple[str, int] | None:
    """(node id, its cores) when the cluster is the driver's node alone and `config` lets
    such a cluster score in process (`RayConfig.in_process_on_one_node`); else None."""
    config = config or RayConfig()
    if not config.in_process_on_one_node:
        return None
    ray = init_ray(config.address, object_store_mb=config.object_store_mb)
    with _HOSTS_LOCK:
        nodes = list(_alive_nodes(ray))
    if len(nodes) == 1 and nodes[0]["NodeID"] == _context(ray, "get_node_id"):
        return nodes[0]["NodeID"], max(1, int(nodes[0]["Resources"]["CPU"]))
    return None


def _context(ray, what: str) -> str | None:
    """The driver's job or node id; None where Ray cannot say (a Ray Client connection)."""
    try:
        return getattr(ray.get_runtime_context(), what)()
    except Exception:  # noqa: BLE001 - then: no one-node shortcut, no job-change detection
        return None


def hosts(config: RayConfig | None = None, *, warm: Sequence[str] = ()) -> list[_Handle]:
    """The live reward hosts, one (or `hosts_per_node`) per alive node with CPUs, starting
    any that are missing (a node that joined, a host that died)."""
    config = config or RayConfig()
    ray = init_ray(config.address, object_store_mb=config.object_store_mb)
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    per_node = max(1, config.hosts_per_node)
    cls = _remote_class(ray)
    started = []
    with _HOSTS_LOCK:
        for key in [k for k, h in _HOSTS.items() if not h.alive]:
            _HOSTS.pop(key)
        missing = any((n["NodeID"], slot) not in _HOSTS for n in _alive_nodes(ray) for slot in range(per_node))
        for n in _alive_nodes(ray, refresh=missing):
            cores = max(1, int(n["Resources"]["CPU"]))
            for slot in range(per_node):
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
    """Indices that must stay together: the groups of the group-wise rewards (their
    `RewardSpec.group_key`; rows one of them groups together never part), else single rows."""
    keys = list(dict.fromkeys(k for k in (get(n).group_key for n, _ in pairs) if k is not None))
    if not keys:
        return [[i] for i in range(len(rows))]
    parent = list(range(len(rows)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for key in keys:
        first: dict[str, int] = {}
        for i, row in enumerate(rows):
            j = first.setdefault(key(row), i)
            parent[root(i)] = root(j)
    groups: dict[int, list[int]] = {}
    for i in range(len(rows)):
        groups.setdefault(root(i), []).append(i)
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
    over hosts, rows per node). On a cluster that is this machine alone, in this process
    (`RayConfig.in_process_on_one_node`)."""
    config = config or RayConfig()
    here = this_machine_alone(config)
    if here:
        results, seconds = score_local(pairs, texts, rows, workers=workers, timeout=timeout, on_error=on_error,
                                       options=options, cores=here[1])
        return results, seconds, {here[0]: len(texts)}
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
    per_host = max(1, config.chunks_per_host) if any(get(n).sandbox for n in names) else 1
    queue = deque((idx, 0) for idx in _chunks(_units(pairs, plain_rows), len(live) * per_host))
    inflight: dict[Any, tuple[_Handle, list[int], int]] = {}
    depth = per_host

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
                ref = h.actor.score.remote(*pack((list(pairs), [texts[i] for i in idx], [plain_rows[i] for i in idx],
                                                  workers, timeout, on_error, dict(options), modules)))
                h.inflight += 1
                inflight[ref] = (h, idx, attempt)
        if not inflight:
            break
        ready, _ = ray.wait(list(inflight), num_returns=1)
        for ref in ready:
            h, idx, attempt = inflight.pop(ref)
            h.inflight -= 1
            try:
                got, secs, _, node = unpack_results(ray.get(ref))
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
                for i, r in zip(idx, got[name]):
                    results[name][i] = r
                seconds[name] += secs.get(name, 0.0)
            per_node[node] = per_node.get(node, 0) + len(idx)
        if queue and not any(h.alive for h in live):
            while queue:
                idx, _ = queue.popleft()
                fail(idx, "error: no reward host left alive on the Ray cluster")
    with _HOSTS_LOCK:
        for key in [k for k, h in _HOSTS.items() if not h.alive]:
            _HOSTS.pop(key)
    return results, seconds, per_node  # type: ignore[return-value]


def warm_hosts(names: Sequence[str], config: RayConfig | None = None) -> None:
    """Start (and warm) the hosts now, e.g. while a trainer loads its model; on a cluster
    that is this machine alone, this process's pool and sandbox (in the background)."""
    here = this_machine_alone(config)
    if here:
        threading.Thread(target=warm_local, args=(list(names), here[1]), name="rewards-warm", daemon=True).start()
    else:
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
        _NODES.update(job=None, nodes=[])
    for h in handles:
        try:
            ray.kill(h.actor)
        except Exception:  # noqa: BLE001 - already gone
            pass


__all__ = ["RayConfig", "RewardHost", "hosts", "init_ray", "score_on_ray", "shutdown_hosts", "this_machine_alone",
           "warm_hosts"]
