"""Provides stopped_reason: is a process stopped (SIGSTOP, Ctrl+Z, a debugger), and what to do.

Why: nothing inside a stopped process runs, so its agent cannot answer and gdb cannot reach a
safe point. Without this check attach, heapdump and detach waited out their timeouts (10-20 s)
and then blamed the wrong thing ("no agent is running", "never reached a safe point").
"""

from __future__ import annotations

import time


def process_state(pid: int) -> str | None:
    """The one-letter state of ``pid`` from /proc (R, S, D, T, t, Z...); None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read().decode(errors="replace")
    except OSError:
        return None
    # the command name (2nd field) may hold spaces and parentheses: the state follows the last ')'
    rest = stat[stat.rfind(")") + 1 :].split()
    return rest[0] if rest else None


def stopped_reason(pid: int, trace_wait_s: float = 3.0) -> str:
    """'' when ``pid`` runs; else one line saying it is stopped and how to resume it.

    A tracing stop ('t') is waited out for ``trace_wait_s`` first: another memtui's gdb holds
    the target that long while it injects (two attaches at once), a person's debugger longer.
    """
    state = process_state(pid)
    deadline = time.monotonic() + trace_wait_s
    while state == "t" and time.monotonic() < deadline:
        time.sleep(0.05)
        state = process_state(pid)
    if state == "T":
        return (
            f"pid {pid} is stopped (SIGSTOP or Ctrl+Z): nothing in it runs to answer; "
            f"resume it with 'kill -CONT {pid}' and try again"
        )
    if state == "t":
        return (
            f"pid {pid} is stopped by a debugger (ptrace): nothing in it runs to answer; "
            "detach the debugger and try again"
        )
    return ""


def is_gone(pid: int) -> bool:
    """The process exited (no /proc entry, or a zombie nobody reaped yet)."""
    return process_state(pid) in (None, "Z", "X")
