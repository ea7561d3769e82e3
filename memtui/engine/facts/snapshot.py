"""Provides MemorySnapshot: memory, allocation sites, object counts and GC state at one instant."""

from __future__ import annotations

import datetime as _dt
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

from memtui.engine.facts.sourcemap import function_at
from memtui.probe.census import CensusResult
from memtui.probe.gcstats import GcReading
from memtui.probe.memory import MemoryReading
from memtui.probe.signals import LeakSignals
from memtui.probe.tracing import Frame, SiteTotals, TraceKey, is_user_file, site_index

MIB: float = 1024.0 * 1024.0
KeyType = Literal["lineno", "filename", "traceback"]
SizeKind = Literal["held", "window"]
_KEY_TYPES: tuple[str, ...] = ("lineno", "filename", "traceback")


@dataclass(frozen=True, slots=True)
class AllocationTraceback:
    """Frames of an allocation, most recent call first; str() is its site: the first frame in
    the program's own code (not the standard library, installed packages or memtui), so that
    an allocation made inside ``json.loads`` is the line of the program that called it."""

    frames: tuple[Frame, ...]
    site: int | None = None
    """Index of the site in ``frames``; None: found by memtui.probe.tracing.site_index."""

    @property
    def site_index(self) -> int:
        if self.site is not None and 0 <= self.site < len(self.frames):
            return self.site
        return site_index(self.frames)

    @property
    def site_frame(self) -> Frame:
        """(filename, lineno) of the site; ('<unknown>', 0) without frames."""
        return self.frames[self.site_index] if self.frames else ("<unknown>", 0)

    def __iter__(self) -> Iterator[Frame]:
        return iter(self.frames)

    def __len__(self) -> int:
        return len(self.frames)

    def __str__(self) -> str:
        if not self.frames:
            return "<unknown>"
        filename, lineno = self.site_frame
        return f"{filename}:{lineno} in {function_at(filename, lineno)}"

    def format(self) -> list[str]:
        """One line per frame, outermost call first, like a Python traceback."""
        return [
            f'  File "{fn}", line {ln}, in {function_at(fn, ln)}'
            for fn, ln in reversed(self.frames)
        ]


@dataclass(frozen=True, slots=True)
class AllocationStat:
    """Memory still allocated from one site (or file, or traceback) when the snapshot was taken."""

    traceback: AllocationTraceback
    size: int
    """Bytes."""
    count: int
    """Memory blocks."""
    size_kind: SizeKind = "held"
    """'held': bytes the site holds now (tracemalloc traced all along); 'window': bytes that a
    short tracing window saw it allocate and keep (watch mode), not what it holds."""
    growth_bytes: int | None = None
    """Change of the site's bytes since watching started (None until two observations)."""
    growth_mb_per_hour: float | None = None
    """The site's growth rate (None until two observations)."""

    @property
    def size_mb(self) -> float:
        return self.size / MIB

    @property
    def user_code(self) -> bool:
        """False when the whole traceback is library code (the site is then its innermost
        frame, see memtui.probe.tracing.site_index)."""
        return is_user_file(self.file)

    @property
    def file(self) -> str:
        """The site's file: the program's own code that led to the allocation."""
        return self.traceback.site_frame[0]

    @property
    def line(self) -> int:
        return self.traceback.site_frame[1]

    @property
    def function(self) -> str:
        return function_at(self.file, self.line) if self.line else ""

    @property
    def location(self) -> str:
        """'file:line in function' (just the file for filename statistics)."""
        return f"{self.file}:{self.line} in {self.function}" if self.line else self.file

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "function": self.function,
            # Growth first: what a leak hunter reads (size_mb is a window figure in watch mode).
            "growth_mb_per_hour": None
            if self.growth_mb_per_hour is None
            else round(self.growth_mb_per_hour, 4),
            "growth_mb": None if self.growth_bytes is None else round(self.growth_bytes / MIB, 6),
            "size_mb": round(self.size_mb, 6),
            "count": self.count,
            "size_kind": self.size_kind,
            "user_code": self.user_code,
        }

    def __str__(self) -> str:
        if self.growth_mb_per_hour is not None:
            grown = (self.growth_bytes or 0) / MIB
            return f"{self.location}: +{grown:.2f} MiB, {self.growth_mb_per_hour:+.1f} MB/h"
        return f"{self.location}: {self.size_mb:.2f} MiB in {self.count:,} blocks"


@dataclass(frozen=True, slots=True)
class AllocationDiff:
    """How one site's allocated memory changed between two snapshots (self minus other)."""

    traceback: AllocationTraceback
    size: int
    size_diff: int
    count: int
    count_diff: int

    @property
    def size_mb(self) -> float:
        return self.size / MIB

    @property
    def size_diff_mb(self) -> float:
        return self.size_diff / MIB

    @property
    def location(self) -> str:
        return str(self.traceback)

    def __str__(self) -> str:
        return f"{self.location}: {self.size_diff / MIB:+.2f} MiB ({self.count_diff:+,} blocks)"


Grouped = dict[TraceKey, tuple[int, int, AllocationTraceback]]


def _group(by_traceback: dict[TraceKey, tuple[int, int]], key_type: str) -> Grouped:
    """Totals per group key: the site (``lineno``), the site's file (``filename``) or the
    whole traceback; each with the traceback to show (for a site, the heaviest one)."""
    if key_type not in _KEY_TYPES:
        raise ValueError(f"unknown key_type {key_type!r}; use 'lineno', 'filename' or 'traceback'")
    if key_type == "traceback":
        return {
            k: (size, count, AllocationTraceback(k)) for k, (size, count) in by_traceback.items()
        }
    out: dict[TraceKey, list[int]] = {}
    shown: dict[TraceKey, tuple[int, AllocationTraceback]] = {}
    for frames, (size, count) in by_traceback.items():
        index = site_index(frames) if frames else 0
        site = frames[index] if frames else ("<unknown>", 0)
        key: TraceKey = ((site[0], 0),) if key_type == "filename" else (site,)
        acc = out.setdefault(key, [0, 0])
        acc[0] += size
        acc[1] += count
        if size > shown.get(key, (-1, None))[0]:
            tb = AllocationTraceback(key) if key_type == "filename" else None
            shown[key] = (size, tb or AllocationTraceback(frames or key, index))
    return {k: (v[0], v[1], shown[k][1]) for k, v in out.items()}


@dataclass(frozen=True, slots=True)
class MemorySnapshot:
    """Memory state at a point in time.

    ``traces`` is None when tracemalloc was off; ``census`` None when no census was taken.
    """

    timestamp: float
    """Wall-clock seconds since the epoch."""
    elapsed_s: float
    """Seconds since profiling started."""
    memory: MemoryReading
    traces: SiteTotals | None = None
    census: CensusResult | None = None
    gc: GcReading | None = None
    pid: int = field(default_factory=os.getpid)
    signals: LeakSignals | None = None
    """Named containers, caches, handlers, threads, fds (in-process snapshots only)."""

    @property
    def total_memory_bytes(self) -> int:
        return self.memory.rss_bytes

    @property
    def memory_mb(self) -> float:
        return self.memory.rss_bytes / MIB

    @property
    def traced_memory_bytes(self) -> int:
        return self.traces.traced_bytes if self.traces else 0

    @property
    def object_counts(self) -> dict[str, int]:
        return dict(self.census.counts) if self.census else {}

    def top_types(self, limit: int = 20) -> dict[str, int]:
        counts = self.census.counts if self.census else {}
        return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit])

    def get_top_stats(self, limit: int = 10, key_type: KeyType = "lineno") -> list[AllocationStat]:
        """The sites holding the most memory, largest first (empty when tracemalloc was off)."""
        if self.traces is None:
            return []
        grouped = _group(self.traces.by_traceback, key_type)
        ranked = sorted(grouped.items(), key=lambda kv: (-kv[1][0], kv[0]))
        return [AllocationStat(tb, size, count) for _, (size, count, tb) in ranked[: max(0, limit)]]

    def compare_to(
        self, other: MemorySnapshot, key_type: KeyType = "lineno"
    ) -> list[AllocationDiff]:
        """Per-site change from ``other`` to this snapshot, biggest absolute change first."""
        mine = _group(self.traces.by_traceback, key_type) if self.traces else {}
        theirs = _group(other.traces.by_traceback, key_type) if other.traces else {}
        diffs = []
        for key in mine.keys() | theirs.keys():
            size, count, tb = mine.get(key) or (0, 0, theirs[key][2])
            old_size, old_count, _ = theirs.get(key) or (0, 0, tb)
            if size == old_size and count == old_count:
                continue
            diffs.append(AllocationDiff(tb, size, size - old_size, count, count - old_count))
        diffs.sort(key=lambda d: (-abs(d.size_diff), -d.size, d.traceback.frames))
        return diffs

    def to_report_dict(self, top_types: int = 20) -> dict[str, Any]:
        """The spec's per-snapshot report entry."""
        when = _dt.datetime.fromtimestamp(self.timestamp, tz=_dt.timezone.utc)
        return {
            "timestamp": when.replace(tzinfo=None).isoformat(timespec="seconds"),
            "memory_mb": round(self.memory_mb, 3),
            "traced_memory_mb": round(self.traced_memory_bytes / MIB, 3) if self.traces else None,
            "top_types": self.top_types(top_types),
        }


class SnapshotLog:
    """Snapshot summaries kept for a report: bounded, the first and the latest always kept.

    Beyond ``max_items`` the middle is thinned by half, so a week of snapshots still spans the
    whole run at a coarser step.
    """

    def __init__(self, max_items: int = 500, recent: int = 50) -> None:
        self.max_items = max_items
        self.recent = recent
        self._items: list[MemorySnapshot] = []

    def append(self, snap: MemorySnapshot) -> None:
        self._items.append(snap)
        if len(self._items) > self.max_items:
            head, middle, tail = (
                self._items[:1],
                self._items[1 : -self.recent],
                self._items[-self.recent :],
            )
            self._items = head + middle[::2] + tail

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> tuple[MemorySnapshot, ...]:
        return tuple(self._items)


def light_census(census: CensusResult | None, keep: int = 50) -> CensusResult | None:
    """The census without its long tail, for snapshot summaries kept for days."""
    if census is None:
        return None
    top = dict(sorted(census.counts.items(), key=lambda kv: -kv[1])[:keep])
    return census._replace(counts=top, tracked={}, largest_containers=())
