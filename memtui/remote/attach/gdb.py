"""Provides gdb as a ptrace engine: calls into the target without gdb's `call` (see safepoint)."""

from __future__ import annotations

import os
import queue
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time

from memtui.remote.attach.target import AttachError, ptrace_help

REGS = (
    *("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11"),
    *("r12", "r13", "r14", "r15", "rip", "eflags", "orig_rax"),
)


# -- gdb as a ptrace engine -------------------------------------------------------------------
class Gdb:
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
            raise GdbTimeout(self.out[start:])
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


class GdbTimeout(Exception):
    pass


_STOP = (
    r"(?:hit |\n)(Temporary breakpoint|Breakpoint) (\d+),|received signal (SIG\w+)"
    r"|(exited|terminated with signal|no longer exists)"
)


_FAULTS = "SIGSEGV SIGBUS SIGILL SIGFPE SIGABRT SIGTRAP"


class TargetGone(Exception):
    pass


def continue_until_stop(g: Gdb, deadline: float, *, pass_signals: bool) -> re.Match[str] | None:
    """Resume all threads until a breakpoint or signal; at the deadline interrupt them (None)."""
    start = len(g.out)
    g.send("continue &")
    while True:
        hit = g.wait(_STOP, start, deadline)
        if hit is None:
            break
        if hit.group(4):
            raise TargetGone(hit.group(0))
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
        raise GdbTimeout("gdb did not stop the target")
    if hit.group(4):
        raise TargetGone(hit.group(0))
    g.run("echo", time.monotonic() + 5.0)
    return None


def manual_call(
    g: Gdb, entry: int, func: int, args: tuple[int, ...], blob: bytes | None, deadline: float
) -> int:
    """Call func(args...) in gdb's current thread without gdb's `call` (see module docstring).

    Raises CallFailed (registers restored) when the frame cannot be set up, the call faults
    or does not return by ``deadline``.
    """
    size = len(blob) + 1 if blob else 0
    save = "\n".join(f"set $_m_{r} = ${r}" for r in REGS)
    g.run(f"{save}\nset $_m_sp = ((long)$rsp - 1024 - {size}) & -16", deadline)
    if g.value("(long)$_m_rip != 0 && (long)$_m_rsp != 0 && $_m_sp > 4096", deadline) != 1:
        raise CallFailed("could not read the thread's registers")
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
            *(f"set ${regs[i]} = {'$_m_sp' if a == BLOB else a}" for i, a in enumerate(args)),
            "set $rax = 0",
            "set $orig_rax = -1",  # after $rip: gdb resets it when the pc is written
        ]
        g.run("\n".join(f"select-frame 0\n{line}" for line in lines), deadline)
        if g.value(" && ".join(checks), deadline) != 1:
            raise CallFailed("could not set up the call frame")
        g.run(f"tbreak *{entry}", deadline)
        hit = continue_until_stop(g, deadline, pass_signals=False)
        g.run("delete", time.monotonic() + 5.0)
        if hit is None:
            raise CallFailed("the injected call did not return in time")
        if hit.group(3):
            g.run(f"handle {_FAULTS} nopass", time.monotonic() + 5.0)  # not to the target
            raise CallFailed(f"the injected call stopped with {hit.group(3)}")
        result = g.value("$rax", time.monotonic() + 5.0)
        if result is None:
            raise CallFailed("could not read the call's result")
        return result
    finally:
        # select-frame 0 before each write: writing a register rebuilds gdb's frames, and a
        # write through any other frame would go to the stack instead of the register
        restore = "\n".join(f"select-frame 0\nset ${r} = $_m_{r}" for r in ("rip", *REGS[:-1]))
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
            raise CallFailed("could not restore the thread's registers")
        if path:
            os.unlink(path)


BLOB = -(2**62)
"""Placeholder argument: the address of the blob copied onto the stack."""


class CallFailed(Exception):
    pass


def select_call_thread(g: Gdb, deadline: float) -> str:
    text = g.run('printf "=%d=\\n", $_thread', deadline)
    found = re.search(r"=(\d+)=", text)
    thread = found.group(1) if found else "1"
    g.call_thread = thread
    return thread


def entry_point(pid: int) -> int:
    """AT_ENTRY from the auxiliary vector: where injected calls return to (a breakpoint)."""
    try:
        with open(f"/proc/{pid}/auxv", "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise AttachError(f"cannot read /proc/{pid}/auxv: {exc}; " + ptrace_help(pid)) from None
    for key, value in struct.iter_unpack("QQ", raw[: len(raw) // 16 * 16]):
        if key == 9:  # AT_ENTRY
            return int(value)
    raise AttachError(f"pid {pid} has no entry point in its auxiliary vector")
