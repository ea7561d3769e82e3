"""Provides inject_gdb: run the boot payload at a point where Python code may safely run.

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

import os
import re
import shutil
import tempfile
import time

from memtui.remote.attach.gdb import (
    BLOB,
    CallFailed,
    Gdb,
    GdbTimeout,
    TargetGone,
    continue_until_stop,
    entry_point,
    manual_call,
    select_call_thread,
)
from memtui.remote.attach.target import AttachError, Target, alive, ptrace_help

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


def inject_gdb(target: Target, payload: bytes, deadline: float) -> str:
    """Run payload at a safe point; returns how ('savethread', 'pending', 'parked')."""
    gdb = shutil.which("gdb")
    if gdb is None:
        raise AttachError("gdb is not installed; install gdb, e.g. apt-get install gdb")
    if os.uname().machine not in ("x86_64", "amd64"):
        raise AttachError(f"attach by gdb supports x86-64 only, not {os.uname().machine}")
    entry = entry_point(target.pid)
    g = Gdb(gdb, target.pid)
    try:
        attached = g.run(
            "set pagination off\nset confirm off\nset width 0\n"
            "set print thread-events off\nset breakpoint pending off\n"
            "handle SIGCHLD SIGALRM SIGPIPE SIGUSR1 SIGUSR2 SIGWINCH SIGURG SIGIO "
            "SIGPROF SIGVTALRM nostop noprint pass",
            deadline,
        )
        if "ptrace: Operation not permitted" in g.out or "Could not attach" in g.out:
            raise AttachError(ptrace_help(target.pid))
        if "No such process" in g.out or not alive(target.pid):
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
    except TargetGone:
        raise AttachError(f"pid {target.pid} exited during attach") from None
    except CallFailed as exc:
        raise AttachError(f"injecting into pid {target.pid} failed: {exc}") from None
    except GdbTimeout as exc:
        raise AttachError(
            f"gdb stopped answering while attaching to pid {target.pid}: "
            f"{str(exc).strip()[-200:]!r}"
        ) from None
    finally:
        g.close()


def _inject_steps(
    g: Gdb, target: Target, addr: dict[str, int], entry: int, payload: bytes, deadline: float
) -> str:
    g.run(f"break *{addr['PyEval_SaveThread']}\nbreak *{addr['PyObject_Malloc']}", deadline)
    save_bp, malloc_bp = _bp_numbers(g)
    wait_until = min(deadline, time.monotonic() + GDB_WAIT_S)
    queued = False
    while True:
        hit = continue_until_stop(g, wait_until, pass_signals=True)
        if hit is None:
            break
        if hit.group(2) == save_bp:  # 1: the thread holds the GIL and is about to drop it
            g.run("delete", deadline)
            select_call_thread(g, deadline)
            manual_call(g, entry, addr["PyRun_SimpleString"], (BLOB,), payload, deadline)
            return "savethread"
        if hit.group(2) == malloc_bp and not queued:  # 2: queue a pending call
            g.run(f"delete {malloc_bp}", deadline)
            select_call_thread(g, deadline)
            page = (len(payload) // 4096 + 1) * 4096
            buf = manual_call(g, entry, addr["mmap"], (0, page, 3, 0x22, -1, 0), None, deadline)
            if buf <= 0:
                continue
            with tempfile.NamedTemporaryFile(prefix="memtui-blob-", delete=False) as f:
                f.write(payload + b"\0")
            g.run(f"restore {f.name} binary {buf}", deadline)
            os.unlink(f.name)
            rc = manual_call(
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
        select_call_thread(g, deadline)
        if manual_call(g, entry, addr["PyGILState_Check"], (), None, deadline) not in (0,):
            raise AttachError(
                f"thread {thread} of pid {target.pid} holds the GIL in a "
                "blocking call (e.g. a long C call); no safe point to inject at"
            )
    g.run("thread 1", deadline)
    select_call_thread(g, deadline)
    state = manual_call(g, entry, addr["PyGILState_Ensure"], (), None, deadline)
    try:
        manual_call(g, entry, addr["PyRun_SimpleString"], (BLOB,), payload, deadline)
    finally:
        manual_call(g, entry, addr["PyGILState_Release"], (state,), None, deadline)
    return "parked"


def _bp_numbers(g: Gdb) -> tuple[str, str]:
    numbers = re.findall(r"Breakpoint (\d+) at 0x", g.out)
    if len(numbers) < 2:
        raise AttachError(f"gdb could not set breakpoints in the target: {g.out.strip()[-200:]!r}")
    return numbers[-2], numbers[-1]
