"""Provides ProfilerQueries: the spec's questions to a run (sites, patterns, growth, a leak?).

They only read what the run built: the analysis (metrics, verdict, culprits, fed by the
intake) and the profiler's snapshots (sites across snapshots, the latest whole one). Kept
apart from the collection so that the facade, MemoryProfiler, stays short.
"""

from __future__ import annotations

from typing import Any

from memtui.engine.analysis import AnalysedProcess
from memtui.engine.culprits.patterns import (
    LeakingTraceback,
    allocation_patterns,
    leaking_tracebacks,
)
from memtui.engine.facts.snapshot import AllocationStat, MemorySnapshot
from memtui.engine.profiler.options import require
from memtui.engine.profiler.snapshots import ProfilerSnapshots
from memtui.errors import TracingError, UsageError
from memtui.probe.census import take_census


class ProfilerQueries(AnalysedProcess):
    """The spec's query methods of MemoryProfiler."""

    in_process: bool
    _snaps: ProfilerSnapshots

    def _current_sites_snapshot(self) -> MemorySnapshot | None:
        """The snapshot whose sites answer now (a fresh one while tracing)."""
        raise NotImplementedError

    def track_object_type(self, obj_type: type) -> None:
        """Count instances of exactly ``obj_type`` in every census (see get_object_stats)."""
        if not isinstance(obj_type, type):
            raise UsageError(f"track_object_type needs a class, got {obj_type!r}")
        if obj_type not in self._snaps.tracked_types:
            self._snaps.tracked_types.append(obj_type)

    def get_object_stats(self) -> dict[type, int]:
        """Live instances of each tracked type, counted now."""
        if not self.in_process:
            raise TracingError("object counts need the profiler inside the process")
        return dict(take_census(track=self._snaps.tracked_types).tracked)

    def get_object_counts(self) -> dict[str, int]:
        """Live gc-tracked objects by type name, counted now."""
        if not self.in_process:
            raise TracingError("object counts need the profiler inside the process")
        return dict(take_census(track=self._snaps.tracked_types).counts)

    def get_top_memory_consumers(self, n: int = 10) -> list[AllocationStat]:
        """The ``n`` allocation sites holding the most memory (now, or at the last snapshot)."""
        snap = self._current_sites_snapshot()
        return (
            self._snaps.sites.with_growth(snap.get_top_stats(limit=n)) if snap is not None else []
        )

    def get_leaking_tracebacks(self) -> list[LeakingTraceback]:
        """Allocation sites whose retained memory grew consistently across snapshots."""
        return leaking_tracebacks(self._snaps.sites, self.detector.verdict.state != "ok")

    def analyze_allocation_patterns(self) -> dict[str, Any]:
        """Suspicious patterns: growing sites, types and containers; uncollectable garbage."""
        patterns = allocation_patterns(self._snaps.sites, self._snaps.latest)
        named = [{**s.to_dict(), "description": s.detail} for s in self.culprits.suspects()]
        patterns["suspicious"] = named + patterns["suspicious"]
        patterns["signatures"] = named
        patterns["growing_types"] = [d for d in named if d["kind"] == "growing_type"]
        patterns["triage"] = self.culprits.triage().to_dict()
        return patterns

    def analyze_growth_pattern(self) -> dict[str, Any]:
        """Growth rate, fit, projection and leak verdict of the memory series so far."""
        v = self.detector.final_verdict()
        current = self.metrics.current_mb
        return {
            "rate_mb_per_hour": v.rate_mb_per_hour,
            "r_squared": v.r_squared,
            "projected_24h_mb": current + max(v.rate_mb_per_hour, 0.0) * 24.0,
            "is_leak": v.leak_detected,
            "confidence": v.confidence,
            "state": v.state,
            "reason": v.reason,
            "projected_oom_hours": v.projected_oom_hours,
            "samples": self.metrics.samples,
            "duration_hours": self.metrics.duration_s / 3600.0,
            "current_mb": current,
        }

    def confirm_memory_leak(self, confidence: float = 0.95) -> bool:
        """True when a leak is detected with at least ``confidence`` (0..1)."""
        require(0 <= confidence <= 1, f"confidence must be in [0, 1], got {confidence!r}")
        v = self.detector.final_verdict()
        return bool(v.leak_detected and v.confidence >= confidence)
