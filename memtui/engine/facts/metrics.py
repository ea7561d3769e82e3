"""Provides MemoryMetrics: current, peak and average memory, growth, GC and allocation rates.

Every figure is kept online (running sums) or in the probe's bounded multi-resolution
History, so a week of samples costs what an hour does.
"""

from __future__ import annotations

from dataclasses import dataclass

from memtui.probe.allocator import AllocatorReading
from memtui.probe.gcstats import GcReading
from memtui.probe.history import History, HistoryPoint
from memtui.probe.memory import MemoryReading

MIB: float = 1024.0 * 1024.0
HISTORY_FIELDS: tuple[str, ...] = ("rss_bytes", "vms_bytes", "traced_bytes", "allocated_blocks")


@dataclass(frozen=True, slots=True)
class GcRates:
    """GC activity over the profiled time."""

    collections: tuple[int, int, int]
    collections_per_minute: tuple[float, float, float]
    total_time_s: float
    time_fraction: float
    """Share of wall time spent in collections (0..1); 0 when pauses were not timed."""
    max_pause_s: float
    collected: tuple[int, int, int]
    uncollectable: tuple[int, int, int]


class MemoryMetrics:
    """Online memory metrics of one process."""

    def __init__(self, history: History | None = None) -> None:
        self.history = history if history is not None else History(HISTORY_FIELDS)
        self.samples = 0
        self.start_t_s: float | None = None
        self.last_t_s: float | None = None
        self.start_bytes = 0
        self.current_bytes = 0
        self.peak_bytes = 0
        self.min_bytes = 0
        self.vms_bytes = 0
        self._area_byte_s = 0.0
        self._sum_bytes = 0.0
        self.traced_bytes = 0
        self.peak_traced_bytes = 0
        self.allocated_blocks = 0
        self._first_blocks: int | None = None
        self.gc_first: GcReading | None = None
        self.gc_last: GcReading | None = None
        self.allocator: AllocatorReading | None = None
        self.uss_bytes: int | None = None
        self.pss_bytes: int | None = None
        self.swap_bytes: int | None = None

    def add_sample(
        self,
        t_s: float,
        memory: MemoryReading,
        traced_bytes: int = 0,
        allocator: AllocatorReading | None = None,
        gc: GcReading | None = None,
    ) -> None:
        """Fold in one sample taken at ``t_s`` (seconds on the profiler's clock)."""
        rss = memory.rss_bytes
        if self.samples == 0:
            self.start_t_s = t_s
            self.start_bytes = self.peak_bytes = self.min_bytes = rss
        elif self.last_t_s is not None and t_s > self.last_t_s:
            # Trapezoid rule: a time-weighted average is right when intervals vary.
            self._area_byte_s += (t_s - self.last_t_s) * (rss + self.current_bytes) / 2.0
        self.samples += 1
        self._sum_bytes += rss
        self.last_t_s = t_s
        self.current_bytes = rss
        self.vms_bytes = memory.vms_bytes
        self.peak_bytes = max(self.peak_bytes, rss)
        self.min_bytes = min(self.min_bytes, rss)
        if memory.uss_bytes is not None:
            self.uss_bytes, self.pss_bytes = memory.uss_bytes, memory.pss_bytes
            self.swap_bytes = memory.swap_bytes
        self.traced_bytes = traced_bytes
        self.peak_traced_bytes = max(self.peak_traced_bytes, traced_bytes)
        if allocator is not None:
            self.allocator = allocator
            self.allocated_blocks = allocator.allocated_blocks
            if self._first_blocks is None:
                self._first_blocks = allocator.allocated_blocks
        if gc is not None:
            if self.gc_first is None:
                self.gc_first = gc
            self.gc_last = gc
        self.history.append(
            t_s,
            (
                float(rss),
                float(memory.vms_bytes),
                float(traced_bytes),
                float(self.allocated_blocks),
            ),
        )

    @property
    def duration_s(self) -> float:
        if self.start_t_s is None or self.last_t_s is None:
            return 0.0
        return self.last_t_s - self.start_t_s

    @property
    def current_mb(self) -> float:
        return self.current_bytes / MIB

    @property
    def peak_mb(self) -> float:
        return self.peak_bytes / MIB

    @property
    def average_bytes(self) -> float:
        if self.duration_s > 0:
            return self._area_byte_s / self.duration_s
        return self._sum_bytes / self.samples if self.samples else 0.0

    @property
    def average_mb(self) -> float:
        return self.average_bytes / MIB

    @property
    def net_growth_mb_per_hour(self) -> float:
        """End-to-end change over the run (not a trend: see LeakDetector for that)."""
        if self.duration_s <= 0:
            return 0.0
        return (self.current_bytes - self.start_bytes) / MIB / (self.duration_s / 3600.0)

    @property
    def block_rate_per_s(self) -> float:
        """Net change of Python's allocated blocks per second (allocations minus frees)."""
        if self._first_blocks is None or self.duration_s <= 0:
            return 0.0
        return (self.allocated_blocks - self._first_blocks) / self.duration_s

    def gc_rates(self) -> GcRates | None:
        """GC frequency and duration since the first sample; None before any GC reading."""
        last, first = self.gc_last, self.gc_first
        if last is None or first is None:
            return None
        minutes = self.duration_s / 60.0
        per_minute = tuple(c / minutes if minutes > 0 else 0.0 for c in last.collections)
        total = sum(last.time_s)
        return GcRates(
            collections=last.collections,
            collections_per_minute=(per_minute[0], per_minute[1], per_minute[2]),
            total_time_s=total,
            time_fraction=total / self.duration_s if self.duration_s > 0 else 0.0,
            max_pause_s=last.max_pause_s,
            collected=last.collected,
            uncollectable=last.uncollectable,
        )

    def series(
        self, since: float | None = None, max_points: int | None = None
    ) -> list[HistoryPoint]:
        return self.history.points(since=since, max_points=max_points)
