"""Provides the spec's module functions: analyze_snapshot_growth and validate_consistency."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from memtui.engine.culprits.sites import SiteGrowthTracker
from memtui.engine.detect.detector import fit_trend
from memtui.engine.facts.snapshot import MemorySnapshot
from memtui.errors import UsageError
from memtui.probe.tracing import TraceKey

MIB: float = 1024.0 * 1024.0


def analyze_snapshot_growth(
    snapshots: Sequence[MemorySnapshot], threshold_mb_per_hour: float = 0.0, limit: int = 10
) -> dict[str, Any]:
    """Growth of memory, allocation sites and object types across ``snapshots`` (oldest first).

    Returns rate_mb_per_hour and r_squared of RSS, traced memory's rate, and the sites and
    types that grew consistently (rising in most intervals, not just first-to-last).
    """
    snaps = sorted(snapshots, key=lambda s: s.timestamp)
    if len(snaps) < 2:
        raise UsageError(f"analyze_snapshot_growth needs at least 2 snapshots, got {len(snaps)}")
    t0 = snaps[0].timestamp
    ts = [s.timestamp - t0 for s in snaps]
    rss_fit = fit_trend(ts, [float(s.memory.rss_bytes) for s in snaps], threshold_mb_per_hour)
    traced_fit = fit_trend(ts, [float(s.traced_memory_bytes) for s in snaps], threshold_mb_per_hour)
    sites: SiteGrowthTracker[TraceKey] = SiteGrowthTracker()
    types: SiteGrowthTracker[str] = SiteGrowthTracker()
    for t, s in zip(ts, snaps, strict=True):
        if s.traces is not None:
            sites.observe(t, s.traces.by_traceback, limit=100)
        if s.census is not None:
            types.observe(t, {k: (v, v) for k, v in s.census.counts.items()}, limit=100)
    from memtui.engine.culprits.patterns import leaking_tracebacks

    growing_sites = leaking_tracebacks(sites)[:limit]
    growing_types = [
        {
            "type": g.key,
            "first_count": g.first_size_bytes,
            "count": g.size_bytes,
            "objects_per_hour": g.growth_mb_per_hour * MIB,
        }
        for g in types.leaking()[:limit]
    ]
    return {
        "snapshots": len(snaps),
        "duration_hours": ts[-1] / 3600.0,
        "start_memory_mb": snaps[0].memory_mb,
        "end_memory_mb": snaps[-1].memory_mb,
        "rate_mb_per_hour": rss_fit.rate_mb_per_hour,
        "r_squared": rss_fit.r_squared,
        "confidence": rss_fit.confidence,
        "traced_rate_mb_per_hour": traced_fit.rate_mb_per_hour,
        "growing_sites": [
            {
                "location": g.location,
                "size_mb": g.size_mb,
                "growth_mb_per_hour": g.growth_mb_per_hour,
            }
            for g in growing_sites
        ],
        "growing_types": growing_types,
    }


def validate_consistency(
    reports: Sequence[Mapping[str, Any]], tolerance_mb_per_hour: float = 5.0
) -> dict[str, Any]:
    """Check that repeated runs agree: same leak verdict, growth rates within a tolerance.

    Returns {'consistent': bool, 'issues': [...], ...}; never raises on disagreement, so a
    caller decides whether to assert.
    """
    if not reports:
        raise UsageError("validate_consistency needs at least one report")
    verdicts = [bool(r["leak_detection"]["leak_detected"]) for r in reports]
    rates = [float(r["leak_detection"]["leak_rate_mb_per_hour"] or 0.0) for r in reports]
    peaks = [float(r["summary"]["peak_memory_mb"] or 0.0) for r in reports]
    issues = []
    if len(set(verdicts)) > 1:
        issues.append(f"leak verdicts differ between runs: {verdicts}")
    spread = max(rates) - min(rates)
    if spread > tolerance_mb_per_hour:
        issues.append(
            f"growth rates differ by {spread:.2f} MB/h (> {tolerance_mb_per_hour} MB/h): "
            f"{[round(r, 2) for r in rates]}"
        )
    return {
        "consistent": not issues,
        "runs": len(reports),
        "leak_verdicts": verdicts,
        "growth_rates_mb_per_hour": rates,
        "growth_rate_spread_mb_per_hour": spread,
        "peak_memory_mb": peaks,
        "peak_memory_stdev_mb": statistics.pstdev(peaks) if len(peaks) > 1 else 0.0,
        "issues": issues,
    }
