"""Provides the memory cgroups of a process: their limits and what is free under them.

One reader for both users: the leak detector's memory ceiling (memtui.engine.detect.memlimit,
"hours to OOM" against the container's limit, not the machine's RAM) and the fork headroom
of heap dumps and summaries (memtui.probe.heap.headroom). A process's cgroup and every
ancestor count: a parent's limit applies too. cgroup v2 (also systemd's hybrid layout, where
v2 is mounted at ``unified``) and v1's memory controller. Standard library only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

CGROUP_ROOT: str = "/sys/fs/cgroup"
UNLIMITED: int = 1 << 60
"""v1 says "no limit" with a huge page-rounded number; anything above this is no limit."""


def read_int(path: str) -> int | None:
    """An integer file of a cgroup ('max' and unreadable files: None)."""
    try:
        with open(path, "rb") as f:
            text = f.read().strip()
    except OSError:
        return None
    if not text or text == b"max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def memory_cgroups(
    pid: int | str = "self", root: str = CGROUP_ROOT
) -> Iterator[tuple[str, str, str]]:
    """(directory, limit file, usage file) of the process's memory cgroups, innermost first,
    up to each hierarchy's root."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2 unified hierarchy
            names = ("memory.max", "memory.current")
            base = root
            hybrid = os.path.join(root, "unified")
            if not os.path.exists(os.path.join(root, "cgroup.controllers")) and os.path.isdir(
                hybrid
            ):
                base = hybrid
        elif "memory" in controllers.split(","):
            names = ("memory.limit_in_bytes", "memory.usage_in_bytes")
            base = os.path.join(root, "memory")
        else:
            continue
        rel = path.strip("/")
        while True:
            yield (os.path.join(base, rel) if rel else base, *names)
            if not rel:
                break
            rel = os.path.dirname(rel)


def cgroup_limit(pid: int | str = "self", root: str = CGROUP_ROOT) -> int | None:
    """The smallest memory limit over the process's cgroups (None: no limit)."""
    best: int | None = None
    for directory, limit_name, _ in memory_cgroups(pid, root):
        limit = read_int(os.path.join(directory, limit_name))
        if limit is not None and 0 < limit < UNLIMITED:
            best = limit if best is None else min(best, limit)
    return best


def cgroup_free(pid: int | str = "self", root: str = CGROUP_ROOT) -> int | None:
    """The least free memory (limit - usage) over the process's cgroups (None: no limit)."""
    best: int | None = None
    for directory, limit_name, usage_name in memory_cgroups(pid, root):
        limit = read_int(os.path.join(directory, limit_name))
        usage = read_int(os.path.join(directory, usage_name))
        if limit is not None and usage is not None and limit < UNLIMITED:
            free = max(0, limit - usage)
            best = free if best is None else min(best, free)
    return best
