"""Provides ProcessAnalysis: every analysis of one watched process, fed in one place.

The in-process MemoryProfiler and a monitor's AgentSession collect their facts differently
(readings in this process; decoded agent frames), then hand them here: a sample, a census with
its signals, a heap summary. Each analysis (metrics, the leak detector, the culprit engine) is
wired once, in this class, so a new one reaches the profiler, ``memtui run``, ``attach`` and
``--pid`` alike.
"""

from __future__ import annotations

from memtui.engine.culprits.analysis import CulpritAnalysis
from memtui.engine.detect.detector import LeakDetector, LeakEvent
from memtui.engine.detect.memlimit import MemoryLimit
from memtui.engine.facts.frames import HeapSummary, heap_census
from memtui.engine.facts.metrics import MemoryMetrics
from memtui.probe.allocator import AllocatorReading
from memtui.probe.census import CensusResult
from memtui.probe.gcstats import GcReading
from memtui.probe.memory import MemoryReading
from memtui.probe.signals import LeakSignals


class ProcessAnalysis:
    """Metrics, leak verdict and culprits of one process (bounded memory, days long)."""

    def __init__(
        self,
        growth_threshold_mb_per_hour: float,
        alert_threshold_mb: float | None,
        memory_limit: MemoryLimit,
    ) -> None:
        self.memory_limit = memory_limit
        self.metrics = MemoryMetrics()
        self.detector = LeakDetector(
            growth_threshold_mb_per_hour=growth_threshold_mb_per_hour,
            alert_threshold_mb=alert_threshold_mb,
            memory_limit_bytes=memory_limit.limit_bytes,
        )
        self.culprits = CulpritAnalysis()
        self.heap_census: CensusResult | None = None
        """Every live object by type, from the latest heap summary (gc-untracked included)."""
        self.first_heap_census: CensusResult | None = None

    def observe_sample(
        self,
        t_s: float,
        memory: MemoryReading,
        traced_bytes: int | None,
        allocator: AllocatorReading | None,
        gc: GcReading | None,
    ) -> list[LeakEvent]:
        """One memory sample (None for what the source cannot see); the detector's new events."""
        self.metrics.add_sample(t_s, memory, traced_bytes or 0, allocator, gc)
        self.detector.update(t_s, float(memory.rss_bytes))
        free = allocator.malloc_free_bytes if allocator is not None else None
        self.culprits.observe_sample(
            t_s,
            float(memory.rss_bytes),
            float(traced_bytes) if traced_bytes else None,
            float(allocator.allocated_blocks) if allocator is not None else None,
            float(free) if free is not None else None,
        )
        return self.detector.drain_events()

    def observe_census(
        self,
        t_s: float,
        signals: LeakSignals | None,
        census: CensusResult | None,
        gc: GcReading | None,
    ) -> None:
        """A snapshot's census of gc-tracked objects, its culprit signals and GC state."""
        self.culprits.observe_snapshot(t_s, signals, census, gc)

    def observe_heap_summary(self, t_s: float, summary: HeapSummary) -> CensusResult | None:
        """A heap summary: containers named by path, and the census of every object (returned,
        None when the summary had none)."""
        self.culprits.observe_heap_summary(t_s, summary)
        census = heap_census(summary)
        if census is not None:
            self.heap_census = census
            if self.first_heap_census is None:
                self.first_heap_census = census
        return census


class AnalysedProcess:
    """Base of whatever watches one process (the profiler, an agent session): its analyses
    under their usual names."""

    analysis: ProcessAnalysis

    @property
    def metrics(self) -> MemoryMetrics:
        return self.analysis.metrics

    @property
    def detector(self) -> LeakDetector:
        return self.analysis.detector

    @property
    def culprits(self) -> CulpritAnalysis:
        return self.analysis.culprits
