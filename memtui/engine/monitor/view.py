"""Provides pure builders that turn engine state into the parts of a MonitorFrame.

Every source uses these, so the monitor shows what the report says, computed the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from memtui.engine.culprits.signatures import Suspect
from memtui.engine.detect.detector import LeakVerdict
from memtui.engine.facts.metrics import MemoryMetrics
from memtui.engine.facts.snapshot import AllocationStat
from memtui.engine.facts.sourcemap import function_at
from memtui.engine.monitor.frame import (
    AllocatorRow,
    GcView,
    ObjectRow,
    SeriesPoint,
    SuspectView,
    VerdictView,
)
from memtui.probe.census import CensusResult
from memtui.probe.gcstats import GcReading
from memtui.probe.tracing import TraceKey, site_frame

MIB: float = 1024.0 * 1024.0


def series_points(metrics: MemoryMetrics, max_points: int = 600) -> tuple[SeriesPoint, ...]:
    """The whole history, at most ``max_points`` points: RSS mean per bucket, traced if known."""
    points = metrics.series(max_points=max_points)
    start = metrics.start_t_s or 0.0
    out = []
    for p in points:
        traced = p.mean[2] if len(p.mean) > 2 and p.maximum[2] > 0 else None
        out.append(SeriesPoint(t_s=p.t_end - start, rss_bytes=p.mean[0], traced_bytes=traced))
    return tuple(out)


def suspect_views(suspects: Sequence[Suspect]) -> tuple[SuspectView, ...]:
    """The verdict pane's rows: every named culprit with its path and growth."""
    rows = []
    for s in suspects:
        rows.append(
            SuspectView(
                kind=s.kind,
                path=s.path or s.name,
                detail=s.detail,
                holds=s.holds,
                items=s.items,
                items_per_min=s.items_per_hour / 60.0 if s.items_per_hour is not None else None,
                mb_per_min=s.bytes_per_hour / 60.0 / MIB if s.bytes_per_hour is not None else None,
                retained_bytes=s.retained_bytes,
                first_seen_s=s.first_seen_s,
                chain=s.chain,
                growth=s.growth,
                samples=s.samples,
            )
        )
    return tuple(rows)


def verdict_view(
    verdict: LeakVerdict,
    suspects: Sequence[str] = (),
    memory_limit_source: str | None = None,
    current_bytes: float | None = None,
    now_s: float | None = None,
    suspect_rows: Sequence[SuspectView] = (),
) -> VerdictView:
    """The leak pane; the trend line is anchored at the current memory when a leak is suspected."""
    trend_start = trend_intercept = None
    if verdict.state != "ok" and current_bytes is not None and now_s is not None:
        onset = verdict.onset_s if verdict.onset_s is not None else 0.0
        trend_start = onset
        trend_intercept = current_bytes - verdict.rate_mb_per_hour * MIB * (now_s - onset) / 3600.0
    return VerdictView(
        state=verdict.state,
        rate_mb_per_hour=verdict.rate_mb_per_hour,
        confidence=verdict.confidence,
        projected_oom_hours=verdict.projected_oom_hours,
        memory_limit_source=memory_limit_source,
        reason=verdict.reason,
        suspects=tuple(suspects),
        suspect_rows=tuple(suspect_rows),
        trend_start_s=trend_start,
        trend_intercept_bytes=trend_intercept,
    )


def gc_view(gc: GcReading | None, recent_time_fraction: float | None = None) -> GcView | None:
    if gc is None:
        return None
    return GcView(
        collections=gc.collections,
        collected=gc.collected,
        uncollectable=gc.uncollectable,
        total_time_s=sum(gc.time_s) if gc.timed else None,
        recent_time_fraction=recent_time_fraction if gc.timed else None,
        thresholds=gc.thresholds,
        garbage_count=gc.garbage_count,
    )


def _trace_lines(frames: TraceKey) -> tuple[str, ...]:
    return tuple(f"{fn}:{ln} in {function_at(fn, ln)}" for fn, ln in reversed(frames))


def allocator_rows(
    stats: Sequence[AllocationStat],
    baseline: Mapping[TraceKey, tuple[int, int]] | None = None,
    baseline_age_s: float | None = None,
) -> tuple[AllocatorRow, ...]:
    """Top-allocator rows, one per site (the program's own line).

    Growth and Rate are the site's own (since watching started, from its second window or
    snapshot on). After a baseline, held sizes are compared with the baseline's, and window
    figures give the rate times the time since the baseline.
    """
    base_by_site: dict[tuple[str, int], int] = {}
    if baseline is not None:
        for key, (size, _) in baseline.items():
            if key:
                site = site_frame(key)
                base_by_site[site] = base_by_site.get(site, 0) + size
    rows = []
    for s in stats:
        growth = s.growth_bytes
        rate = s.growth_mb_per_hour
        if baseline is not None and baseline_age_s and baseline_age_s > 0:
            if s.size_kind == "held":
                growth = s.size - base_by_site.get((s.file, s.line), 0)
                rate = growth / MIB / (baseline_age_s / 3600.0)
            elif rate is not None:
                growth = int(rate * MIB * baseline_age_s / 3600.0)
        rows.append(
            AllocatorRow(
                file=s.file,
                line=s.line,
                function=s.function,
                size_bytes=s.size,
                count=s.count,
                growth_bytes=growth,
                growth_mb_per_hour=rate,
                traceback=_trace_lines(s.traceback.frames),
                size_kind=s.size_kind,
            )
        )
    return tuple(rows)


def object_rows(
    census: CensusResult | None,
    baseline: CensusResult | None = None,
    baseline_age_s: float | None = None,
    tracked: Sequence[str] = (),
    limit: int = 50,
    leaking: Sequence[str] = (),
) -> tuple[ObjectRow, ...]:
    """Types by count, with the change since the baseline census (the first one the monitor
    saw, or the user's ``b``); ``leaking`` types are marked and always included."""
    if census is None:
        return ()
    ranked = sorted(census.counts.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]
    shown = {name for name, _ in ranked}
    ranked += [(n, census.counts[n]) for n in leaking if n in census.counts and n not in shown]
    tracked_set = set(tracked)
    leaking_set = set(leaking)
    rows = []
    for name, count in ranked:
        delta: int | None = None
        per_hour: float | None = None
        if baseline is not None:
            delta = count - baseline.counts.get(name, 0)
            if baseline_age_s and baseline_age_s > 0:
                per_hour = delta / (baseline_age_s / 3600.0)
        rows.append(
            ObjectRow(name, count, delta, per_hour, name in tracked_set, name in leaking_set)
        )
    return tuple(rows)


def leaking_types(verdict: VerdictView) -> tuple[str, ...]:
    """The type the top suspect holds, once a leak is suspected (the object pane pins it)."""
    if verdict.state == "ok":
        return ()
    return tuple(r.holds for r in verdict.suspect_rows[:1] if r.holds)


def marker_points(
    markers: Iterable[Mapping[str, Any]], start_t_s: float | None
) -> tuple[tuple[float, str], ...]:
    """Markers ({'timestamp', 'label'}) as (seconds since the first sample, label)."""
    start = start_t_s or 0.0
    return tuple((float(m["timestamp"]) - start, str(m["label"])) for m in markers)
