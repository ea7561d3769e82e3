"""Provides ProfilerSnapshots: the spec's snapshots, made on the collector's census schedule.

A snapshot is the collector's census (analysed already by the intake) plus what only the
in-process API shows: a full memory reading (USS, PSS) and tracemalloc's allocation sites
with their tracebacks. The extra readings are taken inside the census step, so they share
its schedule and its CPU budget. Summaries are kept bounded for days (SnapshotLog); the
latest whole snapshot answers get_top_memory_consumers().
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from memtui.engine.culprits.sites import AllocationSiteTracker
from memtui.engine.facts.snapshot import MemorySnapshot, SnapshotLog, light_census
from memtui.engine.profiler.run_recording import RunRecording
from memtui.engine.report.recording import snapshot_payload
from memtui.probe.census import CensusResult, take_census
from memtui.probe.gcstats import GcMonitor
from memtui.probe.heap.summary import light_summary
from memtui.probe.memory import MemoryReading
from memtui.probe.tracing import SiteTotals, take_site_totals

MAX_SNAPSHOTS: int = 500
"""Snapshot summaries kept for the report; beyond this, older ones are thinned by half."""
EARLY_SNAPSHOTS: int = 64
EARLY_SNAPSHOTS_S: float = 600.0
"""Snapshots of the first 10 minutes (at most 64) are all recorded, at snapshot_interval."""


class ProfilerSnapshots:
    """Snapshots of one in-process run: the latest whole, summaries of all, sites over time."""

    def __init__(
        self,
        pid: int,
        trace_limit: int,
        read_memory: Callable[[bool], MemoryReading],
        tracing: Callable[[], bool],
        recording: RunRecording,
    ) -> None:
        self.pid = pid
        self.trace_limit = trace_limit
        self._read_memory = read_memory
        self._tracing = tracing
        self._recording = recording
        self.sites = AllocationSiteTracker(max_sites=4 * trace_limit)
        """Held bytes per allocation site across snapshots (the leaking tracebacks)."""
        self.log = SnapshotLog(MAX_SNAPSHOTS)
        self.latest: MemorySnapshot | None = None
        self.taken = 0
        self.tracked_types: list[type] = []
        self._extra: tuple[MemoryReading, SiteTotals | None] | None = None

    def take_extra(self) -> None:
        """Inside the collector's census step (its schedule, its budget): a full memory
        reading and the tracemalloc sites."""
        memory = self._read_memory(True)
        self._extra = (memory, take_site_totals() if self._tracing() else None)

    def after_census(
        self, census: CensusResult | None, wall_s: float, elapsed_s: float, gc: GcMonitor | None
    ) -> None:
        """The collector's census (analysed already) with the extra readings: a snapshot."""
        extra, self._extra = self._extra, None
        memory, traces = extra if extra is not None else (self._read_memory(False), None)
        snap = MemorySnapshot(
            timestamp=wall_s,
            elapsed_s=elapsed_s,
            memory=memory,
            traces=traces,
            census=census,
            gc=gc.read() if gc is not None else None,
            pid=self.pid,
        )
        self.record(snap)

    def after_heap_summary(
        self, doc: dict[str, Any], taken_s: float, elapsed_s: float, census: CensusResult | None
    ) -> None:
        """A heap summary (analysed already): a snapshot summary and the recording."""
        memory = self._read_memory(False)
        self.log.append(
            MemorySnapshot(
                timestamp=taken_s,
                elapsed_s=elapsed_s,
                memory=memory,
                census=light_census(census),
                pid=self.pid,
            )
        )
        rec = self._recording.recorder
        if rec is not None and not rec.closed:
            rec.add_snapshot(
                taken_s, {"heap": light_summary(doc)}, kind="heap", rss=memory.rss_bytes
            )

    def take_now(self, wall_s: float, elapsed_s: float, census: bool) -> MemorySnapshot:
        """A snapshot outside the schedule (the profiler is not running)."""
        memory = self._read_memory(True)
        traces = take_site_totals() if self._tracing() else None
        return MemorySnapshot(
            timestamp=wall_s,
            elapsed_s=elapsed_s,
            memory=memory,
            traces=traces,
            census=take_census(track=self.tracked_types) if census else None,
            pid=self.pid,
        )

    def record(self, snap: MemorySnapshot) -> None:
        self.taken += 1
        if snap.traces is not None:
            self.sites.observe(snap.elapsed_s, snap.traces.by_traceback, self.trace_limit)
        self.latest = snap
        self.log.append(
            dataclasses.replace(snap, traces=None, census=light_census(snap.census), signals=None)
        )
        rec = self._recording.recorder
        if rec is not None and not rec.closed:
            # The recorder keeps periodic snapshots 5 min apart; a short run (a CI job, a
            # program killed after seconds) keeps its first ones all, as asked.
            early = snap.elapsed_s < EARLY_SNAPSHOTS_S and self.taken <= EARLY_SNAPSHOTS
            kind = "early" if early else "periodic"
            rec.add_snapshot(snap.timestamp, snapshot_payload(snap), kind, snap.memory.rss_bytes)
