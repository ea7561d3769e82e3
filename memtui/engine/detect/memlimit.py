"""Provides detect_memory_limit: the real ceiling a process runs into, for OOM projection.

Why: "hours to OOM" against physical RAM is wrong in a container; the cgroup limit or an
address-space rlimit is usually hit first. The smallest finite limit wins.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from typing import Literal

from memtui.probe.cgroup import cgroup_limit

LimitSource = Literal["cgroup", "rlimit_as", "physical"]


@dataclass(frozen=True, slots=True)
class MemoryLimit:
    """A memory ceiling in bytes and where it came from."""

    limit_bytes: int
    source: LimitSource


def _cgroup_limit(pid: int | None) -> int | None:
    """memory.max (v2) or memory.limit_in_bytes (v1) of the process's cgroup and its parents."""
    return cgroup_limit("self" if pid is None else pid)


def _rlimit_as(pid: int | None) -> int | None:
    try:
        if pid is None or pid == os.getpid():
            soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        else:
            soft, _ = resource.prlimit(pid, resource.RLIMIT_AS)
    except (OSError, ValueError, AttributeError):
        return None
    return None if soft == resource.RLIM_INFINITY or soft <= 0 else int(soft)


def _physical() -> int:
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError):
        return 0


def detect_memory_limit(pid: int | None = None) -> MemoryLimit:
    """The smallest finite limit among cgroup memory.max, RLIMIT_AS and physical memory."""
    candidates: list[tuple[int, LimitSource]] = []
    cg = _cgroup_limit(pid)
    if cg is not None:
        candidates.append((cg, "cgroup"))
    rl = _rlimit_as(pid)
    if rl is not None:
        candidates.append((rl, "rlimit_as"))
    phys = _physical()
    if phys > 0:
        candidates.append((phys, "physical"))
    if not candidates:
        return MemoryLimit(0, "physical")
    value, source = min(candidates, key=lambda c: c[0])
    return MemoryLimit(value, source)
