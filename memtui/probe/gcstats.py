"""Provides garbage-collector activity: counts from gc.get_stats(), pause times from a hook."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GcReading:
    """Cumulative GC activity since the monitor was installed (per generation 0, 1, 2)."""

    collections: tuple[int, int, int]
    collected: tuple[int, int, int]
    uncollectable: tuple[int, int, int]
    time_s: tuple[float, float, float]
    """Seconds spent in collections of each generation while the timing hook was installed."""
    max_pause_s: float
    thresholds: tuple[int, int, int]
    garbage_count: int
    """len(gc.garbage): objects the collector found unreachable but could not free."""
    timed: bool
    """True when time_s comes from the gc.callbacks hook; False when timing is off."""


class GcMonitor:
    """Polls gc.get_stats() (nearly free) and, when asked, times collections with a cheap hook."""

    def __init__(self, time_collections: bool = True) -> None:
        raise NotImplementedError

    def install(self) -> None:
        raise NotImplementedError

    def uninstall(self) -> None:
        raise NotImplementedError

    def read(self) -> GcReading:
        raise NotImplementedError
