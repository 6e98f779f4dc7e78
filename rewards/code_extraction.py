"""Finding the program in a chat model's completion, as a careful reader would.

Completions rarely arrive as a clean function body. They come as prose around a
```python fence, several fences (a helper in one, the function in another, then a block
of tests), fences labelled ``py``/``python3``/``Python`` or not at all, code with no fence
and prose before and after, the prompt's signature repeated or left out, and a tail of
example usage: ``if __name__ == "__main__":``, ``print(f(...))``, asserts with the model's
own (sometimes wrong) expectations, ``unittest.main()``. Run as written, that tail turns a
right function into a failure; so does taking the *last* fence when it is the test block.

`extract_program` works in four steps; the approach follows evalplus's sanitizer (which
uses tree-sitter: the longest span of lines that parses, then a dependency walk over the
top-level definitions from the entry point). This module is written with `ast` and differs
on purpose where noted.

1. **Reasoning is cut**: the text after the last ``</think>`` is the answer (DeepSeek-R1
   style); an unclosed ``<think>`` is a truncated answer and everything from it is dropped.
2. **Units**: every fenced block labelled as Python or not labelled (other languages are
   skipped) -- or, with no fence, the whole text. A unit that does not compile is cut into
   the longest spans of lines that do, starting at lines that look like code (evalplus's
   longest-parsable-span idea, but searched only from code-looking lines and only to
   ends before an unindented line, so it stays cheap on long texts). A unit whose first
   line is indented and that compiles after the prompt is a *continuation* of the prompt
   (HumanEval's raw completions, or a body-only answer).
3. **Choice**: the last unit that defines an entry point (the HumanEval entry point, the
   functions an MBPP assert list calls), so a trailing test block never wins. Names the
   chosen unit uses but does not bind (a helper in an earlier fence, an import in another)
   are taken from the other units, with what they in turn need: the entry point split
   over several blocks is put back together. With no entry point to look for (stdin/stdout
   programs, whose top-level code *is* the program), the choice is the old one: the last
   Python fence, else the last bare fence, else the whole text.
4. **Sanitizing** drops only what is recognisably test or demo code: ``if __name__ ==
   "__main__":`` blocks, top-level asserts, top-level expression statements that call
   something (``print(...)``, ``f(...)``, ``doctest.testmod()``; ``sys.setrecursionlimit``
   is kept, and so is a call that ends the process -- ``sys.exit()``, ``os._exit()`` at the
   top level are the program's own doing, not a demo, and fail it as written), statements that use one of the program's own functions or ``print``/``input``
   but bind or fill nothing the entry point needs (``result = f(3)``; ``for t in tests:
   print(..)``; a table filled in place -- ``T[i] = ..``, ``P.extend(..)`` -- stays),
   definitions the entry point does not reach (``def test_f``, ``class TestF``, ``main``),
   and imports nothing kept uses (``import pytest``, ``from solution import f``). Other
   top-level code stays and runs as written -- unlike evalplus, which keeps only
   definitions, a table filled by a loop at module level survives here. Duplicate
   definitions are all kept, so the last one wins as it would in Python (evalplus keeps
   the first). Nothing in the prompt's own lines is ever dropped.

A completion that is already clean comes through unchanged, byte for byte: dropping is
done by deleting whole lines of the dropped statements, never by re-printing the code.
Every extraction says what it did in `Extraction.method`, e.g. ``fenced block 2 of 3
(defines has_close_elements); dropped: if __name__ block, 2 top-level calls``.
"""

from __future__ import annotations

import ast
import builtins
import functools
import re
import symtable
import textwrap
from dataclasses import dataclass, field
from typing import Iterable, Sequence

_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+\-.{}]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
PY_TAGS = {"python", "py", "python3", "py3", "pycon", "python2", "ipython", "{.python}"}
_BUILTINS = frozenset(dir(builtins)) | {"__name__", "__file__", "__doc__", "__builtins__", "__spec__"}
_KEPT_CALLS = {("sys", "setrecursionlimit"), ("sys", "set_int_max_str_digits")}
_IO_NAMES = {"print", "input", "exit", "quit", "breakpoint"}
# A top-level call that ends the process is not demo code: the program as written exits
# before it can be tested, and keeps the sandbox's "exited while loading" verdict.
_EXIT_CALLS = {("sys", "exit"), ("os", "_exit"), ("os", "abort"), ("os", "kill"), ("os", "killpg"),
               ("signal", "raise_signal"), ("signal", "alarm"), ("faulthandler", "_sigsegv")}
_EXIT_NAMES = {"exit", "quit", "_exit", "abort"}
# A line that may start Python code (a span of prose-mixed text is only searched from these).
_CODE_START = re.compile(
    r"(?:(?:async\s+)?def\s|class\s|import\s|from\s+[\w.]+\s+import\b|@\w|if\s|for\s|while\s|with\s|try\s*:"
    r"|print\s*\(|return\b|[A-Za-z_][\w.]*(?:\s*,\s*[A-Za-z_]\w*)*\s*(?:[-+*/%|&^]?=[^=]|\(|\[))"
)
_MAX_SPAN_LINES = 3000  # longer unparsable texts are not searched line by line


@dataclass(frozen=True)
class Extraction:
    """The program found in a completion.

    ``code`` is the completion's code after cleaning (what follows the prompt when
    ``continues_prompt``); ``method`` says in a few words where it came from and what was
    dropped; ``dropped`` lists the dropped statements' descriptions."""

    code: str
    method: str
    continues_prompt: bool = False
    dropped: tuple[str, ...] = ()
    defines_entry: bool | None = None  # None: there was no entry point to look for
    units: int = 0


# --------------------------------------------------------------------------- text -> units


def strip_reasoning(text: str) -> tuple[str, str | None]:
    """The answer part of a completion and a note when reasoning was cut."""
    low = text.lower()
    end = low.rfind("</think>")
    if end >= 0:
        return text[end + len("</think>"):], "after </think>"
    start = low.find("<think>")
    if start >= 0:
        return text[:start], "unclosed <think> dropped"
    return text, None


def fenced_blocks(text: str) -> list[tuple[str, str]]:
    """Every fenced block as (lowercased tag, body)."""
    return [(tag.lower(), body) for tag, body in _FENCE.findall(text or "")]


def legacy_extract(text: str) -> str:
    """The last ```python block, else the last untagged fenced block, else the whole text
    ("" when every fence is another language). The choice made when there is no entry
    point to look for."""
    blocks = fenced_blocks(text)
    for wanted in (lambda t: t in PY_TAGS, lambda t: t == ""):
        chosen = [body for tag, body in blocks if wanted(tag)]
        if chosen:
            return chosen[-1]
    if blocks:
        return ""
    return text or ""


def _legacy_where(text: str) -> str:
    """Where `legacy_extract` takes its code from, in words."""
    blocks = fenced_blocks(text)
    if not blocks:
        return "whole completion"
    for wanted in (lambda t: t in PY_TAGS, lambda t: t == ""):
        ks = [k for k, (tag, _) in enumerate(blocks, 1) if wanted(tag)]
        if ks:
            return f"fenced block {ks[-1]} of {len(blocks)}"
    return "no Python fence"


class _Budget:
    """Compiles left for one extraction: searching spans line by line is quadratic in the
    worst case, so a hostile or huge text gets a bounded search (and then the plain rule)."""

    def __init__(self, compiles: int = 400, chars: int = 2_000_000):
        self.compiles, self.chars = compiles, chars

    @property
    def spent(self) -> bool:
        return self.compiles <= 0 or self.chars <= 0

    def take(self, source: str) -> bool:
        self.compiles -= 1
        self.chars -= len(source)
        return self.compiles >= 0 and self.chars >= 0


_UNLIMITED = None


@functools.lru_cache(maxsize=32)
def _parse(source: str) -> ast.Module:
    """`ast.parse`, remembered: one extraction looks at the same unit several times.
    (Callers never change the tree.)"""
    return ast.parse(source)


def _compiles(source: str, budget: _Budget | None = _UNLIMITED) -> bool:
    if budget is not None and not budget.take(source):
        return False
    try:
        compile(source, "<extract>", "exec", dont_inherit=True)
        return True
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False


def _first_line(source: str) -> str:
    return next((line for line in source.splitlines() if line.strip()), "")


def _is_code_start(line: str) -> bool:
    return bool(line) and line[:1] not in " \t" and bool(_CODE_START.match(line))


def _spans(lines: list[str], prefix: str = "", allow_indented_start: bool = False,
           budget: _Budget | None = None) -> list[tuple[int, int]]:
    """Non-overlapping spans [a, b) of `lines` that compile (after `prefix`), each as long
    as possible, searched left to right from code-looking lines; a span ends right before
    an unindented line or at the end."""
    n = len(lines)
    if n > _MAX_SPAN_LINES:
        return []
    ends = [e for e in range(1, n + 1) if e == n or (lines[e].strip() and lines[e][:1] not in " \t")]
    out: list[tuple[int, int]] = []
    s = 0
    while s < n:
        if budget is not None and budget.spent:
            break
        line = lines[s]
        startable = _is_code_start(line) or (allow_indented_start and s == 0 and line[:1] in " \t")
        if not startable:
            s += 1
            continue
        found = None
        for e in reversed(ends):
            if e <= s or (budget is not None and budget.spent):
                break
            if _compiles(prefix + "".join(lines[s:e]), budget):
                found = e
                break
        if found is None:
            s += 1
            continue
        while found > s and not lines[found - 1].strip():
            found -= 1
        out.append((s, found))
        s = found
    return out


def _worth_running(source: str) -> bool:
    """More than prose that happens to parse: some statement other than a bare name,
    attribute or constant (``Explanation``, ``Note: x`` are prose)."""
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for stmt in tree.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, (ast.Name, ast.Attribute, ast.Constant)):
            continue
        if isinstance(stmt, ast.AnnAssign) and stmt.value is None:
            continue
        return True
    return False


@dataclass
class _Unit:
    label: str
    source: str
    continuation: bool = False


def _units_of(body: str, label: str, prompt: str, budget: _Budget | None = None) -> list[_Unit]:
    """A block (or the whole text) as compilable units."""
    if not body.strip():
        return []
    first = _first_line(body)
    indented = first[:1] in (" ", "\t")
    if indented and prompt and _compiles(prompt + body):
        return [_Unit(label, body, continuation=True)]
    if _compiles(body):
        return [_Unit(label, body)] if _worth_running(body) else []
    if indented:
        dedented = textwrap.dedent(body)
        if dedented != body and _compiles(dedented):
            return [_Unit(label + " (dedented)", dedented)]
    lines = body.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    units = []
    if indented and prompt:
        # A body that continues the prompt, then prose: its longest compiling prefix.
        ends = [e for e in range(len(lines), 0, -1) if e == len(lines) or (lines[e].strip() and lines[e][:1] not in " \t")]
        for e in ends:
            if budget is not None and budget.spent:
                break
            if _compiles(prompt + "".join(lines[:e]), budget):
                units.append(_Unit(f"{label} lines 1-{e}", "".join(lines[:e]), continuation=True))
                rest = lines[e:]
                for a, b in _spans(rest, budget=budget):
                    src = "".join(rest[a:b])
                    if _worth_running(src):
                        units.append(_Unit(f"{label} lines {e + a + 1}-{e + b}", src))
                return units
    for a, b in _spans(lines, budget=budget):
        src = "".join(lines[a:b])
        if _worth_running(src):
            units.append(_Unit(f"{label} lines {a + 1}-{b}", src))
    return units


# --------------------------------------------------------------------------- sanitizing


def _main_guard(stmt: ast.stmt) -> bool:
    if not isinstance(stmt, ast.If):
        return False
    t = stmt.test
    if isinstance(t, ast.Compare) and len(t.ops) == 1 and isinstance(t.ops[0], ast.Eq):
        sides = [t.left, t.comparators[0]]
        return any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides) and any(
            isinstance(s, ast.Constant) and s.value == "__main__" for s in sides)
    return False


def _kept_call(call: ast.expr) -> bool:
    f = call.func if isinstance(call, ast.Call) else None
    return (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
            and (f.value.id, f.attr) in _KEPT_CALLS)


def _bound(stmt: ast.stmt) -> set[str]:
    """Module-level names a top-level statement binds."""
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {stmt.name}
    names: set[str] = set()
    stack: list[ast.AST] = [stmt]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue  # names inside are not module-level
        if isinstance(node, ast.Lambda):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                if a.name != "*":
                    names.add((a.asname or a.name).split(".")[0])
            continue
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return names


def _loads(nodes: Iterable[ast.AST | None]) -> set[str]:
    return {n.id for node in nodes if node is not None for n in ast.walk(node)
            if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Store)}


def _table_globals(table: symtable.SymbolTable) -> set[str]:
    """Module-level names a function or class scope (and the scopes inside it) uses."""
    out = {sym.get_name() for sym in table.get_symbols() if sym.is_global()}
    for child in table.get_children():
        out |= _table_globals(child)
    return out


def _module_uses(source: str, body: list[ast.stmt]) -> list[set[str]]:
    """For each top-level statement, the module-level names it uses. A function's own
    locals and parameters are not uses (`symtable` says which names are global), so a
    local `n` does not make a top-level `n = int(input())` look needed."""
    try:
        top = symtable.symtable(source, "<extract>", "exec")
        tables: dict[str, list[symtable.SymbolTable]] = {}
        for child in top.get_children():
            tables.setdefault(child.get_name(), []).append(child)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        tables = {}
    out = []
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and tables.get(node.name):
            table = tables[node.name].pop(0)
            if isinstance(node, ast.ClassDef):
                outer = [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]
            else:
                a = node.args
                outer = [*node.decorator_list, *a.defaults, *a.kw_defaults, node.returns,
                         *(x.annotation for x in [*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg] if x)]
            out.append(_table_globals(table) | _loads(outer))
        else:
            out.append(_loads([node]))
    return out


def _calls(stmt: ast.stmt) -> set[str]:
    out = set()
    for n in ast.walk(stmt):
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Name):
            out.add(n.func.id)
    return out


def _start_line(stmt: ast.stmt) -> int:
    decos = getattr(stmt, "decorator_list", None) or []
    return min([stmt.lineno] + [d.lineno for d in decos])


@dataclass
class _Stmt:
    node: ast.stmt
    kind: str  # main, assert, call, exit, import, def, assign, other
    bound: set[str]
    used: set[str]
    protected: bool
    junk: str | None = None  # why it is dropped
    mutated: set[str] = field(default_factory=set)  # names whose object it changes (`T[0] = 1`, `f.cache = {}`)


def _exits(node: ast.stmt) -> bool:
    """A top-level expression statement that calls something ending the process."""
    if not isinstance(node, ast.Expr):
        return False
    for n in ast.walk(node.value):
        if isinstance(n, ast.Call):
            f = n.func
            if isinstance(f, ast.Name) and f.id in _EXIT_NAMES:
                return True
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in _EXIT_CALLS:
                return True
    return False


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _mutated(node: ast.stmt) -> set[str]:
    """Names whose object a top-level statement changes in place: ``T[0] = 1``,
    ``f.cache = {}``, ``PRIMES.extend(...)``."""
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AugAssign, ast.AnnAssign)):
        targets = [node.target]
    elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call) and isinstance(node.value.func, ast.Attribute):
        targets = [node.value.func.value]
    out = set()
    for t in targets:
        if isinstance(t, (ast.Attribute, ast.Subscript)) or isinstance(node, ast.Expr):
            name = _root_name(t)
            if name:
                out.add(name)
    return out


def _classify(node: ast.stmt, protected: bool, used: set[str] | None = None,
              data: frozenset[str] = frozenset()) -> _Stmt:
    mutated = _mutated(node)
    if _main_guard(node):
        kind = "main"
    elif isinstance(node, ast.Assert):
        kind = "assert"
    elif _exits(node):
        kind = "exit"  # kept, with what it uses (`import sys`)
    elif isinstance(node, ast.Expr) and mutated & data:
        kind = "other"  # `PRIMES.extend(range(2, 10))`: fills a module-level table
    elif isinstance(node, ast.Expr) and isinstance(node.value, (ast.Call, ast.Await)) and not _kept_call(node.value):
        kind = "call"
    elif isinstance(node, ast.Expr) and not _kept_call(node.value) and any(isinstance(n, ast.Call) for n in ast.walk(node.value)):
        kind = "call"  # `print(x) or f(y)`, `[print(t) for t in tests]`
    elif isinstance(node, (ast.Import, ast.ImportFrom)):
        kind = "import"
    elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        kind = "def"
    elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
        kind = "assign"
    else:
        kind = "other"
    return _Stmt(node, kind, _bound(node), _loads([node]) if used is None else used, protected, mutated=mutated)


def _describe(st: _Stmt, roots: Sequence[str]) -> str:
    node = st.node
    if st.kind == "main":
        return "if __name__ block"
    if st.kind == "assert":
        return "top-level assert"
    if st.kind == "call":
        return "top-level call"
    if st.kind == "import":
        return "unused import " + ", ".join(sorted(st.bound)) if st.bound else "unused import"
    if st.kind == "def":
        what = "class" if isinstance(node, ast.ClassDef) else "def"
        return f"{what} {node.name} (not used by {', '.join(roots)})"
    return f"top-level {type(node).__name__.lower()} using the program"


def sanitize(source: str, roots: Sequence[str], protect_lines: int = 0) -> tuple[str, list[str], set[str]]:
    """`source` without its test and demo code (see the module docstring).

    Statements starting within the first `protect_lines` lines (the prompt) are never
    dropped. Returns (code, descriptions of what was dropped, names the kept code loads
    but does not bind)."""
    tree = _parse(source)
    uses = _module_uses(source, tree.body)
    data = frozenset(n for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign)) for n in _bound(node))
    stmts = [_classify(node, _start_line(node) <= protect_lines, u, data) for node, u in zip(tree.body, uses)]
    for st in stmts:
        if not st.protected and st.kind in ("main", "assert", "call"):
            st.junk = _describe(st, roots)
    live = [st for st in stmts if st.junk is None]
    own_defs = {n for st in live if st.kind == "def" for n in st.bound}

    # Names the entry points need, and the statements that provide them.
    reach = set(roots)
    changed = True
    needed: set[int] = set()
    while changed:
        changed = False
        for i, st in enumerate(live):
            if i in needed:
                continue
            provides = st.bound - own_defs if st.kind == "import" else st.bound
            # (an import of a name the module defines itself -- `from solution import f`
            # in a test block -- is the test's, not the program's)
            take = st.protected or st.kind == "exit" or bool(provides & reach) or bool(st.mutated & reach)
            if not take and st.kind in ("assign", "other"):
                # Unneeded top-level code stays unless it runs the program's functions
                # or does I/O (a demo loop, `result = f(3)`).
                take = not ((st.used & own_defs) or (_calls(st.node) & _IO_NAMES))
            if not take and st.kind == "import":
                # `from x import *` binds nothing we can see; __future__ must stay.
                take = not st.bound or (isinstance(st.node, ast.ImportFrom) and st.node.module == "__future__")
            if take:
                needed.add(i)
                new = st.used - reach
                if new:
                    reach |= new
                    changed = True
                    # re-scan: newly reached names may make earlier statements needed
    for i, st in enumerate(live):
        if i not in needed:
            st.junk = _describe(st, roots)

    dropped = [st for st in stmts if st.junk]
    bound_all = {n for st in stmts if not st.junk for n in st.bound}
    used_all = {n for st in stmts if not st.junk for n in st.used}
    free = used_all - bound_all - _BUILTINS
    if not dropped:
        return source, [], free
    lines = source.splitlines(keepends=True)
    keep_line = [True] * (len(lines) + 2)
    kept_ranges = [(_start_line(st.node), st.node.end_lineno or st.node.lineno) for st in stmts if not st.junk]
    for st in dropped:
        for ln in range(_start_line(st.node), (st.node.end_lineno or st.node.lineno) + 1):
            keep_line[ln] = False
    for a, b in kept_ranges:  # a line shared with a kept statement (`x = 1; print(x)`) stays
        for ln in range(a, b + 1):
            keep_line[ln] = True
    out = "".join(line for k, line in enumerate(lines, 1) if keep_line[k])
    out = re.sub(r"\n{3,}$", "\n", out)
    return out, [st.junk for st in dropped], free  # type: ignore[misc]


def _summarize(dropped: Iterable[str]) -> str:
    counts: dict[str, int] = {}
    for d in dropped:
        counts[d] = counts.get(d, 0) + 1
    parts = []
    for d, k in counts.items():
        if k == 1:
            parts.append(d)
        else:
            plural = {"top-level call": "top-level calls", "top-level assert": "top-level asserts",
                      "if __name__ block": "if __name__ blocks"}.get(d, d)
            parts.append(f"{k} {plural}" if plural != d else f"{d} (x{k})")
    return ", ".join(parts)


def _providers(source: str, names: set[str]) -> list[tuple[int, str, set[str], set[str]]]:
    """Top-level statements of `source` binding any of `names`, as (line, text, bound, used);
    test and demo code never provides."""
    try:
        tree = _parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    lines = source.splitlines(keepends=True)
    out = []
    for node, used in zip(tree.body, _module_uses(source, tree.body)):
        st = _classify(node, False, used)
        # Only definitions provide: a test loop binding `n` is not where `n` comes from.
        if st.kind not in ("import", "def", "assign") or not (st.bound & names):
            continue
        a, b = _start_line(node), node.end_lineno or node.lineno
        text = "".join(lines[a - 1:b])
        if not text.endswith("\n"):
            text += "\n"
        out.append((a, text, st.bound, st.used))
    return out


def _defines(source: str, prompt: str, continuation: bool, names: Sequence[str]) -> set[str]:
    """Which of `names` the unit defines (an import of the name -- `from solution import
    f` in a test block -- is not a definition)."""
    try:
        tree = _parse(prompt + source if continuation else source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    bound = {n for node in tree.body if not isinstance(node, (ast.Import, ast.ImportFrom)) for n in _bound(node)}
    return bound & set(names)


# --------------------------------------------------------------------------- the front door


def extract_program(text: str, entry_points: Sequence[str] | None = None, prompt: str = "") -> Extraction:
    """The program in a completion (see the module docstring). `entry_points`: the names
    the tests call (none for stdin/stdout programs); `prompt`: Python the completion may
    continue (HumanEval's signature and docstring), or ""."""
    text = text or ""
    answer, note = strip_reasoning(text)
    notes = [note] if note else []
    blocks = fenced_blocks(answer)
    py_blocks = [(k, body) for k, (tag, body) in enumerate(blocks, 1) if tag in PY_TAGS or tag == ""]
    n_blocks = len(blocks)
    if blocks and not py_blocks:
        return Extraction("", _join("no Python fence (only " + ", ".join(sorted({t for t, _ in blocks})) + ")", notes))

    if not entry_points:
        code = legacy_extract(answer)
        where = _legacy_where(answer)
        if not blocks and not _compiles(code) and code.strip():
            lines = code.splitlines(keepends=True)
            spans = [(a, b) for a, b in _spans(lines, budget=_Budget()) if _worth_running("".join(lines[a:b]))]
            if spans:
                a, b = max(spans, key=lambda ab: (sum(1 for ln in lines[ab[0]:ab[1]] if ln.strip()), ab[0]))
                code = "".join(lines[a:b])
                where = f"code in prose, lines {a + 1}-{b}"
        return Extraction(code, _join(where, notes), units=len(py_blocks) or 1)

    roots = list(dict.fromkeys(entry_points))
    budget = _Budget()
    if blocks:
        units = []
        for k, body in py_blocks:
            units += _units_of(body, f"fenced block {k} of {n_blocks}", prompt, budget)
    else:
        units = _units_of(answer, "whole completion", prompt, budget)
        for u in units:
            if u.label.startswith("whole completion lines"):
                u.label = "code in prose, " + u.label[len("whole completion "):]
    defining = [(i, u, _defines(u.source, prompt, u.continuation, roots)) for i, u in enumerate(units)]
    defining = [(i, u, d) for i, u, d in defining if d]
    if not defining:
        # Nothing here defines what the tests call: run what the plain rule finds, so the
        # reason is the program's own failure (a syntax error, a NameError).
        code = legacy_extract(answer)
        if not blocks and not units and not any(_is_code_start(ln) or ln[:1] in (" ", "\t")
                                                for ln in answer.splitlines() if ln.strip()):
            return Extraction("", _join("no code found (prose only)", notes), defines_entry=False)
        where = "no unit compiles" if not units else f"no unit defines {', '.join(roots)}"
        return Extraction(code, _join(f"{_legacy_where(answer)} ({where})", notes),
                          defines_entry=False, units=len(units))
    # The last unit defining the most entry points (MBPP asserts may call several).
    best = max(len(d) for _, _, d in defining)
    idx, chosen, _ = [(i, u, d) for i, u, d in defining if len(d) == best][-1]

    protect = prompt.count("\n") if chosen.continuation else 0
    whole = prompt + chosen.source if chosen.continuation else chosen.source
    code, dropped, free = sanitize(whole, roots, protect_lines=protect)
    if chosen.continuation:
        code = code[len(prompt):] if code.startswith(prompt) else code
    prompt_bound: set[str] = set()
    if prompt and not chosen.continuation and _compiles(prompt):
        prompt_bound = {n for node in _parse(prompt).body for n in _bound(node)}

    # Put back what the chosen unit needs from the other units.
    missing = (free | (set(roots) - _defines(chosen.source, prompt, chosen.continuation, roots))) - prompt_bound
    pulled: dict[int, list[tuple[int, str]]] = {}
    order = list(range(idx - 1, -1, -1)) + list(range(idx + 1, len(units)))
    seen: set[str] = set()
    while missing:
        name = missing.pop()
        seen.add(name)
        for j in order:
            provs = [p for p in _providers(units[j].source, {name})]
            if provs:
                for line, src, bound, used in provs:
                    if (line, src) not in pulled.setdefault(j, []):
                        pulled[j].append((line, src))
                        missing |= (used - bound - seen - _BUILTINS - prompt_bound
                                    - _module_bound(code))
                break
    label = chosen.label
    defined = ", ".join(sorted(_defines(chosen.source, prompt, chosen.continuation, roots)))
    if pulled:
        extra = "".join(src for j in sorted(pulled) for _, src in sorted(pulled[j]))
        if chosen.continuation:
            code = code + ("" if code.endswith("\n") else "\n") + extra
        else:
            code = extra + code
        from_where = "; ".join(f"{_names_of(pulled[j])} from {units[j].label}" for j in sorted(pulled))
        label = f"{label} (defines {defined}), with {from_where}"
    elif chosen.continuation:
        label = f"{label} (continues the prompt)" if "continues" not in label else label
    else:
        label = f"{label} (defines {defined})"
    if dropped:
        notes.append("dropped: " + _summarize(dropped))
    return Extraction(code, _join(label, notes), continues_prompt=chosen.continuation,
                      dropped=tuple(dropped), defines_entry=True, units=len(units))


def _module_bound(source: str) -> set[str]:
    try:
        return {n for node in _parse(source).body for n in _bound(node)}
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()


def _names_of(items: list[tuple[int, str]]) -> str:
    names = []
    for _, src in sorted(items):
        try:
            node = _parse(src).body[0]
        except (SyntaxError, IndexError, ValueError):
            continue
        names += sorted(_bound(node))
    return ", ".join(dict.fromkeys(names))


def _join(head: str, notes: list[str]) -> str:
    return "; ".join([head] + notes)
