"""Provides CulpritAnalysis: who is leaking (signatures) and what kind of memory grows (triage).

One object per watched process, fed the same way by the in-process profiler and by an agent
session, so reports and the monitor name the same culprits.
"""

from __future__ import annotations

from typing import Any

from memtui.engine.culprits.retainers import RetainerGrowth
from memtui.engine.culprits.signatures import SignatureTracker, Suspect
from memtui.engine.culprits.triage import Triage, triage_rss
from memtui.engine.facts.frames import HeapSummary
from memtui.probe.census import CensusResult
from memtui.probe.gcstats import GcReading
from memtui.probe.signals import LeakSignals

TRIAGE_POINTS: int = 2048
"""Samples kept for triage; when full, every other one goes, so the run is still spanned."""

TriageSample = tuple[float, float, float | None, float | None, float | None]


class CulpritAnalysis:
    """Leak signatures across snapshots plus RSS triage across samples; bounded memory."""

    def __init__(self) -> None:
        self.signatures = SignatureTracker()
        self.retainers = RetainerGrowth()
        """Containers named by path across heap summaries (full-heap census too)."""
        self.start_t = 0.0
        """Time (in the owner's clock) that 'first seen' is counted from."""
        self._samples: list[TriageSample] = []
        self._stride = 1
        self._skipped = 0

    def observe_sample(
        self,
        t_s: float,
        rss_bytes: float,
        traced_bytes: float | None = None,
        allocated_blocks: float | None = None,
        malloc_free_bytes: float | None = None,
    ) -> None:
        """One memory sample (None for what this source cannot see)."""
        self._skipped += 1
        if self._skipped < self._stride:
            return
        self._skipped = 0
        self._samples.append((t_s, rss_bytes, traced_bytes, allocated_blocks, malloc_free_bytes))
        if len(self._samples) >= TRIAGE_POINTS:
            self._samples = self._samples[::2]
            self._stride *= 2

    def observe_snapshot(
        self,
        t_s: float,
        signals: LeakSignals | None,
        census: CensusResult | None,
        gc: GcReading | None,
    ) -> None:
        self.signatures.observe(t_s, signals, census, gc)

    def observe_heap_summary(self, t_s: float, summary: HeapSummary) -> None:
        """A heap summary (memtui.probe.heap.summary) taken at ``t_s``."""
        self.retainers.observe(t_s, summary)

    def suspects(self, limit: int = 10) -> list[Suspect]:
        """Containers named by path first (they say what holds the memory and where), then the
        signatures they do not already explain."""
        named = self.retainers.suspects(self.start_t, limit)
        paths = {s.path for s in named if s.path}
        held = {s.holds for s in named if s.holds}
        rest = []
        for s in self.signatures.suspects():
            if s.name in paths or any(p.startswith(s.name + ".") for p in paths):
                continue  # the same container, named with its growth by the heap summaries
            if s.kind == "growing_type" and s.name in held:
                continue  # the type that fills a named container
            rest.append(s)
        return (named + rest)[:limit]

    def triage(self) -> Triage:
        return triage_rss(self._samples)

    def to_report(self, limit: int = 10) -> dict[str, Any]:
        """The report's leak_detection additions: suspects and triage."""
        return {
            "suspects": [s.to_dict() for s in self.suspects(limit)],
            "triage": self.triage().to_dict(),
            "heap": self.retainers.to_report(self.start_t),
        }
