"""The sandbox fork-server: runs candidate programs, one process each, isolated.

This file is executed by the *system* interpreter (``/usr/bin/python3 -I -S``) as an
unprivileged uid, usually inside bubblewrap, so it uses the standard library only and
imports nothing of assay. The client (`rewards.sandbox`) starts it once and talks to it
over its stdin/stdout with length-prefixed JSON frames.

Process tree for one job (nothing here ever runs candidate code except C)::

    S  server: event loop; forks H per job; enforces the hard deadline (kills A)
    └─ H  unshares user, mount, PID, network, IPC and UTS namespaces, maps the uid, forks A
       └─ A  PID 1 of the job's namespace: the trusted harness. Mounts a private tmpfs on
          │  /tmp and a fresh /proc, runs the *tests*, and writes the verdict to S.
          └─ C  the candidate: rlimits, no capabilities, scrubbed env, only its own fds.

Why the verdict cannot be forged: the tests never run in the candidate's process. In
"call" jobs (HumanEval, assert lists) C executes the program and then answers calls
to its functions over a pipe; A executes the test code with proxies that send the
arguments to C and decode the answer as *plain data* (ints, strings, lists, ...) built
by A itself. Whatever C does -- exit early, print markers, return an object whose
``__eq__`` lies, patch builtins or ``sys.modules``, shadow ``AssertionError`` -- it can
only change the values its functions return, which is exactly what is being tested. C
cannot signal or ptrace A (A is PID 1 of the namespace and not dumpable; C holds no
capabilities) and cannot reach S's pipes (all other fds are closed). In "stdio" jobs C
only produces output; the comparison happens outside, in the reward.

No process outlives its job: A is PID 1 of a PID namespace, so when A exits (or S kills
it at the deadline) the kernel kills every process in it, including daemonized ones;
between stdio runs A also kills everything but itself (``kill(-1, SIGKILL)``).
"""

import builtins
import ctypes
import errno
import gc
import io
import json
import os
import resource
import select
import selectors
import signal
import struct
import sys
import time
import types

# Modules imported once here so that candidates start warm (forked, not re-imported).
PRELOAD = (
    "abc array ast bisect builtins calendar cmath collections collections.abc copy "
    "dataclasses datetime decimal enum fractions functools hashlib heapq inspect io "
    "itertools json math numbers operator random re statistics string struct textwrap "
    "time typing unicodedata traceback"
).split()

CLONE_NEWNS = 0x00020000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REC, MS_PRIVATE = 2, 4, 8, 0x4000, 1 << 18
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP = 1, 4, 24
PR_SET_NO_NEW_PRIVS, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 38, 47, 4
INNER_UID = 1000  # the uid inside a job's user namespace: not root, so exec grants no capabilities
MAX_FRAME = 64 << 20

libc = ctypes.CDLL(None, use_errno=True)


def _check(ret, what):
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def prctl(option, arg=0):
    return libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg), ctypes.c_ulong(0), ctypes.c_ulong(0), ctypes.c_ulong(0))


def mount(source, target, fstype, flags, data=None):
    _check(
        libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def drop_privileges(bounding=False):
    """No capabilities (ambient, effective, permitted, inheritable) and no new privileges.

    With no_new_privs and a non-zero uid, execve cannot give capabilities back, so the
    bounding set (41 more syscalls, ~1 ms here) is only dropped where asked."""
    if bounding:
        for cap in range(64):
            prctl(PR_CAPBSET_DROP, cap)  # EINVAL past the last capability
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    header = _CapHeader(0x20080522, 0)
    data = (_CapData * 2)()
    _check(libc.capset(ctypes.byref(header), data), "capset")
    _check(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")


# ---------------------------------------------------------------- framing and plain data


def write_frame(fd, obj):
    data = json.dumps(obj, separators=(",", ":")).encode()
    buf = memoryview(struct.pack(">I", len(data)) + data)
    while buf:
        n = os.write(fd, buf)
        buf = buf[n:]


class FrameReader:
    def __init__(self):
        self.buf = bytearray()

    def feed(self, data):
        self.buf += data

    def next(self):
        """One complete frame, or None."""
        if len(self.buf) < 4:
            return None
        (n,) = struct.unpack(">I", self.buf[:4])
        if n > MAX_FRAME:
            raise ValueError("frame too large")
        if len(self.buf) < 4 + n:
            return None
        frame = json.loads(bytes(self.buf[4 : 4 + n]))
        del self.buf[: 4 + n]
        return frame

    def frames(self):
        out = []
        while True:
            frame = self.next()
            if frame is None:
                return out
            out.append(frame)


def encode_value(v, depth=0):
    """Plain data to a JSON-able tree. Lenient about subclasses (their *value* is kept)."""
    if depth > 200:
        raise ValueError("value nested too deeply")
    if v is None or v is True or v is False:
        return v
    if isinstance(v, bool):
        return bool(v)
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        return {"n": repr(float(v))} if v != v or v in (float("inf"), float("-inf")) else float(v)
    if isinstance(v, str):
        return str(v)
    d = depth + 1
    if isinstance(v, list):
        return [encode_value(x, d) for x in list(v)]
    if isinstance(v, tuple):
        return {"t": [encode_value(x, d) for x in tuple(v)]}
    if isinstance(v, dict):
        return {"d": [[encode_value(k, d), encode_value(x, d)] for k, x in dict(v).items()]}
    if isinstance(v, frozenset):
        return {"f": [encode_value(x, d) for x in frozenset(v)]}
    if isinstance(v, set):
        return {"s": [encode_value(x, d) for x in set(v)]}
    if isinstance(v, (bytes, bytearray)):
        return {"b": bytes(v).hex()}
    if isinstance(v, complex):
        return {"c": [encode_value(v.real, d), encode_value(v.imag, d)]}
    if isinstance(v, range):
        return {"r": [v.start, v.stop, v.step]}
    raise TypeError(f"a {type(v).__name__} cannot cross the sandbox boundary (only plain data can)")


def decode_value(v):
    """The inverse of encode_value; builds only exact builtin types."""
    if v is None or type(v) in (bool, int, float, str):
        return v
    if type(v) is list:
        return [decode_value(x) for x in v]
    if type(v) is dict and len(v) == 1:
        (tag, x), = v.items()
        if tag == "t":
            return tuple(decode_value(y) for y in x)
        if tag == "d":
            return {decode_value(k): decode_value(y) for k, y in x}
        if tag == "s":
            return {decode_value(y) for y in x}
        if tag == "f":
            return frozenset(decode_value(y) for y in x)
        if tag == "b":
            return bytes.fromhex(x)
        if tag == "c":
            return complex(decode_value(x[0]), decode_value(x[1]))
        if tag == "n":
            return float(x)
        if tag == "r":
            return range(int(x[0]), int(x[1]), int(x[2]))
    raise ValueError("malformed value from the candidate")


# ---------------------------------------------------------------- the candidate (C)


def _exc_line(tb, filename):
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _describe(exc, filename="<candidate>"):
    msg = str(exc)
    if len(msg) > 300:
        msg = msg[:300] + "..."
    out = {"type": type(exc).__name__, "message": msg, "line": _exc_line(exc.__traceback__, filename)}
    if isinstance(exc, SyntaxError):
        out["line"] = exc.lineno
    return out


def _fresh_main(name):
    mod = types.ModuleType(name)
    mod.__dict__["__builtins__"] = __builtins__
    sys.modules["__main__"] = mod
    return mod


def _reopen_stdio():
    sys.stdin = io.TextIOWrapper(io.FileIO(0, "r", closefd=False), encoding="utf-8", errors="replace")
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), encoding="utf-8", errors="replace", write_through=False)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace", write_through=True)
    sys.__stdin__, sys.__stdout__, sys.__stderr__ = sys.stdin, sys.stdout, sys.stderr


def _enter_candidate(limits, fds, isolated):
    """In the forked child C: install fds, limits and drop everything, before any candidate code."""
    # fds: target fd -> source fd. Everything else is closed, so the candidate can reach
    # neither S's request/verdict pipes nor A's.
    for target, source in fds.items():
        if target != source:
            os.dup2(source, target)
        os.set_inheritable(target, True)
    keep = sorted(fds)
    prev = -1
    for fd in keep + [65536]:
        if fd > prev + 1:
            os.closerange(prev + 1, fd)
        prev = fd
    os.setsid()
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    mb = 1 << 20
    cpu = int(limits["cpu_seconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb, limits["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb, limits["file_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"], limits["processes"]))
    os.chdir(limits["workdir"])
    if isolated:
        drop_privileges()
    else:
        try:
            _check(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
        except OSError:
            pass
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": limits["workdir"], "LANG": "C.UTF-8", "TMPDIR": limits["workdir"]})
    os.umask(0o077)
    _reopen_stdio()


def test_namespace(job, names, modules, make_function):
    """The namespace the tests run in: the program's functions (as made by
    `make_function`), its imported modules, the setup code and the bound names. Built the
    same way by the harness (proxies) and by the candidate (recording wrappers).
    Returns (namespace, setup error or None)."""
    ns = {"__name__": "__test__", "__builtins__": builtins}
    if job.get("proxy_all"):
        # The tests name the program's functions directly (MBPP); the modules the program
        # imported are imported here too, fresh.
        for alias, modname in modules.items():
            try:
                __import__(modname)
                ns[alias] = sys.modules[modname]
            except BaseException:  # noqa: B036
                pass
        for name in names:
            ns[name] = make_function(name)
    for i, src in enumerate(job.get("setup", [])):
        try:
            exec(job["_setup_code"][i], ns)
        except BaseException as exc:  # noqa: B036
            if src.get("required", True):
                return ns, _describe(exc, f"<setup {i}>")
    for alias, name in job.get("bind", {}).items():
        ns[alias] = make_function(name)
    return ns, None


def _program_names(g):
    names, modules = [], {}
    for n, v in list(g.items()):
        if n.startswith("__"):
            continue
        if isinstance(v, types.ModuleType):
            modules[n] = getattr(v, "__name__", n)
        elif callable(v):
            names.append(n)
    return sorted(names), modules


def _encode_call(args, kwargs):
    return encode_value(list(args)), {"d": [[k, encode_value(v)] for k, v in kwargs.items()]}


def candidate_transcript(job, g, names, modules, log_fd):
    """Run the tests here, in the candidate's process, recording every call the tests make
    to the program's functions: (name, arguments, outcome), arguments encoded before the
    call. The harness then runs the same tests itself and answers each call from this
    record when name and arguments match (else it calls the candidate live). The record
    only ever supplies *return values of the candidate's functions*, which the candidate
    controls anyway, so trusting it costs nothing; it saves a round trip per call."""
    transcript = []

    def make_function(name):
        fn = g.get(name)

        def recorder(*args, **kwargs):
            try:
                a, k = _encode_call(args, kwargs)
            except (TypeError, ValueError, RecursionError):
                a = k = None
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:  # noqa: B036
                if a is not None:
                    transcript.append([name, a, k, {"x": _describe(exc)}])
                raise
            if a is not None:
                try:
                    transcript.append([name, a, k, {"v": encode_value(result)}])
                except (TypeError, ValueError, RecursionError) as exc:
                    transcript.append([name, a, k, {"x": _describe(exc)}])
            return result

        return recorder

    ns, err = test_namespace(job, names, modules, make_function)
    if err is not None:
        return
    for i, step in enumerate(job["steps"]):
        try:
            exec(job["_step_code"][i], ns)
        except BaseException:  # noqa: B036 - the harness decides what failed
            pass
        write_frame(log_fd, {"t": transcript})
        transcript.clear()


def candidate_serve(code, req_fd, resp_fd, log_fd, job):
    """C in a call job: run the program's top level; with `job`, run its tests recording
    the calls (written to the log memfd step by step, so a crash or timeout keeps what was
    recorded); say "done" on the response pipe (the harness's only wake-up); then answer
    live calls to the program's functions."""
    mod = _fresh_main("__candidate__")
    g = mod.__dict__
    try:
        exec(code, g)
    except BaseException as exc:  # noqa: B036 - the candidate may raise anything, even SystemExit
        write_frame(log_fd, {"load_error": _describe(exc)})
        write_frame(resp_fd, {"done": 1})
        return
    names, modules = _program_names(g)
    write_frame(log_fd, {"loaded": names, "modules": modules})
    if job is not None:
        try:
            candidate_transcript(job, g, names, modules, log_fd)
        except BaseException:  # noqa: B036
            pass
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: B036
        pass
    write_frame(resp_fd, {"done": 1})
    reader = FrameReader()
    while True:
        data = os.read(req_fd, 1 << 16)
        if not data:
            return
        reader.feed(data)
        for req in reader.frames():
            try:
                fn = g[req["f"]]
                args = decode_value(req["a"])
                kwargs = decode_value(req["k"])
                result = fn(*args, **kwargs)
                out = {"v": encode_value(result)}
            except BaseException as exc:  # noqa: B036
                out = {"x": _describe(exc)}
            try:
                sys.stdout.flush()
                write_frame(resp_fd, out)
            except (TypeError, ValueError, OSError) as exc:  # e.g. a huge int or a full stdout
                write_frame(resp_fd, {"x": _describe(exc)})


def candidate_stdio(code):
    """C in a stdio job: run the program as __main__ with stdin/stdout on fds 0/1."""
    mod = _fresh_main("__main__")
    status = 0
    try:
        exec(code, mod.__dict__)
    except SystemExit as exc:
        c = exc.code
        status = 0 if c is None else (c if isinstance(c, int) else 1)
        if not isinstance(c, (int, type(None))):
            try:
                print(c, file=sys.stderr)
            except BaseException:  # noqa: B036
                pass
    except BaseException as exc:  # noqa: B036
        import traceback

        status = 1
        try:
            traceback.print_exception(type(exc), exc, exc.__traceback__)
        except BaseException:  # noqa: B036
            pass
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: B036 - output over the size limit
        status = status or 1
    os._exit(status & 0xFF)


# ---------------------------------------------------------------- the harness (A)


class CandidateTimeout(BaseException):
    """Raised inside the test code when the candidate is out of time (a BaseException so
    that ``except Exception`` in the test cannot swallow it)."""


class CandidateGone(Exception):
    pass


def _status_text(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return {"signal": name}
    return {"exit_code": os.WEXITSTATUS(status) if os.WIFEXITED(status) else None}


def _read_capped(fd, limit):
    size = os.fstat(fd).st_size
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while len(data) < min(size, limit):
        chunk = os.read(fd, min(size, limit) - len(data))
        if not chunk:
            break
        data += chunk
    return data.decode("utf-8", "replace"), size


def _kill_all_but_me(isolated, pgid=None):
    """PID 1 of the namespace: every other process in it dies. Without a namespace, the group."""
    if isolated:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    elif pgid:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG if not isolated else 0)
        except ChildProcessError:
            return
        if pid == 0:
            return


class Harness:
    """A: runs one job; the only code here that touches candidate processes."""

    def __init__(self, job, out_fd, isolated, limits):
        self.job = job
        self.out_fd = out_fd
        self.isolated = isolated
        self.limits = limits
        self.deadline = time.monotonic() + float(job["timeout"])
        self.proc = None  # (pid, pidfd, req_w, resp_r, out_fd, err_fd)
        self.names = []
        self.modules = {}
        self.transcript = None  # the candidate's record of the test run; False once diverged
        self.tpos = 0
        self.live_calls = 0  # calls answered by the candidate live, not from its record
        self.timed_out = False
        self.code = None

    # -- candidate process management
    def _spawn(self, mode, stdin_data=None, record=False):
        out = os.memfd_create("stdout", 0)
        err = os.memfd_create("stderr", 0)
        if mode == "call":
            req_r, req_w = os.pipe()
            resp_r, resp_w = os.pipe()
            log = os.memfd_create("log", 0)
            inp = os.open("/dev/null", os.O_RDONLY)
            fds = {0: inp, 1: out, 2: err, 3: req_r, 4: resp_w, 5: log}
        else:
            inp = os.memfd_create("stdin", 0)
            os.write(inp, stdin_data.encode())
            os.lseek(inp, 0, os.SEEK_SET)
            fds = {0: inp, 1: out, 2: err}
        pid = os.fork()
        if pid == 0:
            try:
                _enter_candidate(self.limits, fds, self.isolated)
                if mode == "call":
                    candidate_serve(self.code, 3, 4, 5, self.job if record else None)
                else:
                    candidate_stdio(self.code)
            finally:
                os._exit(0)
        os.close(inp)
        pidfd = os.pidfd_open(pid)
        if mode == "call":
            os.close(req_r)
            os.close(resp_w)
            self.proc = {"pid": pid, "pidfd": pidfd, "req": req_w, "resp": resp_r, "out": out, "err": err,
                         "log": log, "reader": FrameReader(), "status": None}
        else:
            self.proc = {"pid": pid, "pidfd": pidfd, "out": out, "err": err, "status": None}
        return self.proc

    def _reap(self, block):
        proc = self.proc
        if proc["status"] is None:
            try:
                pid, status = os.waitpid(proc["pid"], 0 if block else os.WNOHANG)
                if pid:
                    proc["status"] = status
            except ChildProcessError:
                proc["status"] = 0
        return proc["status"]

    def _finish_proc(self):
        """Kill the candidate and everything it started; collect its output."""
        proc = self.proc
        if proc is None:
            return {}
        if proc["status"] is None:
            try:
                os.kill(proc["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._reap(True)
        _kill_all_but_me(self.isolated, proc["pid"])
        limit = self.limits["output_bytes"]
        stdout, out_size = _read_capped(proc["out"], limit)
        stderr, err_size = _read_capped(proc["err"], limit)
        for key in ("pidfd", "out", "err", "req", "resp", "log"):
            if key in proc:
                os.close(proc[key])
        info = {"stdout": stdout, "stderr": stderr[-limit:], "stdout_bytes": out_size, **_status_text(proc["status"])}
        self.proc = None
        return info

    def _recv(self):
        """The next frame from the call-mode candidate, waiting at most until the deadline."""
        proc = self.proc
        while True:
            try:
                frame = proc["reader"].next()
            except ValueError:
                frame = {"x": {"type": "ProtocolError", "message": "malformed frame from the candidate"}}
            if frame is not None:
                return frame
            left = self.deadline - time.monotonic()
            if left <= 0:
                self.timed_out = True
                raise CandidateTimeout()
            if "poll" not in proc:
                proc["poll"] = select.poll()
                proc["poll"].register(proc["resp"], select.POLLIN)
            ready = proc["poll"].poll(left * 1000)
            if not ready:
                continue
            try:
                data = os.read(proc["resp"], 1 << 20)
            except OSError:
                data = b""
            if not data:
                self._reap(True)
                raise CandidateGone(self._gone_text())
            proc["reader"].feed(data)

    def _gone_text(self):
        st = self.proc["status"]
        if st is None:
            return "the candidate process stopped answering"
        info = _status_text(st)
        if "signal" in info:
            return f"the candidate process was killed by {info['signal']}"
        return f"the candidate process exited with status {info['exit_code']} during a call"

    def _start_candidate(self, record=False):
        """Start C; wait (one wake-up) until it has loaded the program and, with `record`,
        run the tests once on its side. Returns a load error or None."""
        self._spawn("call", record=record)
        proc = self.proc
        gone = None
        try:
            self._recv()  # {"done": 1}, written once the log below is complete
        except CandidateTimeout:
            pass
        except CandidateGone as exc:
            gone = str(exc)
        os.lseek(proc["log"], 0, os.SEEK_SET)
        reader = FrameReader()
        while True:
            chunk = os.read(proc["log"], 1 << 20)
            if not chunk:
                break
            reader.feed(chunk)
        frames = []
        try:
            while True:
                frame = reader.next()
                if frame is None:
                    break
                frames.append(frame)
        except ValueError:
            pass
        first = frames[0] if frames and isinstance(frames[0], dict) else {}
        if "load_error" in first:
            return first["load_error"] if isinstance(first["load_error"], dict) else {"type": "Error"}
        if "loaded" not in first:
            if self.timed_out:
                return {"type": "Timeout", "message": f"timeout after {self.job['timeout']}s while loading the program"}
            return {"type": "Exited", "message": (gone or "the program died").replace("during a call", "while loading")}
        self.names = [n for n in first.get("loaded") or [] if isinstance(n, str)]
        self.modules = {k: v for k, v in (first.get("modules") or {}).items() if isinstance(k, str) and isinstance(v, str)}
        if record:
            self.transcript = [e for f in frames[1:] if isinstance(f, dict) and isinstance(f.get("t"), list) for e in f["t"]]
            self.tpos = 0
        if gone is not None:
            self._finish_proc()  # died during the recorded tests: later calls restart it, live
        return None

    def call(self, name, args, kwargs):
        if self.timed_out:
            raise CandidateTimeout()
        if self.proc is None:
            self.transcript = False
            err = self._start_candidate()  # the previous one died: a fresh one for the next test
            if err is not None:
                raise CandidateGone(f"the program failed to load again: {err['type']}")
        try:
            enc_args, enc_kwargs = _encode_call(args, kwargs)
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(str(exc)) from None
        if self.transcript:
            entry = self.transcript[self.tpos] if self.tpos < len(self.transcript) else None
            if (isinstance(entry, list) and len(entry) == 4 and entry[0] == name and entry[1] == enc_args
                    and entry[2] == enc_kwargs and isinstance(entry[3], dict)):
                self.tpos += 1
                if "v" in entry[3]:
                    return decode_value(entry[3]["v"])
                raise _rebuild_exception(entry[3].get("x") or {})
            self.transcript = False  # diverged (e.g. unseeded random inputs): call live from here on
        payload = {"f": name, "a": enc_args, "k": enc_kwargs}
        self.live_calls += 1
        try:
            write_frame(self.proc["req"], payload)
        except OSError:
            self._reap(True)
            gone = self._gone_text()
            self._finish_proc()
            raise CandidateGone(gone) from None
        try:
            msg = self._recv()
        except CandidateGone:
            self._finish_proc()
            raise
        if "v" in msg:
            return decode_value(msg["v"])
        exc = msg.get("x") or {}
        raise _rebuild_exception(exc)

    # -- jobs
    def run_call(self):
        job = self.job
        try:
            self.code = compile(job["program"], "<candidate>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return {"load_error": _describe(exc)}
        # The test code is compiled once, here, before C is forked: C inherits the code objects.
        for key, items, name in (("_setup_code", job.get("setup", []), "setup"), ("_step_code", job["steps"], "test")):
            codes = []
            for i, item in enumerate(items):
                try:
                    codes.append(compile(item["source"], f"<{name} {i}>", "exec"))
                except (SyntaxError, ValueError) as exc:
                    if name == "setup" and not item.get("required", True):
                        codes.append(compile("", f"<{name} {i}>", "exec"))
                        continue
                    return {"setup_error": _describe(exc, f"<{name} {i}>")}
            job[key] = codes
        load_error = self._start_candidate(record=True)
        if load_error is not None:
            return {"load_error": load_error, **self._finish_proc()}
        harness = self

        def proxy(name):
            def candidate_function(*args, **kwargs):
                return harness.call(name, args, kwargs)

            candidate_function.__name__ = name
            return candidate_function

        ns, setup_error = test_namespace(job, self.names, self.modules, proxy)
        if setup_error is not None:
            return {"setup_error": setup_error, **self._finish_proc()}
        results = []
        for i, step in enumerate(job["steps"]):
            if self.timed_out:
                results.append({"ok": False, "error": {"type": "Timeout", "message": "not run: out of time"}, "run": False})
                continue
            fname = f"<test {i}>"
            try:
                exec(job["_step_code"][i], ns)
                results.append({"ok": True})
            except CandidateTimeout:
                results.append({"ok": False, "error": {"type": "Timeout", "message": f"timeout after {job['timeout']}s"}})
            except BaseException as exc:  # noqa: B036 - every failure is a failed test
                results.append({"ok": False, "error": _describe(exc, fname)})
        return {"steps": results, "timed_out": self.timed_out, "names": self.names, **self._finish_proc(),
                "recorded_calls": self.tpos, "live_calls": self.live_calls}

    def run_stdio(self):
        job = self.job
        try:
            self.code = compile(job["program"], "<candidate>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return {"load_error": _describe(exc)}
        runs = []
        per_run = float(job["timeout"])
        for data in job["inputs"]:
            start = time.monotonic()
            proc = self._spawn("stdio", data)
            poller = select.poll()
            poller.register(proc["pidfd"], select.POLLIN)
            ready = poller.poll(per_run * 1000)
            timed_out = not ready
            info = self._finish_proc()
            info["timed_out"] = timed_out
            info["seconds"] = round(time.monotonic() - start, 4)
            runs.append(info)
        return {"runs": runs}


_EXC_OK = {n for n in dir(builtins) if isinstance(getattr(builtins, n), type) and issubclass(getattr(builtins, n), Exception)}


def _rebuild_exception(info):
    """The candidate's exception, as a builtin exception class of the same name when one
    exists (tests may expect ``ValueError``), else a plain RuntimeError. Never a
    BaseException the test could not catch."""
    name = str(info.get("type", "Exception"))
    msg = str(info.get("message", ""))
    if name in _EXC_OK:
        cls = getattr(builtins, name)
        try:
            exc = cls(msg)
        except Exception:  # noqa: BLE001 - e.g. UnicodeDecodeError needs 5 arguments
            exc = RuntimeError(f"{name}: {msg}")
    elif name == "SystemExit":
        exc = RuntimeError(f"the candidate called exit({msg})")
    else:
        exc = RuntimeError(f"{name}: {msg}")
    exc.candidate_error = info
    return exc


def _wipe(path):
    """Empty the job's directory (the candidate may leave unwritable modes behind; this
    process has CAP_DAC_OVERRIDE in the slot's namespace, and the tmpfs caps inodes)."""
    import shutil

    for entry in os.listdir(path):
        full = os.path.join(path, entry)
        try:
            if os.path.isdir(full) and not os.path.islink(full):
                shutil.rmtree(full, ignore_errors=True)
            else:
                os.unlink(full)
        except OSError:
            pass


def slot_main(job_fd, out_fd, isolated, base_limits):
    """A: PID 1 of a slot's namespaces; runs jobs one at a time, each in fresh processes.

    Namespaces are set up once per slot (creating and tearing them down costs ~10 ms here,
    more than a whole HumanEval program); between jobs every other process in the
    namespace is killed and the private /tmp is emptied, so nothing of a job survives it.
    """
    if isolated:
        try:
            mount(None, "/", None, MS_REC | MS_PRIVATE)
        except OSError:
            pass
        mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV,
              f"size={base_limits['tmpfs_mb']}m,nr_inodes=4096,mode=0700")
        try:
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            pass
        workdir = "/tmp"
    else:
        import tempfile

        workdir = tempfile.mkdtemp(prefix="assay-slot-")
    reader = FrameReader()
    while True:
        try:
            data = os.read(job_fd, 1 << 20)
        except InterruptedError:
            continue
        if not data:
            break
        reader.feed(data)
        for job in reader.frames():
            limits = dict(base_limits)
            limits.update(job.get("limits") or {})
            limits["workdir"] = workdir
            h = Harness(job, out_fd, isolated, limits)
            try:
                result = h.run_call() if job["kind"] == "call" else h.run_stdio()
            except BaseException as exc:  # noqa: B036 - a harness bug must still produce a verdict
                import traceback

                result = {"harness_error": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-2000:]}
            if h.proc is not None:
                h._finish_proc()
            _kill_all_but_me(isolated)
            _wipe(workdir)
            write_frame(out_fd, {"id": job["id"], "result": result})
    if not isolated:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    os._exit(0)


# ---------------------------------------------------------------- a slot: H


NS_FLAGS = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWUTS


def enter_namespaces(net):
    uid, gid = os.getuid(), os.getgid()
    # S is not dumpable (so candidates could never open its /proc files); the uid map is
    # written through /proc/self, which a non-dumpable process does not own.
    prctl(PR_SET_DUMPABLE, 1)
    _check(libc.unshare(ctypes.c_int(NS_FLAGS | (CLONE_NEWNET if net else 0))), "unshare")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"{INNER_UID} {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"{INNER_UID} {gid} 1")


def start_slot(config):
    """Fork H, which enters new namespaces and forks A (PID 1 there).
    Returns (pid of H, write end of A's job pipe, read end of A's frame pipe)."""
    job_r, job_w = os.pipe()
    out_r, out_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(job_r)
        os.close(out_w)
        return pid, job_w, out_r
    try:  # H
        nul = os.open("/dev/null", os.O_RDWR)
        os.dup2(nul, 0)
        os.dup2(nul, 1)
        os.dup2(job_r, 3)
        os.dup2(out_w, 4)
        os.closerange(5, 65536)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        isolated = config["isolated"]
        if isolated:
            enter_namespaces(config["net_namespace"])
        apid = os.fork()
        if apid == 0:
            prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
            prctl(PR_SET_DUMPABLE, 0)
            if not isolated:
                os.setsid()
            slot_main(3, 4, isolated, dict(config["limits"]))
        write_frame(4, {"slot_pid": apid})
        os.close(3)
        os.close(4)
        while True:
            try:
                os.waitpid(apid, 0)
                break
            except ChildProcessError:
                break
            except InterruptedError:
                continue
    except BaseException as exc:  # noqa: B036
        try:
            write_frame(4, {"slot_error": f"{type(exc).__name__}: {exc}"})
        except OSError:
            pass
    os._exit(0)


# ---------------------------------------------------------------- S: probe and serve


def probe(config):
    """Which protections work here: try them in a throwaway child."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        report = {}
        try:
            enter_namespaces(True)
            report["namespaces"] = True
            apid = os.fork()
            if apid == 0:
                ok = {}
                try:
                    mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
                    ok["private_tmp"] = True
                except OSError as exc:
                    ok["private_tmp"] = str(exc)
                try:
                    mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
                    ok["private_proc"] = True
                except OSError as exc:
                    ok["private_proc"] = str(exc)
                try:
                    drop_privileges(bounding=True)
                    ok["drop_capabilities"] = True
                except OSError as exc:
                    ok["drop_capabilities"] = str(exc)
                ok["pid1"] = os.getpid() == 1
                os.write(w, json.dumps(ok).encode())
                os._exit(0)
            os.waitpid(apid, 0)
        except OSError as exc:
            report["namespaces"] = str(exc)
            os.write(w, json.dumps(report).encode())
        os._exit(0)
    os.close(w)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    out = {"namespaces": True}
    try:
        out.update(json.loads(data or b"{}"))
    except ValueError:
        out["namespaces"] = "probe failed"
    return out


def serve(config):
    for name in PRELOAD:
        try:
            __import__(name)
        except ImportError:
            pass
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)
    prctl(PR_SET_DUMPABLE, 0)
    caps = probe(config)
    config["isolated"] = caps.get("namespaces") is True and caps.get("private_tmp") is True and caps.get("drop_capabilities") is True
    caps.update({"uid": os.getuid(), "python": sys.version.split()[0], "isolated": config["isolated"],
                 "rlimit_nproc_enforced": os.getuid() != 0})
    write_frame(1, {"hello": caps})
    gc.collect()
    gc.freeze()  # forked children do not copy the preloaded heap by touching it
    max_slots = max(1, int(config.get("slots", 2)))
    recycle = int(config.get("recycle", 500))
    grace = float(config.get("grace", 2.0))
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, None)
    requests = FrameReader()
    queue = []  # jobs waiting for a slot
    slots = {}  # frame fd -> slot state
    closing = False

    def reply(job, result, killed=False, steps=()):
        write_frame(1, {"id": job["id"], "result": result, "killed": killed, "steps_done": list(steps)})

    def drop(slot):
        for pid in (slot["apid"], slot["pid"]):
            if pid:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        try:
            sel.unregister(slot["out"])
        except (KeyError, ValueError):
            pass
        for fd in (slot["out"], slot["jobs"]):
            try:
                os.close(fd)
            except OSError:
                pass
        slots.pop(slot["out"], None)

    while True:
        # Hand queued jobs to idle slots, starting slots up to the limit.
        while queue:
            idle = next((sl for sl in slots.values() if sl["job"] is None and not sl["retire"]), None)
            if idle is None:
                if len(slots) >= max_slots:
                    break
                pid, job_w, out_r = start_slot(config)
                idle = {"pid": pid, "apid": None, "jobs": job_w, "out": out_r, "reader": FrameReader(),
                        "job": None, "deadline": None, "steps": [], "done": 0, "retire": False}
                slots[out_r] = idle
                sel.register(out_r, selectors.EVENT_READ, out_r)
            job = queue.pop(0)
            runs = len(job.get("inputs", [])) if job["kind"] == "stdio" else 1
            idle["job"] = job
            idle["steps"] = []
            idle["deadline"] = time.monotonic() + float(job["timeout"]) * max(1, runs) + grace + 0.05 * runs
            try:
                write_frame(idle["jobs"], job)
            except OSError:
                pass  # the slot died; its EOF below answers for the job
        if closing and not queue and all(sl["job"] is None for sl in slots.values()):
            for slot in list(slots.values()):
                drop(slot)
            return
        now = time.monotonic()
        busy = [sl["deadline"] for sl in slots.values() if sl["job"] is not None]
        wait = max(0.0, min(busy) - now) if busy else None
        for key, _ in sel.select(wait):
            if key.data is None:
                data = os.read(0, 1 << 20)
                if not data:
                    closing = True
                    sel.unregister(0)
                    continue
                requests.feed(data)
                queue.extend(requests.frames())
                continue
            slot = slots.get(key.data)
            if slot is None:
                continue
            try:
                data = os.read(slot["out"], 1 << 20)
            except OSError:
                data = b""
            if not data:  # the slot died (killed at a deadline, or crashed)
                if slot["job"] is not None and not slot.get("answered"):
                    reply(slot["job"], {"harness_error": "the sandbox slot died"}, steps=slot["steps"])
                drop(slot)
                continue
            slot["reader"].feed(data)
            try:
                frames = slot["reader"].frames()
            except ValueError:
                frames = []
            for frame in frames:
                if "slot_pid" in frame:
                    slot["apid"] = frame["slot_pid"]
                elif "step" in frame:
                    slot["steps"].append(frame)
                elif "result" in frame and slot["job"] is not None and frame.get("id") == slot["job"]["id"]:
                    reply(slot["job"], frame["result"], steps=slot["steps"])
                    slot["job"] = None
                    slot["done"] += 1
                    if slot["done"] >= recycle:
                        slot["retire"] = True
                        drop(slot)
                elif "slot_error" in frame:
                    slot["error"] = frame["slot_error"]
        now = time.monotonic()
        for slot in list(slots.values()):
            if slot["job"] is not None and now > slot["deadline"]:
                # Past the hard deadline: the slot's PID 1 dies and the kernel kills every
                # process in its namespace; a new slot is made for the next job.
                reply(slot["job"], None, killed=True, steps=slot["steps"])
                slot["job"] = None
                drop(slot)
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break


if __name__ == "__main__":
    serve(json.loads(sys.argv[1]))
