"""Provides detect_memory_limit: the real ceiling a process runs into, for OOM projection.

Why: "hours to OOM" against physical RAM is wrong in a container; the cgroup limit or an
address-space rlimit is usually hit first. The smallest finite limit wins.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LimitSource = Literal["cgroup", "rlimit_as", "physical"]
_UNLIMITED_CGROUP = 1 << 60  # cgroup v1 reports "no limit" as a huge page-rounded number


@dataclass(frozen=True, slots=True)
class MemoryLimit:
    """A memory ceiling in bytes and where it came from."""

    limit_bytes: int
    source: LimitSource


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    if not text or text == "max":
        return None
    try:
        value = int(text)
    except ValueError:
        return None
    return value if 0 < value < _UNLIMITED_CGROUP else None


def _cgroup_limit(pid: int | None, root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """memory.max (v2) or memory.limit_in_bytes (v1) of the process's cgroup and its parents."""
    proc = f"/proc/{pid if pid is not None else 'self'}/cgroup"
    try:
        lines = Path(proc).read_text().splitlines()
    except OSError:
        return None
    best: int | None = None
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, rel = parts
        if controllers == "":
            base, fname = root, "memory.max"
        elif "memory" in controllers.split(","):
            base, fname = root / "memory", "memory.limit_in_bytes"
        else:
            continue
        here = base / rel.lstrip("/")
        # Walk up to the mount root: a parent's limit applies too.
        while True:
            value = _read_int(here / fname)
            if value is not None and (best is None or value < best):
                best = value
            if here == base or base not in here.parents:
                break
            here = here.parent
    return best


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
