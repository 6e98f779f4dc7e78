"""The reward contract every verifier in `rewards` follows.

A reward scores a batch: ``fn(completions, rows, **options) -> list[RewardResult]`` with
one result per completion, in order. ``completions`` are plain strings (chat-format
completions are flattened to the assistant text before a reward sees them); ``rows`` are
the dataset fields that go with each completion (gold ``answer``, ``test``, ...).

A result's ``score`` is a float, or None where the reward does not apply (the gold answer
cannot be parsed, the row has no tests); ``reason`` says in a few words why: what was
extracted, what failed. Rewards are registered by name with `register` and found with
`get`, so configs and the CLI can name them.

Rewards defined outside this package are found three ways: a module imported first
(`import_modules`, behind `--import MODULE` and a training config's `rewards_import`), or
an installed package's entry point in the ``assay.rewards`` group
(``mentions_source = mypkg.rewards:mentions_source``), loaded only when a name is not
otherwise known.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Protocol, Sequence

from core.errors import UserError


@dataclass(frozen=True)
class RewardResult:
    score: float | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class RewardFn(Protocol):
    def __call__(self, completions: Sequence[str], rows: Sequence[dict], **options: Any) -> list[RewardResult]: ...


class RewardError(UserError, ValueError):
    """A user-facing problem with reward input: names the row and the field."""


@dataclass(frozen=True)
class RewardSpec:
    name: str
    fn: RewardFn
    fields: tuple[str, ...]  # row fields the reward needs (checked before scoring)
    description: str
    heavy: bool = False  # worth running in a process pool (code execution, symbolic math)
    # The reward runs its own worker processes and enforces its own time limits (math's
    # symbolic path, the code sandbox): the harness calls it in-process and passes it
    # `workers=` and `timeout=` instead of shipping the batch to its own pool.
    self_managed: bool = False
    # Scored (in part) in the killable worker pool of `rewards.workers`: the pool is worth
    # starting and warming before the first batch (math's symbolic path and the rewards
    # built on it; any heavy reward the harness ships to the pool item by item).
    pool: bool = False
    # Runs candidate programs in the code sandbox: its server is worth warming, its
    # `workers` are sandbox slots (`rewards.workers.sandbox_slots`), and the work is outside
    # the calling process (batches of it may overlap).
    sandbox: bool = False
    # Group-wise rewards (``length``) compare the rows of one group (the completions of one
    # prompt): row -> group key. Rows of one group are never split across batches.
    group_key: Callable[[Mapping[str, Any]], str] | None = None


_REGISTRY: dict[str, RewardSpec] = {}


def register(
    name: str,
    *,
    fields: Sequence[str] = (),
    heavy: bool = False,
    self_managed: bool = False,
    pool: bool | None = None,
    sandbox: bool = False,
    group_key: Callable[[Mapping[str, Any]], str] | None = None,
) -> Callable[[RewardFn], RewardFn]:
    """Decorator: make a batch reward findable by `name`, with what scaling code needs to
    know about it (`RewardSpec`): a heavy reward that takes a ``workers`` parameter runs its
    own workers (self-managed); ``pool`` defaults to whether the harness ships it to the
    worker pool (heavy and not self-managed)."""

    def deco(fn: RewardFn) -> RewardFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        facts: dict[str, Any] = {"pool": pool, "sandbox": sandbox, "group_key": group_key}
        managed = self_managed or (heavy and _takes(fn, "workers"))
        if facts["pool"] is None:
            facts["pool"] = heavy and not managed
        _REGISTRY[name] = RewardSpec(name, fn, tuple(fields), doc[0] if doc else "", heavy, managed, **facts)
        return fn

    return deco


def prompt_group(row: Mapping[str, Any]) -> str:
    """The group a row belongs to for group-wise rewards: its ``group``, else its prompt
    (``prompt``, ``question``, ``problem``), else the whole row (``completion_ids`` aside)."""
    for k in ("group", "prompt", "question", "problem"):
        if k in row:
            v = row[k]
            return v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return json.dumps({k: v for k, v in row.items() if k != "completion_ids"}, sort_keys=True, default=str)


def _takes(fn: Callable, kw: str) -> bool:
    """`fn` has a parameter named `kw`."""
    import inspect

    try:
        return kw in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def get(name: str) -> RewardSpec:
    """The registered reward called `name`; an unknown name lists the known ones."""
    _load_builtin()
    if name not in _REGISTRY:
        _load_entry_point(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(set(_REGISTRY) | {ep.name for ep in _entry_points()}))
        raise RewardError(f"unknown reward {name!r}; known rewards: {known} "
                          "(a reward of your own: --import MODULE that registers it)") from None


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


ENTRY_POINT_GROUP = "assay.rewards"


def _entry_points() -> list:
    from importlib.metadata import entry_points

    return list(entry_points(group=ENTRY_POINT_GROUP))


def _load_entry_point(name: str) -> None:
    """Load the ``assay.rewards`` entry point called `name`, if one is installed: a module
    that registers rewards, or a reward function (registered under the entry point's name)."""
    import types

    for ep in _entry_points():
        if ep.name != name:
            continue
        try:
            obj = ep.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is the user's to fix: one line
            raise RewardError(f"reward {name!r}: entry point {ep.value!r} ({ENTRY_POINT_GROUP}) failed to load: "
                              f"{type(exc).__name__}: {exc}") from None
        if name not in _REGISTRY and callable(obj) and not isinstance(obj, types.ModuleType):
            register(name)(obj)
        return


def import_modules(modules: Sequence[str], *, search: Sequence[str | os.PathLike] = (), what: str = "--import") -> None:
    """Import modules that register rewards: dotted names (looked up in `search`, then the
    current directory, then sys.path) or paths of .py files. Directories added to sys.path
    are also put on PYTHONPATH, so reward worker processes find the same modules."""
    import importlib
    import sys
    from pathlib import Path

    for module in modules:
        module = str(module).strip()
        if not module:
            continue
        if module.endswith(".py") or "/" in module:
            path = Path(module).expanduser()
            if not path.is_file():
                raise RewardError(f"{what} {module}: no such file")
            dirs, target = [path.resolve().parent], path.stem
        else:
            dirs, target = [*map(Path, search), Path.cwd()], module
        for d in reversed([str(Path(d).resolve()) for d in dirs]):
            if d not in sys.path:
                sys.path.insert(0, d)
            parts = os.environ.get("PYTHONPATH", "").split(os.pathsep) if os.environ.get("PYTHONPATH") else []
            if d not in parts:
                os.environ["PYTHONPATH"] = os.pathsep.join([d, *parts])
        try:
            importlib.import_module(target)
        except ModuleNotFoundError as exc:
            if exc.name and target.startswith(exc.name):
                raise RewardError(f"{what} {module}: no module named {exc.name!r} "
                                  f"(looked in {', '.join(str(d) for d in dirs)} and sys.path)") from None
            raise RewardError(f"{what} {module}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 - the user's module failed: one line, no traceback
            raise RewardError(f"{what} {module}: importing it raised {type(exc).__name__}: {exc}") from None


def _load_builtin() -> None:
    # Importing the modules runs their @register decorators. Kept lazy so that
    # `import rewards` stays cheap.
    import importlib

    for module in ("math", "code", "format", "language", "length", "grounding", "qa"):
        try:
            importlib.import_module(f"rewards.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rewards.{module}":
                raise


def check_lengths(name: str, completions: Sequence[Any], results: Sequence[Any]) -> None:
    """A reward that returns the wrong number of results is a bug, never broadcast."""
    if len(results) != len(completions):
        raise RuntimeError(f"reward {name!r} returned {len(results)} results for {len(completions)} completions")


_FINGERPRINT: str | None = None


def code_fingerprint() -> str:
    """A fingerprint of everything whose change can change a verdict: every source file of
    `rewards` (the sandbox included), the Python that runs candidate programs, and the
    versions of the libraries the checkers lean on. Caches of scores key on it, so a fixed
    bug in a reward is never hidden by a verdict cached before the fix."""
    global _FINGERPRINT
    if _FINGERPRINT is None:
        import hashlib
        import platform
        from importlib import metadata
        from pathlib import Path

        root = Path(__file__).resolve().parent
        h = hashlib.blake2b(digest_size=12)
        for f in sorted(root.rglob("*.py")):
            h.update(str(f.relative_to(root)).encode() + b"\0" + f.read_bytes())
        h.update(platform.python_version().encode())
        for dist in ("math-verify", "latex2sympy2_extended", "sympy", "langid"):
            try:
                h.update(f"{dist}={metadata.version(dist)}".encode())
            except metadata.PackageNotFoundError:
                h.update(f"{dist}=absent".encode())
        _FINGERPRINT = h.hexdigest()
    return _FINGERPRINT


# ------------------------------------------------------------------ scoring in this process
# `score_local` is the one local scoring path: `rewards.score` calls it on the caller's
# machine and every Ray reward host calls it on its node, so both give the same results,
# row for row and reason for reason.

POOL_TIMEOUT_DEFAULT = 30.0


def score_local(
    pairs: Sequence[tuple[str, float]],
    texts: Sequence[str],
    rows: Sequence[Mapping],
    *,
    workers: int | None = None,
    timeout: float | None = None,
    on_error: str = "none",
    options: Mapping[str, Mapping[str, Any] | None] | None = None,
    cores: int | None = None,
) -> tuple[dict[str, list[RewardResult]], dict[str, float]]:
    """Every reward of `pairs` over one batch here: (results per reward, seconds per reward).

    Inputs are already checked (`rewards.compose.score` does it); `texts` are plain strings.
    Workers are sized by the one rule in `rewards.workers` for `cores` (None: this
    machine's usable cores) unless the caller gives ``workers``: the worker pool for the
    rewards scored there, sandbox slots for the ones that run programs."""
    import time

    from rewards.workers import pool_workers, sandbox_slots

    options = options or {}
    results: dict[str, list[RewardResult]] = {}
    seconds: dict[str, float] = {}
    for name, _ in pairs:
        spec, n = get(name), workers
        if n is None and spec.sandbox:
            n = sandbox_slots(cores)
        elif n is None and spec.pool:
            n = pool_workers(cores)
        t0 = time.perf_counter()
        results[name] = run_reward(name, texts, rows, workers=n, timeout=timeout, on_error=on_error,
                                   options=options.get(name))
        seconds[name] = time.perf_counter() - t0
    return results, seconds


def warm_local(names: Sequence[str], cores: int | None = None) -> None:
    """Start (and wait for) the worker pool and the sandbox server the named rewards use,
    sized by the rule `score_local` sizes them by, before the first batch needs them."""
    from rewards.workers import pool_workers, sandbox_slots, shared_pool

    specs = [get(n) for n in names]
    if any(s.pool for s in specs):
        shared_pool(pool_workers(cores)).warm()
    if any(s.sandbox for s in specs):
        from rewards import sandbox

        sandbox.get_sandbox(sandbox.SandboxConfig(workers=sandbox_slots(cores))).capabilities()


def run_reward(
    name: str,
    completions: Sequence[str],
    rows: Sequence[Mapping],
    *,
    workers: int | None = None,
    timeout: float | None = None,
    on_error: str = "none",
    options: Mapping[str, Any] | None = None,
) -> list[RewardResult]:
    """One reward over a batch, never raising for the reward's own failures.

    Self-managed rewards get ``workers=`` / ``timeout=`` and run their own killable
    workers; other heavy rewards are shipped item by item to the worker pool, where
    ``timeout`` is enforced per item by killing the worker; light ones run in-process."""
    import logging

    spec = get(name)
    opts = dict(options or {})
    _check_options(name, spec.fn, opts)
    try:
        if spec.self_managed:
            if workers is not None and _accepts(spec.fn, "workers"):
                opts.setdefault("workers", workers)
            if timeout is not None and _accepts(spec.fn, "timeout"):
                opts.setdefault("timeout", timeout)
            raw = spec.fn(list(completions), [dict(r) for r in rows], **opts)
        elif spec.heavy:
            raw = _run_in_pool(name, completions, rows, opts, workers, timeout, on_error)
        else:
            raw = spec.fn(list(completions), [dict(r) for r in rows], **opts)
        raw = list(raw)
        check_lengths(name, completions, raw)
        return [_coerce(r) for r in raw]
    except RewardError:
        raise  # the caller's mistake (bad option, bad field value): surface it
    except Exception as exc:  # noqa: BLE001 - a reward bug must not crash a training run
        log = logging.getLogger("rewards")
        reason = f"error: {type(exc).__name__}: {exc}"[:300]
        log.warning("reward %r failed on a batch of %d: %s", name, len(completions), reason,
                    exc_info=log.isEnabledFor(logging.DEBUG))
        return _error_results(len(completions), reason, on_error)


def _accepts(fn: Callable, kw: str) -> bool:
    import inspect

    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.kind is p.VAR_KEYWORD or p.name == kw for p in params)


def _check_options(name: str, fn: Callable, opts: Mapping[str, Any]) -> None:
    """An option the reward does not take is a typo: say so instead of ignoring it.

    Rewards that forward ``**options`` elsewhere validate them themselves (math does);
    a catch-all spelled ``**_`` means "ignored", so only named parameters count there."""
    import inspect

    if not opts:
        return
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD and p.name != "_" for p in params.values()):
        return
    named = [p for p, v in params.items() if v.kind in (v.KEYWORD_ONLY, v.POSITIONAL_OR_KEYWORD)][2:]
    unknown = sorted(set(opts) - set(named))
    if unknown:
        raise RewardError(f"reward {name!r} has no option {', '.join(map(repr, unknown))}; options: {', '.join(named) or '(none)'}")


def _error_results(n: int, reason: str, on_error: str) -> list[RewardResult]:
    score = 0.0 if on_error == "zero" else None
    return [RewardResult(score, reason) for _ in range(n)]


def _coerce(res: Any) -> RewardResult:
    if isinstance(res, RewardResult):
        return res
    if res is None or isinstance(res, (int, float)):
        return RewardResult(None if res is None else float(res), "")
    raise TypeError(f"a reward returned {type(res).__name__}, not RewardResult")


def _run_in_pool(name, completions, rows, opts, workers, timeout, on_error) -> list[RewardResult]:
    import logging

    from rewards.workers import shared_pool

    module = getattr(get(name).fn, "__module__", None)
    items = [{"name": name, "module": module, "completion": c, "row": dict(r), "options": opts}
             for c, r in zip(completions, rows)]
    limit = timeout if timeout is not None else POOL_TIMEOUT_DEFAULT
    outcomes = shared_pool(workers).run("rewards.base:pool_job", items, timeout=limit)
    out = []
    for o in outcomes:
        if o.ok:
            score, reason, details = o.value
            out.append(RewardResult(score, reason, details or {}))
        else:
            reason = f"timeout: over {limit:g}s" if o.error.startswith("timeout") else f"error: {o.error}"
            logging.getLogger("rewards").warning("reward %r: %s", name, reason)
            out.append(_error_results(1, reason, on_error)[0])
    return out


def pool_job(item: dict) -> list:
    """Inside a worker: one item of a heavy reward."""
    if item.get("module"):
        import importlib

        importlib.import_module(item["module"])  # registers rewards defined outside `rewards`
    res = get(item["name"]).fn([item["completion"]], [item["row"]], **item["options"])
    check_lengths(item["name"], [item["completion"]], res)
    r = _coerce(res[0])
    return [r.score, r.reason, r.details]
