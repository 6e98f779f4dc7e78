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

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence

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


_REGISTRY: dict[str, RewardSpec] = {}


def register(
    name: str, *, fields: Sequence[str] = (), heavy: bool = False, self_managed: bool = False
) -> Callable[[RewardFn], RewardFn]:
    """Decorator: make a batch reward findable by `name`."""

    def deco(fn: RewardFn) -> RewardFn:
        doc = (fn.__doc__ or "").strip().splitlines()
        _REGISTRY[name] = RewardSpec(name, fn, tuple(fields), doc[0] if doc else "", heavy, self_managed)
        return fn

    return deco


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
