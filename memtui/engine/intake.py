"""Provides FrameIntake: collector frames, decoded once, fed to one process's analysis.

A collector (memtui.probe.collector) says what it saw in frames: new samples, the latest
census with its leak signals, a heap summary, the ranked allocation sites, markers. The
monitor's AgentSession pulls them from an agent's socket; the in-process MemoryProfiler takes
them from its own collector. Both hand them here, so the same facts make the same metrics,
verdict and culprits whichever way they came (tests/test_one_pipeline.py feeds one frame
stream to both).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

from memtui.engine.analysis import AnalysedProcess, ProcessAnalysis
from memtui.engine.culprits.sites import AllocationSiteTracker
from memtui.engine.detect.detector import LeakEvent
from memtui.engine.facts.frames import AgentFrame, HeapSummary, SiteRow, decode_frame, site_sizes
from memtui.engine.facts.snapshot import MemorySnapshot, SnapshotLog, light_census
from memtui.probe.allocator import AllocatorReading
from memtui.probe.census import CensusResult
from memtui.probe.gcstats import GcReading
from memtui.probe.memory import MemoryReading
from memtui.probe.tracing import TraceKey

MAX_MARKERS: int = 1000


class FrameIntake(AnalysedProcess):
    """What the frames of one process said so far, and its analysis fed from them."""

    def __init__(
        self,
        analysis: ProcessAnalysis,
        pid: int,
        trace_limit: int = 100,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.analysis = analysis
        self.pid = pid
        self.trace_limit = trace_limit
        self.wall = wall
        self.snapshots = SnapshotLog()
        self.seq = 0
        self.gc: GcReading | None = None
        self.census: CensusResult | None = None
        self.first_census: CensusResult | None = None
        self.sites: dict[TraceKey, tuple[int, int]] = {}
        self.site_rows: list[SiteRow] = []
        """The collector's latest ranked sites (memtui.probe.watch rows), in its order."""
        self.site_tracker = AllocationSiteTracker(max_sites=4 * trace_limit)
        """Held sizes over time while the collector traces all along (continuous/external)."""
        self.tracing: dict[str, Any] = {}
        self.new_events: list[LeakEvent] = []
        self.markers: deque[dict[str, Any]] = deque(maxlen=MAX_MARKERS)
        """Labelled instants (memtui.mark in the target), oldest first."""
        self._marker_keys: set[tuple[Any, Any]] = set()
        self.summary_seq = 0
        self.heap_summaries: dict[str, Any] = {}
        """The collector's account of its heap summaries (taken, refused, cost, source)."""
        self.skip_until_s: float | None = None
        """Samples up to this time are known already (replayed from a recording)."""

    @property
    def heap_census(self) -> CensusResult | None:
        """Every live object by type, from the latest heap summary (gc-untracked included)."""
        return self.analysis.heap_census

    @property
    def first_heap_census(self) -> CensusResult | None:
        return self.analysis.first_heap_census

    def take_frame(self, raw: Mapping[str, Any]) -> AgentFrame:
        """One raw frame: decoded here, once (memtui.engine.facts.frames), then analysed."""
        frame = decode_frame(raw)
        self.observe_frame(frame)
        return frame

    def observe_frame(self, frame: AgentFrame) -> list[LeakEvent]:
        """A decoded frame into the analysis; the detector's new events (also queued in
        ``new_events`` for a viewer)."""
        gc_reading = frame.gc or self.gc
        self.gc = gc_reading
        events: list[LeakEvent] = []
        for row in frame.samples:
            if row.seq <= self.seq:
                continue
            self.seq = row.seq
            if self.skip_until_s is not None and row.t_s <= self.skip_until_s + 0.001:
                continue  # already replayed from the recording (it keeps milliseconds)
            blocks = row.allocated_blocks
            allocator = (
                AllocatorReading(allocated_blocks=blocks, malloc_free_bytes=row.malloc_free_bytes)
                if blocks > 0
                else None  # a process watched from outside: its allocator is not seen
            )
            events += self.analysis.observe_sample(
                row.t_s,
                MemoryReading(row.rss_bytes, row.vms_bytes),
                row.traced_bytes,
                allocator,
                gc_reading if allocator is not None else None,
            )
        census = frame.census
        if census is not None and (self.census is None or census != self.census):
            self.census = census
            if self.first_census is None:
                self.first_census = census
            if self.heap_census is None:  # once heap summaries come, they make the snapshots
                self.snapshots.append(self.light_snapshot(census))
            self.analysis.observe_census(
                self.metrics.last_t_s or 0.0, frame.signals, census, frame.gc
            )
        summary = frame.heap_summary
        if summary is not None and summary.seq > self.summary_seq:
            self.observe_heap_summary(summary)
        if frame.heap_summary_state is not None:
            self.heap_summaries = dict(frame.heap_summary_state)
        if frame.tracing_state is not None:
            self.tracing = dict(frame.tracing_state)
        if frame.sites is not None:
            self.observe_sites(frame.sites)
        for m in frame.markers:
            if (m.timestamp_s, m.label) not in self._marker_keys:
                self._marker_keys.add((m.timestamp_s, m.label))
                self.markers.append(
                    {"timestamp": m.timestamp_s, "label": m.label, "source": m.source}
                )
        if len(self._marker_keys) > 2 * MAX_MARKERS:  # bounded like the markers kept
            self._marker_keys = {(m["timestamp"], m["label"]) for m in self.markers}
        self.new_events.extend(events)
        return events

    def observe_heap_summary(self, summary: HeapSummary) -> None:
        """One heap summary: culprits by path, and the full-heap census."""
        self.summary_seq = summary.seq
        taken = summary.taken_at_s or self.metrics.last_t_s or self.wall()
        if self.metrics.start_t_s is not None:
            self.culprits.start_t = self.metrics.start_t_s
        census = self.analysis.observe_heap_summary(taken, summary)
        if census is not None:
            self.snapshots.append(self.light_snapshot(census))

    def observe_sites(self, rows: Sequence[SiteRow]) -> None:
        sites = site_sizes(rows)
        changed = sites != self.sites
        self.sites = sites
        self.site_rows = list(rows)
        if changed and self.size_kind() == "held" and self.metrics.last_t_s is not None:
            self.site_tracker.observe(self.metrics.last_t_s, sites, self.trace_limit)

    def size_kind(self) -> Literal["held", "window"]:
        """What the collector's site sizes mean in its current tracing mode."""
        return "window" if self.tracing.get("mode", "watch") in ("watch", "off") else "held"

    def light_snapshot(self, census: CensusResult | None) -> MemorySnapshot:
        """A snapshot summary kept for the report (top 50 types, no containers)."""
        m = self.metrics
        return MemorySnapshot(
            timestamp=self.wall(),
            elapsed_s=m.duration_s,
            memory=MemoryReading(m.current_bytes, m.vms_bytes),
            census=light_census(census),
            gc=self.gc,
            pid=self.pid,
        )
