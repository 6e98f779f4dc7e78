"""Where suite data comes from: a local JSONL (or JSON list) file, or a hub dataset id.

The built-in suites look for their files under a data root: `--data-root`, else
`$ASSAY_SHARED_DATA`, else `../shared/data` beside a source checkout (where this machine
keeps GSM8K, MATH-500, AIME24, AMC23). When the file is not there they fall back to the
suite's hub dataset (needs the network and `datasets`).

Every record error names the file and line, and a missing field names the field.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from core.errors import UserError
from core.files import iter_jsonl, shared_data_root


class TaskDataError(UserError, ValueError):
    pass


def data_root(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    return shared_data_root()


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Records of a .jsonl file (or a .json list); a bad line is an error naming file:line."""
    path = Path(path)
    if not path.exists():
        raise TaskDataError(f"{path}: no such file")
    if path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise TaskDataError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise TaskDataError(f"{path}: expected a JSON list of objects")
        for i, r in enumerate(data):
            r.setdefault("_line", i + 1)
        return data
    rows = []
    for lineno, row in iter_jsonl(path, TaskDataError):
        row["_line"] = lineno
        rows.append(row)
    return rows


def require_fields(rows: Iterable[dict], fields: Sequence[str], source: str) -> None:
    """Every row has every field; else a TaskDataError naming file:line and the field."""
    for i, row in enumerate(rows):
        missing = [f for f in fields if f not in row]
        if missing:
            line = row.get("_line", i + 1)
            raise TaskDataError(f"{source}:{line}: missing field {missing[0]!r} (needs {', '.join(fields)})")
        empty = [f for f in fields if row[f] is None or isinstance(row[f], dict)]
        if empty:
            line = row.get("_line", i + 1)
            kind = "null" if row[empty[0]] is None else "an object"
            raise TaskDataError(f"{source}:{line}: field {empty[0]!r} is {kind}")


def load_hub(dataset_id: str, split: str, config: str | None = None) -> list[dict[str, Any]]:
    """A hub dataset's split as plain dicts (online use; offline it says so)."""
    try:
        import datasets
    except ImportError:  # pragma: no cover - datasets is a dependency
        raise TaskDataError("loading a hub dataset needs the `datasets` package") from None
    try:
        ds = datasets.load_dataset(dataset_id, config, split=split)
    except Exception as exc:  # noqa: BLE001 - network, missing dataset, offline mode
        raise TaskDataError(f"cannot load hub dataset {dataset_id!r} (split {split!r}): {str(exc).splitlines()[0]}") from None
    return [dict(r, _line=i + 1) for i, r in enumerate(ds)]
