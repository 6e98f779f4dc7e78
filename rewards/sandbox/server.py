"""The sandbox fork-server: runs candidate programs, one process each, isolated.

This file is executed by the *system* interpreter (``/usr/bin/python3 -I -S``) as an
unprivileged uid, usually inside bubblewrap, so it uses the standard library only and
imports nothing of assay. The client (`rewards.sandbox`) starts it once and talks to it
over its stdin/stdout with length-prefixed JSON frames.

Processes (only C ever runs candidate code)::

    S  server: reads jobs, queues them, hands each to an idle slot, answers the client,
    │  and kills a slot whose job overruns timeout + grace
    └─ Z  slot factory, forked before S read any job: every slot is a copy of a process
       │  that never held a test
       └─ H  per slot: unshares user, mount, PID, network, IPC and UTS namespaces, maps the
          │  uid, forks A (and dies with it)
          └─ A  PID 1 of the slot's namespaces: the trusted harness. Mounts a private
             │  tmpfs on /tmp and /dev/shm and a fresh /proc; runs jobs one at a time
             └─ F  candidate factory, forked by A before the first job and never sent
                │  one: PID 1 of a PID namespace nested in the slot's; no capabilities,
                │  no new privileges, rlimits, scrubbed env -- all inherited by C
                └─ C  the candidate: one process per program (per input for
                      stdin/stdout), forked on A's request with only its own five fds

Namespaces are made per slot rather than per job: creating and tearing them down costs
~10 ms here, more than a whole HumanEval program. Between jobs F kills every process of
its namespace (``kill(-1, SIGKILL)`` from its init kills daemonized ones too) and A
empties /tmp, /dev/shm and System V IPC, so nothing of a job survives it; a slot is also
replaced after `recycle` jobs or when S kills it at a deadline. Each candidate costs one
fork of F and a few syscalls; everything else was set up once, in F.

Why the verdict cannot be forged: the tests never run in the candidate's process. In
"call" jobs (HumanEval, assert lists) C executes the program and then answers calls to
its functions over a pipe; A executes the test code with proxies that send the arguments
to C and decode the answer as *plain data* (ints, strings, lists, ...) built by A itself.
Whatever C does -- exit early, print markers, return an object whose ``__eq__`` lies,
patch builtins or ``sys.modules``, shadow ``AssertionError``, trace or rewrite frames --
it can only change the values its functions return, which is exactly what is being
tested. C cannot peek at the tests either: its memory is a copy of F's, and F has never
held a job (not even freed memory of one, which ctypes could read); C only ever sees the
arguments of each call. C cannot see A (A is outside its PID namespace), cannot signal F
(an init with no signal handlers ignores its own namespace), cannot ptrace either (not
dumpable; C holds no capabilities) and cannot reach S's, A's or F's other pipes (all
other fds are closed). In "stdio" jobs C only produces output; the comparison happens
outside, in the reward.

No process outlives its job: F kills and reaps everything in its namespace before A
lets the verdict leave; if S kills A at a deadline the kernel kills every process in
the slot's namespaces, including daemonized ones.
"""

import builtins
import ctypes
import gc
import io
import json
import os
import resource
import select
import selectors
import signal
import socket
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
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER = 1, 4, 24, 36
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
        data = bytes(self.buf[4 : 4 + n])
        del self.buf[: 4 + n]
        try:
            return json.loads(data)
        except (ValueError, RecursionError, MemoryError):
            raise ValueError("malformed frame") from None

    def frames(self):
        out = []
        while True:
            frame = self.next()
            if frame is None:
                return out
            out.append(frame)


def _read_exact(fd, n):
    buf = bytearray()
    while len(buf) < n:
        try:
            chunk = os.read(fd, n - len(buf))
        except InterruptedError:
            continue
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def read_frame_exact(fd):
    """One frame from a pipe without reading past it; None at EOF."""
    head = _read_exact(fd, 4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    if n > MAX_FRAME:
        raise ValueError("frame too large")
    data = _read_exact(fd, n)
    return None if data is None else json.loads(data)


_SCALARS = (int, str, bool, type(None))


def encode_value(v, depth=0):
    """Plain data to a JSON-able tree. Lenient about subclasses (their *value* is kept)."""
    t = type(v)
    if t in _SCALARS:
        return v
    if t is list and all(type(x) in _SCALARS for x in v):
        return v  # the common case (a list of ints or strings) goes to JSON as it is
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
    t = type(v)
    if t in _SCALARS or t is float:
        return v
    if t is list:
        if all(type(x) in _SCALARS or type(x) is float for x in v):
            return v  # json.loads built it: already only exact builtin types
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


def prepare_factory(limits, isolated):
    """F, once per slot: everything candidates share (working directory, umask,
    environment, rlimits, signal dispositions, stdio objects, no capabilities), set up
    before any candidate exists. A forked child pays a page copy for every object it
    touches, so doing this per candidate cost ~2 ms each; inherited, it costs nothing."""
    os.chdir(limits["workdir"])
    os.umask(0o077)
    os.environ.clear()
    os.environ.update({"PATH": "/usr/bin:/bin", "HOME": limits["workdir"], "LANG": "C.UTF-8", "TMPDIR": limits["workdir"]})
    mb = 1 << 20
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb, limits["memory_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_mb"] * mb, limits["file_mb"] * mb))
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"], limits["open_files"]))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGCHLD, signal.SIGXFSZ):
        signal.signal(sig, signal.SIG_DFL)
    # No handler at all in F: as PID 1 of the candidates' namespace it then ignores every
    # signal they send it. Each candidate puts Python's SIGINT handler back.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    _reopen_stdio()
    if isolated:
        drop_privileges()
    else:
        try:
            _check(prctl(PR_SET_NO_NEW_PRIVS, 1), "no_new_privs")
        except OSError:
            pass


def enter_candidate(fds, cpu_seconds, processes):
    """C, just forked from F: its own five fds (stdin, stdout, stderr, request, response)
    and nothing else, its own session, CPU and process limits (F's own CPU time grows
    with every fork, and without namespaces the uid's process count is the whole
    sandbox's, so neither limit can be set once in F). F holds fds 0-4 itself, so every
    fd it received is above 4 and the dup2s cannot clobber one another."""
    for target, source in enumerate(fds):
        os.dup2(source, target)
    os.closerange(len(fds), 65536)
    os.setsid()
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    resource.setrlimit(resource.RLIMIT_NPROC, (processes, processes))
    signal.signal(signal.SIGINT, signal.default_int_handler)


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


def _set_limits(limits):
    """Lower (never raise) this process's limits to a job's own."""
    mb = 1 << 20
    pairs = (
        (resource.RLIMIT_AS, limits.get("memory_mb"), mb),
        (resource.RLIMIT_CPU, limits.get("cpu_seconds"), 1),
        (resource.RLIMIT_FSIZE, limits.get("file_mb"), mb),
    )
    for which, value, unit in pairs:
        if value:
            soft, hard = resource.getrlimit(which)
            want = int(value) * unit
            if hard == resource.RLIM_INFINITY or want < hard:
                resource.setrlimit(which, (want, want if which != resource.RLIMIT_CPU else want + 1))


def candidate_serve(req_fd, resp_fd):
    """C in a call job. Forked *before* the job reached the harness, so nothing of the
    tests is in this process's memory: it receives the program, runs its top level, then
    answers calls to its functions, one at a time, seeing only the arguments."""
    reader = FrameReader()
    msg = None
    while msg is None:
        data = os.read(req_fd, 1 << 20)
        if not data:
            os._exit(0)
        reader.feed(data)
        msg = reader.next()
    _set_limits(msg.get("limits") or {})
    mod = _fresh_main("__candidate__")
    g = mod.__dict__
    source = msg["program"]
    del msg
    try:
        exec(compile(source, "<candidate>", "exec"), g)
    except BaseException as exc:  # noqa: B036 - the candidate may raise anything, even SystemExit
        write_frame(resp_fd, {"load_error": _describe(exc)})
        return
    names, modules = _program_names(g)
    try:
        sys.stdout.flush()
    except BaseException:  # noqa: B036
        pass
    write_frame(resp_fd, {"loaded": names, "modules": modules})
    while True:
        while True:
            req = reader.next()
            if req is not None:
                break
            data = os.read(req_fd, 1 << 20)
            if not data:
                return
            reader.feed(data)
        try:
            fn = g[req["f"]]
            result = fn(*decode_value(req["a"]), **decode_value(req["k"]))
            out = {"v": encode_value(result)}
        except BaseException as exc:  # noqa: B036
            out = {"x": _describe(exc)}
        try:
            sys.stdout.flush()
            write_frame(resp_fd, out)
        except (TypeError, ValueError, OSError, RecursionError) as exc:  # a huge int, a full stdout
            write_frame(resp_fd, {"x": _describe(exc)})


def candidate_stdio(req_fd, resp_fd):
    """C in a stdio job: read the program from the request pipe, then run it as __main__
    with stdin/stdout on fds 0/1."""
    msg = read_frame_exact(req_fd)
    os.close(req_fd)
    os.close(resp_fd)
    if msg is None:
        os._exit(0)
    _set_limits(msg.get("limits") or {})
    try:
        code = compile(msg["program"], "<candidate>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        os._exit(1)  # the harness compiled it first, so this does not happen
    del msg
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
    if status is None:
        return {"exit_code": None}
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


# ---------------------------------------------------------------- the candidate factory (F)


def factory_main(sock, limits, isolated):
    """F: forks every candidate of its slot, and kills them.

    F is forked by A when the slot starts, before any job exists, and is never sent one:
    it only receives fds and the words "fork" and "kill". So no candidate -- not even by
    reading raw memory through ctypes -- can find anything of an earlier job's tests in
    what it inherits. Isolated, F is PID 1 of a PID namespace of its own, nested in the
    slot's: the candidates cannot see A at all, cannot signal F (an init with no handlers
    ignores its namespace's signals), and "kill" is one ``kill(-1, SIGKILL)`` that ends
    every process a candidate started, daemonized or not.

    Requests on the socket, one reply each:
    ``fork call|stdio CPU`` + fds (stdin, stdout, stderr, request, response) -> the pid,
    with a pidfd for A to watch; ``kill`` -> the candidate's wait status (or ``-``).
    """
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    fd = sock.detach()
    if fd != 10:
        os.dup2(fd, 10)
        os.close(fd)
    os.closerange(3, 10)  # A's frame pipes to S are not F's business
    os.closerange(11, 65536)
    nul = os.open("/dev/null", os.O_RDWR)
    os.dup2(nul, 4)  # 3 and 4 taken: received fds are all above 4 (see enter_candidate)
    sock = socket.socket(fileno=10)
    if isolated:
        # Its own mount namespace, for a /proc that shows only the candidates' namespace.
        try:
            _check(libc.unshare(ctypes.c_int(CLONE_NEWNS)), "unshare")
            mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
        except OSError:
            pass
    else:
        prctl(PR_SET_CHILD_SUBREAPER, 1)  # orphans of a candidate come here to be reaped
    prepare_factory(limits, isolated)
    gc.collect()
    gc.freeze()
    child = None
    while True:
        try:
            msg, fds, _, _ = socket.recv_fds(sock, 64, 8)
        except InterruptedError:
            continue
        except OSError:
            os._exit(0)
        if not msg:
            os._exit(0)  # A is gone
        words = msg.split()
        if words[0] == b"fork" and len(fds) == 5:
            if child is not None:
                _end_candidates(child, isolated)
            try:
                pid = os.fork()
            except OSError as exc:
                for f in fds:
                    os.close(f)
                sock.send(b"err " + str(exc).encode())
                continue
            if pid == 0:
                try:
                    enter_candidate(fds, int(words[2]), limits["processes"])
                    if words[1] == b"call":
                        candidate_serve(3, 4)
                    else:
                        candidate_stdio(3, 4)
                finally:
                    os._exit(0)
            for f in fds:
                os.close(f)
            child = pid
            pidfd = os.pidfd_open(pid)
            socket.send_fds(sock, [b"%d" % pid], [pidfd])
            os.close(pidfd)
        elif words[0] == b"kill":
            status = _end_candidates(child, isolated) if child is not None else None
            child = None
            sock.send(b"-" if status is None else b"%d" % status)
        else:
            for f in fds:
                os.close(f)
            sock.send(b"err unknown request")


def _end_candidates(child, isolated):
    """In F: every process of the candidate's dies and is reaped; its wait status."""
    status = None
    if isolated:
        try:
            os.kill(-1, signal.SIGKILL)  # all of this namespace but F
        except ProcessLookupError:
            pass
        while True:  # orphans are F's to reap: when none is left, nothing of the job runs
            try:
                pid, st = os.waitpid(-1, 0)
            except ChildProcessError:
                return status
            except InterruptedError:
                continue
            if pid == child:
                status = st
    try:
        os.killpg(child, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        _, status = os.waitpid(child, 0)
    except ChildProcessError:
        pass
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if pid == 0:
            break
    return status


class Factory:
    """A's end of F. Requests are answered in order; a fork's answer is taken only when
    the candidate is needed, so F forks while A does other work."""

    def __init__(self, limits, isolated):
        a_sock, f_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        if isolated:
            # A's children from now on are born in a new PID namespace; F is its PID 1 and
            # A's only child there (A itself never forks again).
            _check(libc.unshare(ctypes.c_int(CLONE_NEWPID)), "unshare")
        pid = os.fork()
        if pid == 0:
            a_sock.close()
            try:
                factory_main(f_sock, limits, isolated)
            finally:
                os._exit(0)
        f_sock.close()
        self.pid, self.sock = pid, a_sock

    def _reply(self, nfds=0):
        try:
            msg, fds, _, _ = socket.recv_fds(self.sock, 512, nfds) if nfds else (self.sock.recv(512), [], 0, None)
        except OSError as exc:
            raise FactoryGone(f"the candidate factory is gone: {exc}") from None
        if not msg:
            raise FactoryGone("the candidate factory is gone")
        if msg.startswith(b"err "):
            for f in fds:
                os.close(f)
            raise OSError(msg[4:].decode(errors="replace"))
        return msg, fds

    def fork(self, mode, cpu_seconds, fds):
        try:
            socket.send_fds(self.sock, [f"fork {mode} {int(cpu_seconds)}".encode()], fds)
        except OSError as exc:
            raise FactoryGone(f"the candidate factory is gone: {exc}") from None

    def forked(self):
        msg, fds = self._reply(1)
        if len(fds) != 1:
            raise FactoryGone("the candidate factory answered without a pidfd")
        return int(msg), fds[0]

    def kill(self):
        try:
            self.sock.send(b"kill")
        except OSError as exc:
            raise FactoryGone(f"the candidate factory is gone: {exc}") from None
        msg, _ = self._reply()
        return None if msg == b"-" else int(msg)


class FactoryGone(OSError):
    """F died (it cannot be signalled by candidates, so this is a bug or an outside kill);
    the slot ends after the current verdict and S starts a new one."""


class Candidate:
    """A candidate process C (forked by F) and the harness's ends of its pipes and
    output files."""

    def __init__(self, factory, mode, cpu_seconds, stdin_data=None):
        self.factory = factory
        self.out = os.memfd_create("stdout", 0)
        self.err = os.memfd_create("stderr", 0)
        req_r, self.req = os.pipe()
        self.resp, resp_w = os.pipe()
        if mode == "call":
            inp = os.open("/dev/null", os.O_RDONLY)
        else:
            inp = os.memfd_create("stdin", 0)
            os.write(inp, stdin_data.encode())
            os.lseek(inp, 0, os.SEEK_SET)
        try:
            factory.fork(mode, cpu_seconds, [inp, self.out, self.err, req_r, resp_w])
        finally:
            for fd in (inp, req_r, resp_w):
                os.close(fd)
        self.pid = self.pidfd = None
        self.status = None
        self.ended = False
        self.reader = FrameReader()
        self.poll = None

    def ready(self):
        """Its pid and pidfd, once F has answered the fork."""
        if self.pidfd is None:
            self.pid, self.pidfd = self.factory.forked()

    def end(self):
        """Kill it and everything it started (F does, and reaps them); its wait status."""
        if not self.ended:
            self.ended = True
            self.ready()
            self.status = self.factory.kill()
        return self.status

    def finish(self, output_bytes):
        """Kill it and everything it started; its output, capped, and how it ended."""
        try:
            self.end()
        finally:
            stdout, out_size = _read_capped(self.out, output_bytes)
            stderr, _ = _read_capped(self.err, output_bytes)
            for fd in (self.pidfd, self.out, self.err, self.req, self.resp):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        return {"stdout": stdout, "stderr": stderr, "stdout_bytes": out_size, **_status_text(self.status)}

    def gone_text(self, during="during a call"):
        if self.status is None:
            return "the candidate process stopped answering"
        info = _status_text(self.status)
        if "signal" in info:
            return f"the candidate process was killed by {info['signal']} {during}"
        return f"the candidate process exited with status {info['exit_code']} {during}"

    def send(self, obj):
        write_frame(self.req, obj)

    def recv(self, deadline):
        """The next frame, waiting at most until `deadline` (CandidateTimeout) or the
        process's end (CandidateGone; its status is then known)."""
        while True:
            try:
                frame = self.reader.next()
            except ValueError:
                frame = {"x": {"type": "ProtocolError", "message": "malformed frame from the candidate"}}
            if frame is not None:
                return frame
            left = deadline - time.monotonic()
            if left <= 0:
                raise CandidateTimeout()
            if self.poll is None:
                self.ready()
                self.poll = select.poll()
                self.poll.register(self.resp, select.POLLIN)
                # Its exit, even if a child of its still holds the response pipe open.
                self.poll.register(self.pidfd, select.POLLIN)
            events = dict(self.poll.poll(left * 1000))
            if not events:
                continue
            data = b""
            if self.resp in events:
                try:
                    data = os.read(self.resp, 1 << 20)
                except OSError:
                    data = b""
            if not data:
                if self.resp not in events and not events.get(self.pidfd):
                    continue
                self.end()
                raise CandidateGone()
            self.reader.feed(data)


def test_namespace(job, names, modules, make_function):
    """The namespace the tests run in: the program's functions (as proxies), its imported
    modules, the setup code and the bound names. Returns (namespace, setup error or None)."""
    ns = {"__name__": "__test__", "__builtins__": builtins}
    if job.get("proxy_all"):
        # The tests name the program's functions directly (MBPP), and sometimes the modules
        # it imported (`math.isclose`): those are given here as this process's own copies,
        # for modules already loaded (the preloaded standard library) -- a name the
        # candidate reports is never a reason to import, and run, anything new here.
        for alias, modname in modules.items():
            if modname in sys.modules:
                ns[alias] = sys.modules[modname]
        for name in names:
            ns[name] = make_function(name)
    for i, code in enumerate(job["_setup_code"]):
        try:
            exec(code, ns)
        except BaseException as exc:  # noqa: B036
            if job["setup"][i].get("required", True):
                return ns, _describe(exc, f"<setup {i}>")
    for alias, name in job.get("bind", {}).items():
        ns[alias] = make_function(name)
    return ns, None


class Harness:
    """A's side of one job: the only code that touches candidate processes and the only
    place tests run."""

    def __init__(self, job, factory, limits, spare=None):
        self.job = job
        self.factory = factory
        self.limits = limits
        self.deadline = time.monotonic() + float(job["timeout"])
        self.spare = spare
        self.cand = None
        self.timed_out = False
        self.calls = 0

    def call(self, name, args, kwargs):
        if self.timed_out:
            raise CandidateTimeout()
        cand = self.cand
        if cand is None or cand.ended:
            raise CandidateGone(self.gone)
        try:
            payload = {"f": name, "a": encode_value(list(args)),
                       "k": {"d": [[k, encode_value(v)] for k, v in kwargs.items()]}}
        except (TypeError, ValueError, RecursionError) as exc:
            raise TypeError(str(exc)) from None
        self.calls += 1
        try:
            cand.send(payload)
            msg = cand.recv(self.deadline)
        except CandidateTimeout:
            self.timed_out = True
            raise
        except FactoryGone:
            raise
        except (CandidateGone, OSError):
            cand.end()
            self.gone = cand.gone_text()
            raise CandidateGone(self.gone) from None
        if "v" in msg:
            try:
                return decode_value(msg["v"])
            except (ValueError, TypeError, RecursionError, OverflowError):
                raise ValueError("malformed value from the candidate") from None
        raise _rebuild_exception(msg.get("x") if isinstance(msg.get("x"), dict) else {})

    def run_call(self):
        job = self.job
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
        cand = self.spare or Candidate(self.factory, "call", self.limits["cpu_seconds"])
        self.spare = None
        self.cand = cand
        self.gone = "the candidate process is gone"
        try:
            cand.send({"program": job["program"], "limits": job.get("limits") or {}})
            msg = cand.recv(self.deadline)
        except CandidateTimeout:
            self.timed_out = True
            msg = {"load_error": {"type": "Timeout", "message": f"timeout after {job['timeout']}s while loading the program"}}
        except FactoryGone:
            raise
        except (CandidateGone, OSError):
            cand.end()
            msg = {"load_error": {"type": "Exited", "message": cand.gone_text("while loading")}}
        if "loaded" not in msg:
            err = msg.get("load_error") if isinstance(msg.get("load_error"), dict) else {"type": "ProtocolError"}
            return {"load_error": err, "timed_out": self.timed_out}
        names = [n for n in msg.get("loaded") or [] if isinstance(n, str)]
        modules = {k: v for k, v in (msg.get("modules") or {}).items() if isinstance(k, str) and isinstance(v, str)}
        harness = self

        def proxy(name):
            def candidate_function(*args, **kwargs):
                return harness.call(name, args, kwargs)

            candidate_function.__name__ = name
            return candidate_function

        ns, setup_error = test_namespace(job, names, modules, proxy)
        if setup_error is not None:
            return {"setup_error": setup_error}
        results = []
        for i, code in enumerate(job["_step_code"]):
            if self.timed_out:
                results.append({"ok": False, "error": {"type": "Timeout", "message": "not run: out of time"}, "run": False})
                continue
            try:
                exec(code, ns)
                results.append({"ok": True})
            except CandidateTimeout:
                results.append({"ok": False, "error": {"type": "Timeout", "message": f"timeout after {job['timeout']}s"}})
            except CandidateGone as exc:
                results.append({"ok": False, "error": {"type": "CandidateDied", "message": str(exc)}})
            except BaseException as exc:  # noqa: B036 - every failure is a failed test
                results.append({"ok": False, "error": _describe(exc, f"<test {i}>")})
        return {"steps": results, "timed_out": self.timed_out, "names": names, "calls": self.calls}

    def run_stdio(self):
        job = self.job
        try:
            compile(job["program"], "<candidate>", "exec")
        except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
            return {"load_error": _describe(exc)}
        runs = []
        per_run = float(job["timeout"])
        frame = {"program": job["program"], "limits": job.get("limits") or {}}
        cpu = self.limits["cpu_seconds"]
        for data in job["inputs"]:
            start = time.monotonic()
            cand = Candidate(self.factory, "stdio", cpu, stdin_data=data)
            timed_out = False
            try:
                cand.ready()
                cand.send(frame)
            except FactoryGone:
                raise
            except OSError:
                pass  # it died before reading its program; its status says how
            else:
                poller = select.poll()
                poller.register(cand.pidfd, select.POLLIN)
                timed_out = not poller.poll(per_run * 1000)
            info = cand.finish(self.limits["output_bytes"])
            info["timed_out"] = timed_out
            info["seconds"] = round(time.monotonic() - start, 4)
            runs.append(info)
        return {"runs": runs}

    def finish(self):
        """Everything the job started is dead before its verdict leaves."""
        out = {}
        for cand in (self.cand, self.spare):
            if cand is not None:
                info = cand.finish(self.limits["output_bytes"])
                if cand is self.cand:
                    out = info
        self.cand = self.spare = None
        return out


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


def _remove_sysv_ipc():
    """System V shared memory, semaphores and message queues outlive processes: remove
    whatever a job created in the slot's IPC namespace, so the next job cannot read it."""
    for kind, fn in (("shm", "shmctl"), ("sem", "semctl"), ("msg", "msgctl")):
        try:
            with open(f"/proc/sysvipc/{kind}") as f:
                lines = f.read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 1:
                if kind == "sem":
                    libc.semctl(ctypes.c_int(int(fields[1])), ctypes.c_int(0), ctypes.c_int(0))  # IPC_RMID
                else:
                    getattr(libc, fn)(ctypes.c_int(int(fields[1])), ctypes.c_int(0), None)


def slot_main(job_fd, out_fd, isolated, base_limits):
    """A: PID 1 of a slot's namespaces; runs jobs one at a time, each in fresh processes.

    Namespaces are set up once per slot (creating and tearing them down costs ~10 ms here,
    more than a whole HumanEval program); between jobs every process a job started is
    killed (by F, the candidate factory) and the private /tmp, /dev/shm and System V IPC
    are emptied, so nothing of a job survives it. The next call job's candidate is forked
    while this job's verdict travels; F, which forks it, has never held any job.
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
        scratch = ["/tmp"]
        if os.path.isdir("/dev/shm"):
            try:
                mount("tmpfs", "/dev/shm", "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "size=16m,nr_inodes=256,mode=0700")
                scratch.append("/dev/shm")
            except OSError:
                pass
        workdir = "/tmp"
    else:
        import tempfile

        workdir = tempfile.mkdtemp(prefix="assay-slot-")
        scratch = [workdir]
    base_limits["workdir"] = workdir
    factory = Factory(base_limits, isolated)
    cpu = base_limits["cpu_seconds"]
    spare = Candidate(factory, "call", cpu)
    while True:
        # Exactly one frame: the next job stays in the pipe until this slot is ready for it.
        job = read_frame_exact(job_fd)
        if job is None:
            break
        alive = True
        h = Harness(job, factory, base_limits, spare)
        try:
            if job["kind"] != "call":
                spare.finish(base_limits["output_bytes"])
                h.spare = None
            result = h.run_call() if job["kind"] == "call" else h.run_stdio()
        except BaseException as exc:  # noqa: B036 - a harness bug must still produce a verdict
            import traceback

            alive = not isinstance(exc, FactoryGone)
            result = {"harness_error": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-2000:]}
        try:
            result.update(h.finish())
            if alive:
                spare = Candidate(factory, "call", cpu)  # F forks it while the verdict travels
        except FactoryGone as exc:
            alive = False
            result.setdefault("harness_error", str(exc))
        write_frame(out_fd, {"id": job["id"], "result": result})
        del h, job, result
        if not alive:
            break  # S sees this slot end and starts a new one
        for path in scratch:
            _wipe(path)
        if isolated:
            _remove_sysv_ipc()
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


def start_slot(config, keep=()):
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
        for fd in keep:
            os.close(fd)
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


def start_zygote(config):
    """Z: forked before S has read any job, it forks every slot, so no slot (and no
    candidate) ever inherits memory that held another job's tests. S asks over a
    SEQPACKET socket; Z answers with H's pid and S's two pipe ends (SCM_RIGHTS)."""
    s_sock, z_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid:
        z_sock.close()
        s_sock.settimeout(30)  # S never blocks for good on its factory
        return s_sock, pid
    s_sock.close()
    prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    nul = os.open("/dev/null", os.O_RDWR)
    os.dup2(nul, 0)
    os.dup2(nul, 1)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # slots' H processes are reaped by the kernel
    while True:
        try:
            msg = z_sock.recv(16)
        except InterruptedError:
            continue
        if not msg:
            os._exit(0)
        hpid, job_w, out_r = start_slot(config, keep=(z_sock.fileno(),))
        socket.send_fds(z_sock, [json.dumps(hpid).encode()], [job_w, out_r])
        os.close(job_w)
        os.close(out_r)


def zygote_slot(sock):
    sock.send(b"slot")
    msg, fds, _, _ = socket.recv_fds(sock, 64, 2)
    if len(fds) != 2:
        raise OSError("the slot factory did not answer")
    return json.loads(msg), fds[0], fds[1]


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
                try:  # the candidates' own PID namespace, nested in the slot's (see Factory)
                    _check(libc.unshare(ctypes.c_int(CLONE_NEWPID)), "unshare")
                    npid = os.fork()
                    if npid == 0:
                        os._exit(0 if os.getpid() == 1 else 1)
                    _, st = os.waitpid(npid, 0)
                    ok["nested_pid"] = True if st == 0 else "the nested namespace's first process is not PID 1"
                except OSError as exc:
                    ok["nested_pid"] = str(exc)
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
    config["isolated"] = all(caps.get(k) is True for k in ("namespaces", "private_tmp", "drop_capabilities", "nested_pid"))
    caps.update({"uid": os.getuid(), "python": sys.version.split()[0], "isolated": config["isolated"],
                 "rlimit_nproc_enforced": os.getuid() != 0})
    write_frame(1, {"hello": caps})
    gc.collect()
    gc.freeze()  # forked children do not copy the preloaded heap by touching it
    zygote, zygote_pid = start_zygote(config)
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
                try:
                    pid, job_w, out_r = zygote_slot(zygote)
                except OSError as exc:  # the factory is gone: nothing more can run
                    for job in queue:
                        reply(job, {"harness_error": f"the sandbox cannot start a slot: {exc}"})
                    queue.clear()
                    break
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
                if slot["job"] is not None:
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
    try:
        serve(json.loads(sys.argv[1]))
    except (BrokenPipeError, ConnectionError):
        pass  # the client is gone: slots see their job pipes close and exit
