"""The reward contract every verifier in `rewards` follows.

A reward scores a batch: ``fn(completions, rows, **options) -> list[RewardResult]`` with
one result per completion, in order. ``completions`` are plain strings (chat-format
completions are flattened to the assistant text before a reward sees them); ``rows`` are
the dataset fields that go with each completion (gold ``answer``, ``test``, ...).

A result's ``score`` is a float, or None where the reward does not apply (the gold answer
cannot be parsed, the row has no tests); ``reason`` says in a few words why: what was
extracted, what failed. Rewards are registered by name with `register` and found with
`get`, so configs and the CLI can name them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Protocol, Sequence


@dataclass(frozen=True)
class RewardResult:
    score: float | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)


class RewardFn(Protocol):
    def __call__(self, completions: Sequence[str], rows: Sequence[dict], **options: Any) -> list[RewardResult]: ...


class RewardError(ValueError):
    """A user-facing problem with reward input: names the row and the field."""

    user_error = True


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
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise RewardError(f"unknown reward {name!r}; known rewards: {known}") from None


def names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def _load_builtin() -> None:
    # Importing the modules runs their @register decorators. Kept lazy so that
    # `import rewards` stays cheap.
    import importlib

    for module in ("math", "code", "format", "language", "length", "grounding"):
        try:
            importlib.import_module(f"rewards.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"rewards.{module}":
                raise


def check_lengths(name: str, completions: Sequence[Any], results: Sequence[Any]) -> None:
    """A reward that returns the wrong number of results is a bug, never broadcast."""
    if len(results) != len(completions):
        raise RuntimeError(f"reward {name!r} returned {len(results)} results for {len(completions)} completions")
