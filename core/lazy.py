"""Package front doors that cost nothing to import.

`import rewards` must not import sympy, and `import rag` must not import torch: each
package names its front door in a table, and the names load on first use. One helper
does it for every package, so they behave alike (the value is cached in the package,
`dir()` lists the names), and each package also imports the same names under
`typing.TYPE_CHECKING`, so editors and type checkers resolve ``rewards.score`` without
running anything.
"""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, table: Mapping[str, str | tuple[str, str]]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """(``__getattr__``, ``__dir__``) for `package`. `table` maps an exported name to the
    module holding it, or to ``(module, attribute)`` when the attribute is named otherwise."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> Any:
        where = table.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attr = (where, name) if isinstance(where, str) else where
        value = getattr(importlib.import_module(module), attr)
        namespace[name] = value  # the next lookup is an ordinary attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
