"""Atomic file writing: readers see the old file or the new one, never half of one;
JSON Lines reading that names file:line for a bad record; where this machine's shared
data sets are; and named fault points for crash tests (`fault`).

Write to a temporary name in the same directory, fsync, then `os.replace` (atomic on
POSIX), then fsync the directory so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator


def fault(point: str) -> None:
    """A named write point where tests inject a crash, deterministically.

    ``ASSAY_FAULT=index:after_vectors`` makes the process reaching that point exit at once
    with status 137 (as if SIGKILLed: no cleanup, no atexit); ``NAME=pause:BASE`` creates
    ``BASE.reached`` and waits (up to 120 s) until ``BASE.go`` exists, so a test can run
    another process at exactly that moment. Several points: comma-separated. Unset (the
    normal case), it costs one environment lookup."""
    spec = os.environ.get("ASSAY_FAULT")
    if not spec:
        return
    for item in spec.split(","):
        name, _, action = item.strip().partition("=")
        if name != point:
            continue
        if action.startswith("pause:"):
            base = action[len("pause:"):]
            Path(base + ".reached").touch()
            deadline = time.monotonic() + 120
            while not os.path.exists(base + ".go") and time.monotonic() < deadline:
                time.sleep(0.005)
        else:
            os._exit(137)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def fsync_dir(path: str | Path) -> None:
    fd = os.open(str(path), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[Any]:
    """Open a temporary sibling of `path` for writing; rename it over `path` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.fchmod(fd, 0o666 & ~_umask())  # mkstemp's 0600 would make every written file private
    binary = "b" in mode
    try:
        with os.fdopen(fd, mode, encoding=None if binary else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | Path, *, fault_point: str | None = None) -> Iterator[Path]:
    """Build a directory in a temporary sibling and swap it in whole on success.

    Readers see the old directory or the new one, never a mix (a run directory's new
    samples beside its old summary); on failure -- an exception, Ctrl-C, SIGTERM under
    the CLI -- the temporary is removed and the old directory stays as it was (put back
    if the failure came between the two renames). A kill -9 leaves only a hidden
    ``.NAME.*.tmp`` sibling, which is never read as the directory. The directory gets the
    user's umask (mkdtemp's 0700 would make it private); `fault_point` names the
    reliability tests' kill point just before the swap.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    os.chmod(tmp, 0o777 & ~_umask())
    old = None
    try:
        yield tmp
        fsync_dir(tmp)
        if fault_point:
            fault(fault_point)
        if path.exists():
            old = path.with_name(f".{path.name}.{os.getpid()}.old")
            os.replace(path, old)  # the old directory leaves in one step...
        os.replace(tmp, path)  # ...and the new one arrives in one step
        fsync_dir(path.parent)
    except BaseException:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and not path.exists():
            os.replace(old, path)
        raise
    if old is not None:
        import shutil

        shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | Path, text: str) -> None:
    with atomic_open(path, "w") as fh:
        fh.write(text)


def atomic_write_json(path: str | Path, obj: Any, indent: int | None = 2) -> None:
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def iter_jsonl(path: str | Path, error: type[Exception] = ValueError) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON Lines file (gzipped when
    it ends in .gz). A line that is not UTF-8, not JSON, or not an object raises `error`
    with ``file:line: what is wrong``; a missing file raises it too."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: no such file")
    if path.suffix == ".gz":
        import gzip

        fh = gzip.open(path, "rb")
    else:
        fh = path.open("rb")
    with fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rec = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise error(f"{path}:{lineno}: not UTF-8 ({exc.reason})") from None
            except json.JSONDecodeError as exc:
                raise error(f"{path}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from None
            if not isinstance(rec, dict):
                raise error(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
            yield lineno, rec


REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_data_root(repo: Path = REPO_ROOT) -> Path:
    """Where the shared data sets (GSM8K, MATH-500, AIME24, AMC23, Cranfield) are:
    ``$ASSAY_SHARED_DATA``, else ``shared/data`` beside this checkout, else beside the
    checkout this one was cloned from (a clone made elsewhere still finds the data its
    origin has beside it). Read in place, never copied in."""
    env = os.environ.get("ASSAY_SHARED_DATA")
    if env:
        return Path(env)
    beside = repo.parent / "shared" / "data"
    if beside.is_dir():
        return beside
    origin = _local_origin(repo)
    if origin is not None and (origin.parent / "shared" / "data").is_dir():
        return origin.parent / "shared" / "data"
    return beside  # for the error message that names where it was looked for


def _local_origin(repo: Path) -> Path | None:
    """The local directory `repo` was cloned from (its remote "origin"), if any."""
    try:
        text = (repo / ".git" / "config").read_text(encoding="utf-8")
    except OSError:
        return None
    section = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == '[remote "origin"]' and line.startswith("url"):
            url = line.split("=", 1)[1].strip()
            url = url[len("file://"):] if url.startswith("file://") else url
            return Path(url) if url.startswith("/") else None
    return None
