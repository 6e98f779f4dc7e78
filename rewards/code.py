"""The `code` reward: run a completion's program against the row's tests in the sandbox.

Three input styles, chosen by the row's fields:

- HumanEval: ``prompt``, ``test``, ``entry_point``. The program is prompt + completion;
  ``check(candidate)``'s statements are the tests, so a partly right program earns
  partial credit (one test per top-level statement of ``check`` holding an assert).
- assert list (MBPP): ``test_list`` (+ optional ``test_setup_code``, ``test_imports``).
  Each assert is a test; the functions it names are the program's.
- stdin/stdout: ``inputs``, ``outputs`` (lists of strings). One run per input; outputs
  are compared after trimming trailing whitespace on each line (and trailing blank lines);
  the run must also exit with status 0.

The program is found as a careful reader would (`rewards.code_extraction`): the fenced
block (or the span of code in prose) that defines what the tests call, with the helpers
and imports it needs from other blocks, and without the example usage, asserts and
``if __name__ == "__main__":`` blocks chat models append; stdin/stdout programs take the
last python fence (else the last bare fence, else the whole text). How it was found is in
``details["extraction"]``, and in the reason when it differs from that plain rule. Score = fraction of tests passed, or 0/1 with
``binary=True``. Every score comes with a reason such as "3/5 tests passed; first failure:
AssertionError at test 2", "timeout after 5s", "no code found" or "syntax error line 3".

Where the tests run, and why a program cannot forge a pass, is the sandbox's business
(`rewards.sandbox`); this module only builds jobs and reads their results.
"""

from __future__ import annotations

import ast
import builtins
import functools
from typing import Any, Sequence

from rewards.base import RewardError, RewardResult, register
from rewards.code_extraction import Extraction, extract_program, legacy_extract

_BUILTIN_NAMES = frozenset(dir(builtins))


def extract_code(text: str, entry_point: str | Sequence[str] | None = None, prompt: str = "") -> str:
    """The program in a completion. Without an entry point: the last ```python block, else
    the last untagged fenced block, else the whole text (HumanEval-style raw
    continuations). With one: the robust extraction of `rewards.code_extraction` (the
    block defining it, helpers from other blocks, test and demo code dropped)."""
    if entry_point is None:
        return legacy_extract(text)
    roots = [entry_point] if isinstance(entry_point, str) else list(entry_point)
    return extract_program(text, roots, prompt).code


def _row_style(row: dict, i: int) -> str:
    if "test_list" in row:
        return "mbpp"
    if "inputs" in row or "outputs" in row:
        missing = [f for f in ("inputs", "outputs") if f not in row]
        if missing:
            raise RewardError(f"row {i}: the code reward (stdin/stdout) needs field {missing[0]!r}")
        return "stdio"
    if "test" in row or "entry_point" in row:
        missing = [f for f in ("test", "entry_point") if f not in row]
        if missing:
            raise RewardError(f"row {i}: the code reward (HumanEval) needs field {missing[0]!r}")
        return "humaneval"
    raise RewardError(
        f"row {i}: the code reward needs tests: 'test' + 'entry_point' (HumanEval), "
        "'test_list' (assert list, MBPP) or 'inputs' + 'outputs' (stdin/stdout)"
    )


def _segment(lines: list[bytes], node: ast.stmt) -> str:
    """The source of a statement, dedented to column 0 (ast.get_source_segment re-splits
    the whole source on every call: 10x slower on HumanEval's tests)."""
    chunk = lines[node.lineno - 1 : node.end_lineno]
    chunk[-1] = chunk[-1][: node.end_col_offset] if len(chunk) > 1 else chunk[-1][node.col_offset : node.end_col_offset]
    if len(chunk) > 1:
        chunk[0] = chunk[0][node.col_offset :]
        indent = node.col_offset
        for k in range(1, len(chunk)):
            line = chunk[k]
            strip = len(line) - len(line.lstrip(b" \t"))
            chunk[k] = line[min(strip, indent) :]
    return b"".join(chunk).decode("utf-8")


@functools.lru_cache(maxsize=4096)
def _humaneval_parts(test: str, entry_point: str) -> tuple[str, tuple[tuple[str, bool], ...]]:
    """(the test module without ``check``, check's statements as (source, is_test))."""
    try:
        tree = ast.parse(test)
    except SyntaxError as exc:
        raise RewardError(f"the HumanEval test does not parse: line {exc.lineno}: {exc.msg}") from None
    check = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "check"), None)
    whole = (test, ((f"check({entry_point})", True),))
    params = [a.arg for a in check.args.args] if check is not None else []
    if params != ["candidate"]:
        # Statement-by-statement runs bind the candidate as `candidate` (HumanEval's own
        # name); a check written otherwise runs whole, as one test.
        return whole
    lines = test.encode("utf-8").splitlines(keepends=True)
    steps = []
    for stmt in check.body:
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant):
            continue  # a docstring
        is_test = any(isinstance(n, ast.Assert) for n in ast.walk(stmt))
        steps.append((_segment(lines, stmt), is_test))
    if not any(t for _, t in steps):
        return whole
    # The module around check (imports, METADATA, helpers) runs as setup; check's body
    # runs statement by statement, so check itself need not be compiled twice.
    first = min([check.lineno] + [d.lineno for d in check.decorator_list])
    rest = b"".join(lines[: first - 1] + lines[check.end_lineno :]).decode("utf-8")
    return rest, tuple(steps)


def humaneval_steps(test: str, entry_point: str) -> list[dict]:
    """The tests of a HumanEval ``check``: its top-level statements, in order. Statements
    holding an assert are tests; the others (imports, helper values) just run."""
    return [{"source": src, "test": is_test} for src, is_test in _humaneval_parts(test, entry_point)[1]]


@functools.lru_cache(maxsize=4096)
def _compiles(source: str) -> bool:
    try:
        compile(source, "<prompt>", "exec")
        return True
    except (SyntaxError, ValueError):
        return False


def _code_prompt(prompt: Any) -> str:
    """The row's prompt when it is Python (HumanEval's signature and docstring, which the
    completion continues); "" when it is an instruction or a chat, so the program is the
    completion alone."""
    if isinstance(prompt, str) and prompt.strip() and _compiles(prompt):
        return prompt
    return ""


@functools.lru_cache(maxsize=4096)
def _called_names(tests: tuple[str, ...]) -> tuple[str, ...]:
    """The names an assert list loads (the functions it calls, the modules it uses)."""
    names: list[str] = []
    for t in tests:
        try:
            tree = ast.parse(t)
        except (SyntaxError, ValueError):
            continue
        names += [n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)]
    return tuple(n for n in dict.fromkeys(names) if n not in _BUILTIN_NAMES)


def entry_points(row: dict, style: str) -> list[str] | None:
    """What the row's tests call: HumanEval's entry point, the names an assert list uses;
    None for stdin/stdout programs (their top-level code is the program)."""
    if style == "humaneval":
        return [str(row["entry_point"])]
    if style == "mbpp":
        tests = row["test_list"]
        return list(_called_names(tuple(str(t) for t in ([tests] if isinstance(tests, str) else tests)))) or None
    return None


def extract(completion: str, row: dict, style: str) -> Extraction:
    """The program in a completion for this row (`rewards.code_extraction`)."""
    raw = row.get("prompt") if style == "humaneval" else None
    return extract_program(completion, entry_points(row, style), raw if isinstance(raw, str) else "")


def build_job(completion: str, row: dict, style: str,
              extraction: Extraction | None = None) -> tuple[dict | None, str | None]:
    """The sandbox job for one completion, or (None, reason) when there is nothing to run."""
    ex = extraction or extract(completion, row, style)
    code = ex.code
    if not code.strip():
        return None, "no code found"
    prompt = ""
    if style == "humaneval":
        first = next((line for line in code.splitlines() if line.strip()), "")
        raw = row.get("prompt")
        prompt = _code_prompt(raw)
        if ex.continues_prompt and isinstance(raw, str):
            prompt = raw  # the completion continues the prompt (a body, or a bare signature's body)
        elif not prompt and isinstance(raw, str) and first[:1] in (" ", "\t") and _compiles(raw + code):
            prompt = raw  # a bare signature (`def f(x):`) that the completion's body completes
        glue = "" if (not prompt or first[:1] in (" ", "\t") or prompt.endswith("\n") and ex.continues_prompt) else "\n"
        program = prompt + glue + code
    else:
        program = code
    try:
        compile(program, "<candidate>", "exec")
    except SyntaxError as exc:
        return None, f"syntax error line {exc.lineno}: {exc.msg}"
    except (ValueError, RecursionError, MemoryError) as exc:
        return None, f"program does not compile: {type(exc).__name__}"
    if style == "humaneval":
        entry = str(row["entry_point"])
        job = {
            "kind": "call",
            "program": program,
            # The prompt is run again on the trusted side for the helpers the tests use
            # (e.g. HumanEval/38's encode_cyclic): the program cannot redefine them.
            "setup": [{"source": prompt, "required": False},
                      {"source": _humaneval_parts(str(row["test"]), entry)[0], "required": True}],
            "steps": humaneval_steps(str(row["test"]), entry),
            "bind": {"candidate": entry, entry: entry},
        }
    elif style == "mbpp":
        tests = row["test_list"]
        if isinstance(tests, str):
            tests = [tests]
        setup = [{"source": str(s), "required": True} for s in (row.get("test_imports") or [])]
        if row.get("test_setup_code"):
            setup.append({"source": str(row["test_setup_code"]), "required": True})
        job = {"kind": "call", "program": program, "setup": setup, "proxy_all": True,
               "steps": [{"source": str(t), "test": True} for t in tests]}
    else:
        job = {"kind": "stdio", "program": program, "inputs": [str(x) for x in row["inputs"]]}
    return job, None


def normalize_output(text: str) -> str:
    """Trailing whitespace trimmed on every line, trailing blank lines dropped."""
    lines = [line.rstrip() for line in str(text).replace("\r\n", "\n").split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return "\n".join(lines)


def _error_text(err: dict | None) -> str:
    err = err or {}
    kind = err.get("type") or "error"
    msg = str(err.get("message") or "")
    if kind == "RuntimeError" and msg.startswith("the candidate"):
        return msg
    if kind in ("RuntimeError",) and ": " in msg and msg.split(": ", 1)[0].isidentifier():
        kind, msg = msg.split(": ", 1)
    return kind if not msg or kind in ("AssertionError",) else f"{kind}: {msg[:120]}"


def _score(passed: int, total: int, binary: bool) -> float:
    if binary:
        return 1.0 if total and passed == total else 0.0
    return passed / total if total else 0.0


def interpret(job: dict, out: dict, row: dict, style: str, binary: bool, timeout: float) -> RewardResult:
    """A sandbox result as a score and a reason."""
    res = out.get("result")
    base = {"style": style}
    if out.get("killed") or res is None:
        total = sum(1 for s in job.get("steps", [])) if job["kind"] == "call" else len(job.get("inputs", []))
        return RewardResult(0.0, f"timeout after {timeout:g}s (killed with its whole process tree)",
                            {**base, "passed": 0, "total": total, "timed_out": True})
    if "harness_error" in res:
        return RewardResult(0.0, "sandbox error: " + res["harness_error"].strip().splitlines()[-1][:200],
                            {**base, "sandbox_error": res["harness_error"]})
    if "setup_error" in res:
        return RewardResult(None, "test setup failed: " + _error_text(res["setup_error"]), {**base, **res})
    if "load_error" in res:
        err = res["load_error"]
        if err.get("type") == "Timeout":
            return RewardResult(0.0, f"timeout after {timeout:g}s (while loading the program)", {**base, "timed_out": True})
        where = f" line {err['line']}" if err.get("line") else ""
        if err.get("type") == "SystemExit":
            reason = f"the program exited while loading{where}"
        elif err.get("type") == "Exited":
            reason = err.get("message") or "the program died while loading"
        else:
            reason = f"error while loading the program: {_error_text(err)}{where}"
        return RewardResult(0.0, reason, {**base, "load_error": err, "stderr": res.get("stderr", "")[-500:]})

    if job["kind"] == "call":
        steps = job["steps"]
        outcomes = res.get("steps", [])
        total = sum(1 for s in steps if s.get("test", True))
        passed, failures, n, broken = 0, [], 0, False
        for step, got in zip(steps, outcomes):
            if not step.get("test", True):
                if not got.get("ok"):
                    broken = True
                    failures.append((n + 1, got.get("error")))
                continue
            n += 1
            if got.get("ok") and not broken:
                passed += 1
            elif not got.get("ok"):
                failures.append((n, got.get("error")))
        if res.get("timed_out") and passed < total:
            reason = f"timeout after {timeout:g}s; {passed}/{total} tests passed"
        elif passed == total:
            reason = f"{passed}/{total} tests passed"
        else:
            first = failures[0] if failures else (None, None)
            reason = f"{passed}/{total} tests passed; first failure: {_error_text(first[1])} at test {first[0]}"
        details = {**base, "passed": passed, "total": total,
                   "failures": [{"test": t, **(e or {})} for t, e in failures[:5]],
                   "timed_out": bool(res.get("timed_out"))}
        if res.get("stderr"):
            details["stderr"] = res["stderr"][-500:]
        return RewardResult(_score(passed, total, binary), reason, details)

    # stdin/stdout
    expected = [str(x) for x in row["outputs"]]
    runs = res.get("runs", [])
    total = len(expected)
    passed, first = 0, None
    for i, (run, want) in enumerate(zip(runs, expected), 1):
        if run.get("timed_out"):
            why = f"timeout after {timeout:g}s"
        elif run.get("signal"):
            why = f"killed by {run['signal']}"
        elif run.get("exit_code"):
            tail = (run.get("stderr") or "").strip().splitlines()
            why = f"runtime error (exit {run['exit_code']}" + (f": {tail[-1][:100]})" if tail else ")")
        elif run.get("stdout_bytes", 0) > len(run.get("stdout", "").encode()):
            why = "output too large"
        elif normalize_output(run.get("stdout", "")) != normalize_output(want):
            why = "wrong answer"
        else:
            passed += 1
            continue
        first = first or (i, why)
    if len(runs) < total:
        first = first or (len(runs) + 1, "not run")
    if passed == total:
        reason = f"{passed}/{total} tests passed"
    elif total and first and first[1].startswith("timeout") and passed == 0 and all(r.get("timed_out") for r in runs):
        reason = f"timeout after {timeout:g}s"
    else:
        reason = f"{passed}/{total} tests passed; first failure: {first[1]} at test {first[0]}"
    return RewardResult(_score(passed, total, binary), reason, {**base, "passed": passed, "total": total})


@register("code", fields=(), heavy=True, self_managed=True, sandbox=True)
def code(
    completions: Sequence[str],
    rows: Sequence[dict],
    *,
    binary: bool = False,
    timeout: float | None = None,
    workers: int | None = None,
    sandbox: Any = None,
    **_: Any,
) -> list[RewardResult]:
    """Fraction of the row's tests the completion's program passes, run in the sandbox.

    Options: ``binary`` (1.0 only when every test passes), ``timeout`` (seconds per
    program; per input for stdin/stdout), ``workers`` (programs run at once), ``sandbox``
    (a full `rewards.sandbox.SandboxConfig`, overriding the two before)."""
    from rewards import sandbox as sandbox_mod

    if len(completions) != len(rows):
        raise RewardError(f"code: {len(completions)} completions but {len(rows)} rows")
    if sandbox is None:
        opts: dict[str, Any] = {}
        if timeout:
            opts["timeout"] = float(timeout)
        if workers:
            opts["workers"] = int(workers)
        sandbox = sandbox_mod.SandboxConfig(**opts)
    config = sandbox
    limit = float(config.timeout)
    results: list[RewardResult | None] = [None] * len(rows)
    jobs, where = [], []
    for i, (completion, row) in enumerate(zip(completions, rows)):
        style = _row_style(row, i)
        if style == "stdio" and len(row["inputs"]) != len(row["outputs"]):
            raise RewardError(f"row {i}: 'inputs' has {len(row['inputs'])} items but 'outputs' has {len(row['outputs'])}")
        if style == "mbpp" and not row["test_list"] or style == "stdio" and not row["inputs"]:
            results[i] = RewardResult(None, "the row has no tests", {"style": style})
            continue
        text = completion if isinstance(completion, str) else str(completion)
        ex = extract(text, row, style)
        job, reason = build_job(text, row, style, extraction=ex)
        if job is None:
            results[i] = _with_extraction(RewardResult(0.0, reason, {"style": style}), ex, text)
            continue
        job["timeout"] = limit
        jobs.append(job)
        where.append((i, style, ex, text))
    if jobs:
        outs = sandbox_mod.get_sandbox(config).run(jobs)
        for job, out, (i, style, ex, text) in zip(jobs, outs, where):
            results[i] = _with_extraction(interpret(job, out, rows[i], style, binary, limit), ex, text)
    return results  # type: ignore[return-value]


def _with_extraction(result: RewardResult, ex: Extraction, text: str) -> RewardResult:
    """The extraction in the details always (``extraction``: how, ``dropped``: what); in
    the reason too when it ran something other than the plain last-fence rule would have."""
    details = {**result.details, "extraction": ex.method}
    if ex.dropped:
        details["dropped"] = list(ex.dropped)
    reason = result.reason
    if ex.code and ex.code != legacy_extract(text):
        reason = f"{reason}; extracted: {ex.method}"
    return RewardResult(result.score, reason, details)
