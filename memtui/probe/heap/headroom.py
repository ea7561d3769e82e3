"""Provides fork_headroom: may this process fork a copy-on-write child without risking its memory?

A forked child that walks the heap shares the parent's pages until either writes to them; in the
worst case every page the parent owns is copied while the child lives, and the child's own
bookkeeping comes on top. memtui forks only when that worst case fits in both the machine's
MemAvailable and the cgroup's ``memory.max - memory.current`` (v2; v1's limit_in_bytes and
usage_in_bytes), so a heap dump or summary can never get the target OOM-killed. Standard library
only; also holds the guard that tells at-fork hooks a fork is memtui's own.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import NamedTuple

from memtui.probe.cgroup import cgroup_free

_fork_lock = threading.Lock()
_forking_thread: int | None = None


class Headroom(NamedTuple):
    """The verdict and the figures behind it (bytes; None where unknown)."""

    ok: bool
    needed_bytes: int
    mem_available_bytes: int | None
    cgroup_free_bytes: int | None
    reason: str
    """Why the fork was refused ('' when ok)."""


def mem_available(meminfo: str = "/proc/meminfo") -> int | None:
    try:
        with open(meminfo, "rb") as f:
            for line in f:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def fork_headroom(
    rss_bytes: int,
    child_bytes: int,
    available: int | None = None,
    cg_free: int | None = None,
    what: str = "a copy-on-write child",
) -> Headroom:
    """May we fork? ``rss_bytes``: what the parent could dirty while the child lives;
    ``child_bytes``: what the child allocates itself. ``available``/``cg_free`` override the
    readings (tests). ``what`` names the consumer in the reason (an in-place walk asks too)."""
    needed = max(0, int(rss_bytes)) + max(0, int(child_bytes))
    avail = mem_available() if available is None else available
    cg = cgroup_free() if cg_free is None else cg_free
    reason = ""
    if cg is not None and cg < needed:
        reason = (
            f"the cgroup has {cg / 1e6:,.0f} MB free under its memory limit, {what} "
            f"may need {needed / 1e6:,.0f} MB"
        )
    elif avail is not None and avail < needed:
        reason = (
            f"{avail / 1e6:,.0f} MB of memory available, {what} may need {needed / 1e6:,.0f} MB"
        )
    return Headroom(not reason, needed, avail, cg, reason)


@contextlib.contextmanager
def memtui_fork() -> Iterator[None]:
    """Wrap memtui's own os.fork() calls: at-fork hooks in the child (is_memtui_fork) then know
    the child is a short-lived heap walker, not a worker that needs an agent of its own."""
    global _forking_thread
    with _fork_lock:
        _forking_thread = threading.get_ident()
        try:
            yield
        finally:
            _forking_thread = None


def name_child(name: str) -> None:
    """In a forked walker: show as ``name`` in ps/top (``/proc/self/comm``), so process
    managers, ``memtui attach --children`` and people can tell it from the program's workers.
    Raw os calls only (no buffered I/O in a forked child)."""
    try:
        fd = os.open("/proc/self/comm", os.O_WRONLY)
    except OSError:
        return
    try:
        os.write(fd, name.encode()[:15])
    except OSError:
        pass
    finally:
        os.close(fd)


def is_memtui_child(comm: str) -> bool:
    """A process named by name_child(): a heap summary's or heap dump's walker."""
    return comm.startswith(("memtui-summary", "memtui-heapdump"))


def is_memtui_fork() -> bool:
    """True in the child of a fork made inside memtui_fork() (the forking thread continues
    there, with the same ident)."""
    return _forking_thread is not None and _forking_thread == threading.get_ident()
