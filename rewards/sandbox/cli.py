"""`assay sandbox`: what protects sandboxed code on this machine, and running a program in it.

    assay sandbox check [--json]
    assay sandbox run PROGRAM.py [--stdin FILE] [--timeout S] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core.errors import UserError
from core.options import POSITIVE_FLOAT


class SandboxCliError(UserError):
    pass


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sandbox",
        help="show the code sandbox's protections here, or run a program in it",
        description="The sandbox runs untrusted programs for the `code` reward. `check` lists "
        "which protections are active on this machine and which are missing; `run` runs one "
        "Python program in it (stdin from a file) and prints what it wrote and how it ended.",
    )
    p.set_defaults(handler=lambda a: (p.print_help(), 2)[1])
    s = p.add_subparsers(dest="sandbox_command", metavar="SUBCOMMAND")
    c = s.add_parser("check", help="list active and missing protections")
    c.add_argument("--json", action="store_true", help="print one JSON object")
    c.set_defaults(handler=run_check)
    r = s.add_parser("run", help="run a Python program in the sandbox")
    r.add_argument("program", help="a Python file")
    r.add_argument("--stdin", help="file to feed on standard input (default: empty)")
    r.add_argument("--timeout", type=POSITIVE_FLOAT, default=5.0, help="wall-clock seconds (default 5)")
    r.add_argument("--json", action="store_true", help="print one JSON object")
    r.set_defaults(handler=run_program)


def _read(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SandboxCliError(f"cannot read {what} {path}: {exc}") from None


def run_check(args: argparse.Namespace) -> int:
    from rewards import sandbox

    sandbox._announced = True  # the list below says it all; no extra notice line
    caps = sandbox.capabilities()
    if args.json:
        print(json.dumps(caps))
        return 0
    rows = [
        ("bubblewrap (read-only filesystem, host files hidden)", caps["bubblewrap"]),
        ("user namespace", caps["user_namespace"]),
        ("PID namespace (whole-tree kill)", caps["pid_namespace"]),
        ("candidates in a PID namespace of their own (harness invisible to them)", caps["candidate_pid_namespace"]),
        ("network namespace (no network)", caps["network_namespace"]),
        ("private /tmp and /proc", caps["private_tmp"] and caps["private_proc"]),
        ("capabilities dropped, no_new_privs", caps["capabilities_dropped"]),
        ("unprivileged uid", caps["unprivileged_uid"]),
    ]
    for name, ok in rows:
        print(f"  [{'x' if ok else ' '}] {name}")
    print(f"  rlimits: {', '.join(caps['rlimits'])}")
    print(f"  server python: {caps['server_python']}")
    if caps["missing"]:
        print("missing:")
        for item in caps["missing"]:
            print(f"  - {item}")
    else:
        print("all protections active")
    return 0


def run_program(args: argparse.Namespace) -> int:
    from rewards import sandbox

    source = _read(args.program, "program")
    stdin = _read(args.stdin, "stdin file") if args.stdin else ""
    try:
        compile(source, args.program, "exec")
    except SyntaxError as exc:
        raise SandboxCliError(f"{args.program}:{exc.lineno}: syntax error: {exc.msg}") from None
    cfg = sandbox.SandboxConfig(timeout=args.timeout, workers=1)
    [out] = sandbox.get_sandbox(cfg).run([{"kind": "stdio", "program": source, "inputs": [stdin]}])
    res = out.get("result") or {}
    run = (res.get("runs") or [{}])[0]
    if args.json:
        print(json.dumps({"killed": out.get("killed"), **run, **{k: v for k, v in res.items() if k != "runs"}}))
        return 0
    sys.stdout.write(run.get("stdout", ""))
    if run.get("stderr"):
        sys.stderr.write(run["stderr"])
    if run.get("timed_out") or out.get("killed"):
        print(f"[sandbox] timeout after {args.timeout:g}s; killed with its whole process tree", file=sys.stderr)
        return 124
    if run.get("signal"):
        print(f"[sandbox] killed by {run['signal']}", file=sys.stderr)
        return 128
    if "load_error" in res:
        print(f"[sandbox] {res['load_error']}", file=sys.stderr)
        return 1
    return int(run.get("exit_code") or 0)
