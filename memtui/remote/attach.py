"""Provides attach/detach: inject the stdlib-only probe's agent into a running CPython.

How the code gets in, and why at these points
---------------------------------------------
A debugger stops a process anywhere: inside malloc holding an arena lock, halfway through a
dict resize, inside ``take_gil``, in a C call that holds the GIL. Running Python code there
(pyrasite's and the classic recipe's ``call PyGILState_Ensure()`` + ``PyRun_SimpleString`` at
whatever point the process stopped) can deadlock or corrupt the target. So we only run Python
code where the interpreter itself allows other Python code to run:

1. **Entry of ``PyEval_SaveThread``** (breakpoint). The thread holds the GIL and is about to
   release it for a blocking call (``Py_BEGIN_ALLOW_THREADS``): at that instant any other
   thread may run arbitrary Python code, so every invariant must hold. We run the payload there
   in that thread (it already holds the GIL, so no ``PyGILState_Ensure`` wait). The native
   attacher of pymontrace picks the same safe point; CPython 3.14 (PEP 768) runs
   ``sys.remote_exec`` scripts at the eval-breaker check, the same class of point.
2. **The eval loop's pending-call check** (``Py_AddPendingCall``), for a main thread busy in
   bytecode that never releases the GIL. Queuing the call is not Python code; we do it at the
   entry of ``PyObject_Malloc`` (a function entry: the thread holds no allocator lock there; the
   trick memray's gdb script uses), and the main thread runs it at its next eval-breaker check,
   where signal handlers run.
3. **A thread parked in a blocking system call with the GIL free** (e.g. ``time.sleep(600)``
   in the main thread, nothing else running): after a bounded wait for 1 and 2 we stop, check
   that the main thread sits in a syscall wrapper (so it holds no libc lock) and that no thread
   holds the GIL (``PyGILState_Check`` in every thread), and only then do
   ``PyGILState_Ensure`` / ``PyRun_SimpleString`` / ``PyGILState_Release`` in it. When a
   thread holds the GIL inside a long C call, no point is safe: we give up, cleanly.

The payload run at those points is tiny and never blocks: it starts a new thread
(``_thread.start_new_thread``) that inserts the probe zip on ``sys.path`` and calls
``memtui.probe.agent.start_agent()``. A per-attach token and a deadline make it run at most
once, and never after ``attach`` has given up (a pending call may fire much later).

gdb is only our ptrace engine. gdb 13 cannot make inferior calls on CPUs whose XSAVE area is
larger than it knows (AMX, as on this machine: "Couldn't write extended state status", after
which a sleeping target died with errno 514), so we never use ``call``: we save the general
registers, set up the call frame ourselves (return address: the executable's entry point,
with a temporary breakpoint), continue, read ``$rax`` and restore every register, including
``orig_rax`` so an interrupted system call restarts. Vector registers are not saved; that is
safe because we only call at function entries or inside syscall wrappers, where the ABI makes
them caller-saved. x86-64 only. gdb runs with ``-nx -nh``, waits are bounded, an overdue wait is
ended with gdb's ``interrupt`` (never by killing gdb while breakpoints are inserted), and we
check that the target still runs afterwards. Python >= 3.14 uses ``sys.remote_exec`` instead.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import queue
import re
import secrets
import shutil
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from typing import Literal

from memtui.errors import TargetProcessError
from memtui.probe.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    read_message,
    socket_dir,
    socket_path,
    write_message,
)
from memtui.remote.attach_lock import attach_lock
from memtui.remote.probe_zip import ZIP_PREFIX, build_probe_zip
from memtui.remote.procstate import stopped_reason

GDB_WAIT_S: float = 2.0
"""How long gdb waits for a safe point (1 or 2) before checking for a parked main thread."""
_SYSCALL_FRAME = re.compile(
    r"\b_*(?:GI_+)?(?:libc_)?(?:clock_nanosleep|nanosleep|select|pselect6?|poll|ppoll|"
    r"epoll_wait|epoll_pwait2?|read|readv|recv|recvfrom|recvmsg|accept4?|wait4|waitpid|waitid|"
    r"sigtimedwait|sigwaitinfo|pause|connect|write|send|sendto|sendmsg|msgrcv|semtimedop)"
    r"(?:64)?(?:_nocancel)?\b"
)
_SYMBOLS = (
    "PyEval_SaveThread",
    "PyObject_Malloc",
    "Py_AddPendingCall",
    "PyRun_SimpleString",
    "PyGILState_Ensure",
    "PyGILState_Release",
    "PyGILState_Check",
    "mmap",
)
_REGS = (
    *("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11"),
    *("r12", "r13", "r14", "r15", "rip", "eflags", "orig_rax"),
)


class AttachError(TargetProcessError):
    """The agent could not be injected; the caller watches from outside instead."""


@dataclasses.dataclass(frozen=True, slots=True)
class AttachResult:
    """What attach() did."""

    pid: int
    socket_path: str
    """Where the agent listens, as seen from this process."""
    method: Literal["reused", "gdb", "remote_exec"]
    python_version: str
    seconds: float
    """From the call to the first answered hello."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Target:
    pid: int
    name: str
    uid: int
    gid: int
    inner_pid: int
    """The pid inside the target's own pid namespace (names its socket)."""
    exe: str
    version: tuple[int, int]


# -- inspecting the target --------------------------------------------------------------------
def _ptrace_help(pid: int) -> str:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f"kernel.yama.ptrace_scope is {f.read().strip()}"
    except OSError:
        scope = "no Yama ptrace_scope here"
    return (
        f"no permission to trace pid {pid} ({scope}): attaching needs the same user with "
        "ptrace_scope 0 (sysctl kernel.yama.ptrace_scope=0), or root / CAP_SYS_PTRACE"
    )


def _has_cap_sys_ptrace() -> bool:
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 19 & 1)
    return False


def _elf_machine(path: str) -> int | None:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        head = f.read(20)
        if head[:4] == b"\x7fELF" and len(head) == 20:
            order = "<" if head[5] == 1 else ">"
            return int(struct.unpack(order + "H", head[18:20])[0])
    return None


def _python_version(pid: int, name: str, exe: str) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
    except OSError as exc:
        raise AttachError(f"cannot read the memory map of pid {pid}: {exc}") from None
    found = re.search(r"libpython(\d+)\.(\d+)", maps)
    if found:
        return int(found.group(1)), int(found.group(2))
    if not re.search(r"python", os.path.basename(exe), re.IGNORECASE):
        raise AttachError(f"pid {pid} ({name}) is not a Python process")
    try:
        out = subprocess.run(
            [
                f"/proc/{pid}/exe",
                "-I",
                "-S",
                "-c",
                "import sys;print(sys.implementation.name,*sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            timeout=5.0,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        raise AttachError(f"cannot tell the Python version of pid {pid} ({name}): {exc}") from None
    if len(out) != 3 or out[0] != "cpython":
        raise AttachError(f"pid {pid} ({name}) is not CPython ({' '.join(out) or 'unknown'})")
    return int(out[1]), int(out[2])


def _inspect(pid: int) -> _Target:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        raise TargetProcessError(f"no process with pid {pid}") from None
    except OSError as exc:
        raise TargetProcessError(f"cannot read /proc/{pid}/status: {exc}") from None
    name = status.get("Name", "?").strip()
    if status.get("State", "").strip().startswith("Z"):
        raise TargetProcessError(f"pid {pid} ({name}) has exited (zombie)")
    stopped = stopped_reason(pid)
    if stopped:
        raise AttachError(stopped)
    uid, gid = int(status["Uid"].split()[0]), int(status["Gid"].split()[0])
    inner_pid = int(status.get("NSpid", str(pid)).split()[-1])
    if os.geteuid() != 0 and uid != os.geteuid() and not _has_cap_sys_ptrace():
        raise AttachError(
            f"pid {pid} belongs to uid {uid}, we are uid {os.geteuid()}; " + _ptrace_help(pid)
        )
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError as exc:
        raise AttachError(
            f"cannot see the executable of pid {pid} ({name}): {exc}; " + _ptrace_help(pid)
        ) from None
    ours, theirs = _elf_machine("/proc/self/exe"), _elf_machine(f"/proc/{pid}/exe")
    if theirs is not None and ours is not None and theirs != ours:
        raise AttachError(
            f"pid {pid} ({name}) is built for another architecture "
            f"(ELF machine {theirs}, ours {ours}); run memtui natively next to it"
        )
    return _Target(pid, name, uid, gid, inner_pid, exe, _python_version(pid, name, exe))


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# -- sockets and files ------------------------------------------------------------------------
def _roots(pid: int) -> list[str]:
    return ["", f"/proc/{pid}/root"]


def _hello(path: str, timeout_s: float) -> dict[str, object] | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
        write_message(sock, {"cmd": "hello", "id": 1, "version": PROTOCOL_VERSION})
        reply = read_message(sock)
    except (OSError, ProtocolError):
        return None
    finally:
        sock.close()
    return reply if reply.get("ok") else None


def _answering(target: _Target, timeout_s: float = 1.0) -> tuple[str, dict[str, object]] | None:
    for root in _roots(target.pid):
        path = socket_path(target.inner_pid, target.uid, root)
        if os.path.exists(path):
            reply = _hello(path, timeout_s)
            if reply is not None:
                return path, reply
    return None


def _private_dir(target: _Target) -> tuple[str, str]:
    """(path for us, path for the target) of the target user's socket directory, made 0700."""
    inner = socket_dir(target.uid)
    root = f"/proc/{target.pid}/root"
    host = root + inner if os.path.isdir(root + "/tmp") else inner
    try:
        os.mkdir(host, 0o700)
        os.chmod(host, 0o700)
        if target.uid != os.geteuid():
            os.chown(host, target.uid, target.gid)
    except FileExistsError:
        pass
    except OSError as exc:
        raise AttachError(f"cannot create the socket directory {host!r}: {exc}") from None
    st = os.lstat(host)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != target.uid or st.st_mode & 0o077:
        raise AttachError(
            f"{host!r} is not a private directory of uid {target.uid}; remove it and attach again"
        )
    return host, inner


def _boot_source(
    zip_path: str, token: str, deadline: float, err_path: str, follow_forks: bool = False
) -> str:
    """What the new thread in the target runs: once per token, never after the deadline.

    ``follow_forks``: the target's forked children start their own agent (attach --children).
    """
    follow = "        agent.follow_forks(True)\n" if follow_forks else ""
    boot = (
        "def _memtui_boot(zip_path, token, deadline, err_path):\n"
        "    import os, sys, time\n"
        "    done = sys.__dict__.setdefault('_memtui_attach_tokens', set())\n"
        "    if token in done or time.time() > deadline or os.path.exists(err_path):\n"
        "        return\n"
        "    done.add(token)\n"
        "    try:\n"
        "        if zip_path not in sys.path:\n"
        "            sys.path.insert(0, zip_path)\n"
        "        import memtui.probe.agent as agent\n"
        "        agent.start_agent()\n"
        f"{follow}"
        "    except BaseException as exc:\n"
        "        try:\n"
        "            with open(err_path, 'w') as f:\n"
        "                f.write(type(exc).__name__ + ': ' + str(exc))\n"
        "        except OSError:\n"
        "            pass\n"
        f"_memtui_boot({zip_path!r}, {token!r}, {deadline!r}, {err_path!r})\n"
    )
    # Run at the safe point: binds nothing in __main__, never raises an Exception, never waits.
    return (
        "try:\n"
        f"    __import__('_thread').start_new_thread(exec, ({boot!r}, "
        "{'__name__': '__memtui_attach__'}))\n"
        "except Exception:\n"
        "    pass\n"
    )


# -- gdb as a ptrace engine -------------------------------------------------------------------
class _Gdb:
    """An interactive gdb on pipes: commands in, output scanned for markers and stop events."""

    def __init__(self, gdb: str, pid: int) -> None:
        self.proc = subprocess.Popen(
            [gdb, "-nx", "-nh", "-q", "-nw", "-p", str(pid)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.out = ""
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._marker = 0
        self.call_thread = "1"
        """The gdb thread number injected calls run in."""
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _pump(self, until: float) -> bool:
        """Append available output; False when gdb's output ended."""
        try:
            line = self._lines.get(timeout=max(0.0, min(0.05, until - time.monotonic())))
        except queue.Empty:
            return True
        if line is None:
            self._lines.put(None)
            return False
        self.out += line
        return True

    def send(self, commands: str) -> None:
        assert self.proc.stdin is not None
        # never an empty line: gdb would repeat the previous command (e.g. `continue &`)
        text = "".join(line + "\n" for line in commands.splitlines() if line.strip())
        try:
            self.proc.stdin.write(text)
            self.proc.stdin.flush()
        except OSError:
            pass  # gdb is gone: the next wait says so

    def wait(self, pattern: str, start: int, deadline: float) -> re.Match[str] | None:
        compiled = re.compile(pattern)
        while True:
            found = compiled.search(self.out, start)
            if found or time.monotonic() >= deadline or not self._pump(deadline):
                return found

    def run(self, commands: str, deadline: float) -> str:
        """Send commands, wait until gdb has processed them; their output."""
        self._marker += 1
        mark = f"@@memtui-{self._marker}@@"
        start = len(self.out)
        self.send(f"{commands}\necho \\n{mark}\\n")
        found = self.wait(re.escape(mark), start, deadline)
        if found is None:
            raise _GdbTimeout(self.out[start:])
        return self.out[start : found.start()]

    def value(self, expression: str, deadline: float) -> int | None:
        text = self.run(f'printf "=%ld=\\n", (long)({expression})', deadline)
        found = re.search(r"=(-?\d+)=", text)
        return int(found.group(1)) if found else None

    def close(self) -> None:
        if os.environ.get("MEMTUI_ATTACH_DEBUG"):
            print(self.out, file=sys.stderr)
        if self.proc.poll() is None:
            self.send("detach\nquit")
            try:
                self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # the target is stopped now, not mid-call: the kernel detaches
                self.proc.wait()


class _GdbTimeout(Exception):
    pass


_STOP = (
    r"(?:hit |\n)(Temporary breakpoint|Breakpoint) (\d+),|received signal (SIG\w+)"
    r"|(exited|terminated with signal|no longer exists)"
)
_FAULTS = "SIGSEGV SIGBUS SIGILL SIGFPE SIGABRT SIGTRAP"


class _TargetGone(Exception):
    pass


def _continue_until_stop(g: _Gdb, deadline: float, *, pass_signals: bool) -> re.Match[str] | None:
    """Resume all threads until a breakpoint or signal; at the deadline interrupt them (None)."""
    start = len(g.out)
    g.send("continue &")
    while True:
        hit = g.wait(_STOP, start, deadline)
        if hit is None:
            break
        if hit.group(4):
            raise _TargetGone(hit.group(0))
        if hit.group(3) and pass_signals and hit.group(3) != "SIGINT":
            start = hit.end()  # a signal of the target's own: pass it on and go on
            g.send("continue &")
            continue
        g.run("echo", time.monotonic() + 5.0)
        return hit
    stop = len(g.out)
    g.send("interrupt")
    hit = g.wait(_STOP, stop, time.monotonic() + 5.0)
    if hit is None:
        raise _GdbTimeout("gdb did not stop the target")
    if hit.group(4):
        raise _TargetGone(hit.group(0))
    g.run("echo", time.monotonic() + 5.0)
    return None


def _manual_call(
    g: _Gdb, entry: int, func: int, args: tuple[int, ...], blob: bytes | None, deadline: float
) -> int:
    """Call func(args...) in gdb's current thread without gdb's `call` (see module docstring).

    Raises _CallFailed (registers restored) when the frame cannot be set up, the call faults
    or does not return by ``deadline``.
    """
    size = len(blob) + 1 if blob else 0
    save = "\n".join(f"set $_m_{r} = ${r}" for r in _REGS)
    g.run(f"{save}\nset $_m_sp = ((long)$rsp - 1024 - {size}) & -16", deadline)
    if g.value("(long)$_m_rip != 0 && (long)$_m_rsp != 0 && $_m_sp > 4096", deadline) != 1:
        raise _CallFailed("could not read the thread's registers")
    path = ""
    try:
        checks = [f"(long)$rip == {func}", "(long)$rsp == $_m_sp - 8", f"*(long*)$rsp == {entry}"]
        lines = []
        if blob is not None:
            with tempfile.NamedTemporaryFile(prefix="memtui-blob-", delete=False) as f:
                f.write(blob + b"\0")
                path = f.name
            lines.append(f"restore {path} binary $_m_sp")
            checks.append(f"*(unsigned char*)$_m_sp == {blob[0]}")
        regs = ("rdi", "rsi", "rdx", "rcx", "r8", "r9")
        lines += [
            f"set $rip = {func}",
            "set $rsp = $_m_sp - 8",
            f"set {{long}}($_m_sp - 8) = {entry}",
            *(f"set ${regs[i]} = {'$_m_sp' if a == _BLOB else a}" for i, a in enumerate(args)),
            "set $rax = 0",
            "set $orig_rax = -1",  # after $rip: gdb resets it when the pc is written
        ]
        g.run("\n".join(f"select-frame 0\n{line}" for line in lines), deadline)
        if g.value(" && ".join(checks), deadline) != 1:
            raise _CallFailed("could not set up the call frame")
        g.run(f"tbreak *{entry}", deadline)
        hit = _continue_until_stop(g, deadline, pass_signals=False)
        g.run("delete", time.monotonic() + 5.0)
        if hit is None:
            raise _CallFailed("the injected call did not return in time")
        if hit.group(3):
            g.run(f"handle {_FAULTS} nopass", time.monotonic() + 5.0)  # not to the target
            raise _CallFailed(f"the injected call stopped with {hit.group(3)}")
        result = g.value("$rax", time.monotonic() + 5.0)
        if result is None:
            raise _CallFailed("could not read the call's result")
        return result
    finally:
        # select-frame 0 before each write: writing a register rebuilds gdb's frames, and a
        # write through any other frame would go to the stack instead of the register
        restore = "\n".join(f"select-frame 0\nset ${r} = $_m_{r}" for r in ("rip", *_REGS[:-1]))
        g.run(
            f"thread {g.call_thread}\n{restore}\nselect-frame 0\nset $orig_rax = $_m_orig_rax",
            time.monotonic() + 10.0,
        )
        if (
            g.value(
                "(long)$rip == (long)$_m_rip && (long)$rsp == (long)$_m_rsp", time.monotonic() + 5.0
            )
            != 1
        ):
            raise _CallFailed("could not restore the thread's registers")
        if path:
            os.unlink(path)


_BLOB = -(2**62)
"""Placeholder argument: the address of the blob copied onto the stack."""


class _CallFailed(Exception):
    pass


def _select(g: _Gdb, deadline: float) -> str:
    text = g.run('printf "=%d=\\n", $_thread', deadline)
    found = re.search(r"=(\d+)=", text)
    thread = found.group(1) if found else "1"
    g.call_thread = thread
    return thread


def _inject_gdb(target: _Target, payload: bytes, deadline: float) -> str:
    """Run payload at a safe point; returns how ('savethread', 'pending', 'parked')."""
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError("gdb is not installed; install gdb, e.g. apt-get install gdb")
    if os.uname().machine not in ("x86_64", "amd64"):
        raise AttachError(f"attach by gdb supports x86-64 only, not {os.uname().machine}")
    entry = _entry_point(target.pid)
    g = _Gdb(gdb, target.pid)
    try:
        attached = g.run(
            "set pagination off\nset confirm off\nset width 0\n"
            "set print thread-events off\nset breakpoint pending off\n"
            "handle SIGCHLD SIGALRM SIGPIPE SIGUSR1 SIGUSR2 SIGWINCH SIGURG SIGIO "
            "SIGPROF SIGVTALRM nostop noprint pass",
            deadline,
        )
        if "ptrace: Operation not permitted" in g.out or "Could not attach" in g.out:
            raise AttachError(_ptrace_help(target.pid))
        if "No such process" in g.out or not _alive(target.pid):
            raise AttachError(f"pid {target.pid} exited during attach")
        del attached
        addr: dict[str, int] = {}
        for name in _SYMBOLS:
            value = g.value(f"&{name}", deadline)
            if not value:
                raise AttachError(
                    f"pid {target.pid} ({target.name}): symbol {name} not found; a statically "
                    "linked or stripped Python cannot be attached to (use `memtui run` instead)"
                )
            addr[name] = value
        return _inject_steps(g, target, addr, entry, payload, deadline)
    except _TargetGone:
        raise AttachError(f"pid {target.pid} exited during attach") from None
    except _CallFailed as exc:
        raise AttachError(f"injecting into pid {target.pid} failed: {exc}") from None
    except _GdbTimeout as exc:
        raise AttachError(
            f"gdb stopped answering while attaching to pid {target.pid}: "
            f"{str(exc).strip()[-200:]!r}"
        ) from None
    finally:
        g.close()


def _inject_steps(
    g: _Gdb, target: _Target, addr: dict[str, int], entry: int, payload: bytes, deadline: float
) -> str:
    g.run(f"break *{addr['PyEval_SaveThread']}\nbreak *{addr['PyObject_Malloc']}", deadline)
    save_bp, malloc_bp = _bp_numbers(g)
    wait_until = min(deadline, time.monotonic() + GDB_WAIT_S)
    queued = False
    while True:
        hit = _continue_until_stop(g, wait_until, pass_signals=True)
        if hit is None:
            break
        if hit.group(2) == save_bp:  # 1: the thread holds the GIL and is about to drop it
            g.run("delete", deadline)
            _select(g, deadline)
            _manual_call(g, entry, addr["PyRun_SimpleString"], (_BLOB,), payload, deadline)
            return "savethread"
        if hit.group(2) == malloc_bp and not queued:  # 2: queue a pending call
            g.run(f"delete {malloc_bp}", deadline)
            _select(g, deadline)
            page = (len(payload) // 4096 + 1) * 4096
            buf = _manual_call(g, entry, addr["mmap"], (0, page, 3, 0x22, -1, 0), None, deadline)
            if buf <= 0:
                continue
            with tempfile.NamedTemporaryFile(prefix="memtui-blob-", delete=False) as f:
                f.write(payload + b"\0")
            g.run(f"restore {f.name} binary {buf}", deadline)
            os.unlink(f.name)
            rc = _manual_call(
                g,
                entry,
                addr["Py_AddPendingCall"],
                (addr["PyRun_SimpleString"], buf),
                None,
                deadline,
            )
            queued = rc == 0
            if queued:
                return "pending"
    g.run("delete", deadline)
    # 3: nothing reached a safe point: is the main thread parked with the GIL free?
    frame = g.run("thread 1\nframe 0", deadline)
    if not _SYSCALL_FRAME.search(frame):
        where = re.search(r"in (\S+) \(|#0\s+(\S+) \(", frame)
        func = (where.group(1) or where.group(2)) if where else "unknown code"
        raise AttachError(
            f"no thread of pid {target.pid} reached a safe point within "
            f"{GDB_WAIT_S:.0f} s (main thread busy in {func}, e.g. a long C call "
            "holding the GIL); try again later"
        )
    threads = re.findall(
        r"^(?:\(gdb\) )?\*?\s+(\d+)\s+Thread", g.run("info threads", deadline), re.M
    )
    for thread in threads or ["1"]:
        g.run(f"thread {thread}", deadline)
        _select(g, deadline)
        if _manual_call(g, entry, addr["PyGILState_Check"], (), None, deadline) not in (0,):
            raise AttachError(
                f"thread {thread} of pid {target.pid} holds the GIL in a "
                "blocking call (e.g. a long C call); no safe point to inject at"
            )
    g.run("thread 1", deadline)
    _select(g, deadline)
    state = _manual_call(g, entry, addr["PyGILState_Ensure"], (), None, deadline)
    try:
        _manual_call(g, entry, addr["PyRun_SimpleString"], (_BLOB,), payload, deadline)
    finally:
        _manual_call(g, entry, addr["PyGILState_Release"], (state,), None, deadline)
    return "parked"


def _bp_numbers(g: _Gdb) -> tuple[str, str]:
    numbers = re.findall(r"Breakpoint (\d+) at 0x", g.out)
    if len(numbers) < 2:
        raise AttachError(f"gdb could not set breakpoints in the target: {g.out.strip()[-200:]!r}")
    return numbers[-2], numbers[-1]


def _entry_point(pid: int) -> int:
    """AT_ENTRY from the auxiliary vector: where injected calls return to (a breakpoint)."""
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise AttachError(f"cannot read /proc/{pid}/auxv: {exc}; " + _ptrace_help(pid)) from None
    for key, value in struct.iter_unpack("QQ", raw[: len(raw) // 16 * 16]):
        if key == 9:  # AT_ENTRY
            return int(value)
    raise AttachError(f"pid {pid} has no entry point in its auxiliary vector")


def _inject_remote_exec(
    target: _Target, payload: bytes, host_dir: str, inner_dir: str, deadline: float
) -> None:
    """Python >= 3.14: sys.remote_exec, run by the target's own interpreter (PEP 768)."""
    name = f"attach-{target.inner_pid}-{secrets.token_hex(4)}.py"
    with open(os.path.join(host_dir, name), "wb") as f:
        f.write(payload)
        if target.uid != os.geteuid():
            os.fchown(f.fileno(), target.uid, target.gid)
    code = f"import sys; sys.remote_exec({target.pid}, {os.path.join(inner_dir, name)!r})"
    try:
        subprocess.run(
            [f"/proc/{target.pid}/exe", "-I", "-S", "-c", code],
            check=True,
            capture_output=True,
            text=True,
            timeout=max(1.0, deadline - time.monotonic()),
        )
    except subprocess.CalledProcessError as exc:
        lines = (exc.stderr or "").strip().splitlines() or ["no output"]
        raise AttachError(f"sys.remote_exec failed: {lines[-1]}") from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise AttachError(f"sys.remote_exec failed: {exc}") from None


# -- the public API ---------------------------------------------------------------------------
def attach(pid: int, *, timeout_s: float = 20.0, follow_forks: bool = False) -> AttachResult:
    """Start (or find) the memtui agent inside CPython process ``pid``.

    Args:
        pid: the target process.
        timeout_s: bound on the whole attach, gdb included.
        follow_forks: the target's future forked children start their own agent (a newly
            injected agent only; one already running keeps its setting).

    Returns:
        An AttachResult; method "reused" when an agent already answered.

    Raises:
        TargetProcessError: no such process.
        AttachError: one line saying why injection failed and what would fix it.
    """
    started = time.monotonic()
    target = _inspect(pid)
    version = "{}.{}".format(*target.version)
    found = _answering(target)
    if found is not None:
        return _result(target, found, "reused", version, started)
    host_dir, inner_dir = _private_dir(target)
    with attach_lock(host_dir, target.inner_pid, started + timeout_s):
        found = _answering(target)  # another memtui attached while we waited for the lock
        if found is not None:
            return _result(target, found, "reused", version, started)
        return _attach_locked(target, host_dir, inner_dir, started, timeout_s, follow_forks)


def _attach_locked(
    target: _Target,
    host_dir: str,
    inner_dir: str,
    started: float,
    timeout_s: float,
    follow_forks: bool,
) -> AttachResult:
    zip_host = build_probe_zip(host_dir, uid=target.uid, gid=target.gid)
    zip_inner = os.path.join(inner_dir, os.path.basename(zip_host))
    err_name = f"attach-{target.inner_pid}.err"
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(host_dir, err_name))
    payload = _boot_source(
        zip_inner,
        secrets.token_hex(8),
        time.time() + timeout_s,
        os.path.join(inner_dir, err_name),
        follow_forks,
    ).encode()
    try:
        return _inject_and_wait(target, payload, host_dir, inner_dir, err_name, started, timeout_s)
    except AttachError:
        # an attach that failed stays failed: a pending call firing later finds this and stops
        with contextlib.suppress(OSError), open(os.path.join(host_dir, err_name), "x") as f:
            f.write("cancelled: attach gave up")
        raise


def _inject_and_wait(
    target: _Target,
    payload: bytes,
    host_dir: str,
    inner_dir: str,
    err_name: str,
    started: float,
    timeout_s: float,
) -> AttachResult:
    pid, deadline = target.pid, started + timeout_s
    version = "{}.{}".format(*target.version)
    method: Literal["gdb", "remote_exec"]
    if target.version >= (3, 14):
        method = "remote_exec"
        _inject_remote_exec(target, payload, host_dir, inner_dir, deadline)
    else:
        method = "gdb"
        _inject_gdb(target, payload, deadline)
    if not _alive(pid):
        raise AttachError(f"pid {pid} exited during attach")
    while time.monotonic() < deadline:
        found = _answering(target, timeout_s=max(0.1, min(1.0, deadline - time.monotonic())))
        if found is not None:
            return _result(target, found, method, version, started)
        if not _alive(pid):
            raise AttachError(f"pid {pid} exited during attach")
        with contextlib.suppress(OSError), open(os.path.join(host_dir, err_name)) as f:
            raise AttachError(f"the agent did not start in pid {pid}: {f.read().strip()}")
        time.sleep(0.05)
    raise AttachError(
        f"the agent of pid {pid} did not answer within {timeout_s:g} s (its main "
        "thread never reached a safe point); the probe starts if it does soon"
    )


def _result(
    target: _Target,
    found: tuple[str, dict[str, object]],
    method: Literal["reused", "gdb", "remote_exec"],
    version: str,
    started: float,
) -> AttachResult:
    path, hello = found
    return AttachResult(
        pid=target.pid,
        socket_path=path,
        method=method,
        python_version=str(hello.get("python") or version),
        seconds=time.monotonic() - started,
    )


def attach_quietly(pid: int, timeout_s: float = 15.0) -> str | None:
    """attach --children: the agent socket of ``pid`` (attaching, following its forks), or
    None when it is not a CPython we can attach to (a shell, a C helper, gone)."""
    try:
        return attach(pid, timeout_s=timeout_s, follow_forks=True).socket_path
    except TargetProcessError:  # AttachError included: not ours to watch
        return None


def detach(pid: int) -> bool:
    """Stop the agent of ``pid`` and remove its files; False when no agent was there."""
    uid: int | None
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
        with open(f"/proc/{pid}/status") as f:
            nspid = [line for line in f if line.startswith("NSpid:")]
        inner = int(nspid[0].split()[-1]) if nspid else pid
    except OSError:
        uid, inner = None, pid
    stopped = False
    for root in _roots(pid):
        path = socket_path(inner, uid, root)
        if not os.path.exists(path):
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        try:
            sock.connect(path)
            write_message(sock, {"cmd": "hello", "id": 1, "version": PROTOCOL_VERSION})
            read_message(sock)
            write_message(sock, {"cmd": "detach", "id": 2})
            stopped = bool(read_message(sock).get("ok"))
        except (OSError, ProtocolError):
            continue
        finally:
            sock.close()
        end = time.monotonic() + 3.0
        while os.path.exists(path) and time.monotonic() < end:
            time.sleep(0.02)
        _cleanup(os.path.dirname(path), inner)
        break
    return stopped


def _cleanup(directory: str, inner_pid: int) -> None:
    """Remove our attach files, and the probe zips once no other agent socket remains."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(directory, f"attach-{inner_pid}.err"))
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(f"attach-{inner_pid}-") and name.endswith(".py"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
    live = [
        n
        for n in names
        if re.fullmatch(r"agent-(\d+)\.sock", n) and os.path.exists(f"/proc/{n[6:-5]}")
    ]  # a dead pid's socket is stale
    if live:
        return
    for name in names:
        if name.startswith(ZIP_PREFIX) and name.endswith(".zip"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


__all__ = ["AttachError", "AttachResult", "attach", "detach"]
