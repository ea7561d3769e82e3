"""Provides build_report_input_from_recording: a recording replayed into the live analyses."""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from memtui.engine.culprits.analysis import CulpritAnalysis
from memtui.engine.culprits.site_rows import stats_from_rows
from memtui.engine.culprits.sites import AllocationSiteTracker
from memtui.engine.detect.detector import LeakDetector
from memtui.engine.facts.frames import (
    SiteRow,
    decode_heap_summary,
    decode_site_rows,
    heap_census,
    site_sizes,
)
from memtui.engine.facts.metrics import MemoryMetrics
from memtui.engine.facts.snapshot import MemorySnapshot, SnapshotLog
from memtui.engine.facts.wire import census_from_dict, gc_from_dict
from memtui.engine.report.json_report import ReportInput, SourceInfo
from memtui.engine.report.recording import MIB, Recording, parse_bound, timeline
from memtui.errors import ReportError
from memtui.probe.allocator import AllocatorReading
from memtui.probe.gcstats import GcReading
from memtui.probe.memory import MemoryReading
from memtui.probe.signals import LeakSignals
from memtui.probe.tracing import TraceKey

TRACE_LIMIT: int = 100


# -- building a report -----------------------------------------------------------------------
def _gc_delta(first: dict[str, Any] | None, last: dict[str, Any]) -> GcReading:
    """The activity between two cumulative readings (the whole of ``last`` without a first)."""
    reading = gc_from_dict(last)
    if first is None:
        return reading
    base = gc_from_dict(first)

    def minus(a: tuple[Any, Any, Any], b: tuple[Any, Any, Any]) -> Any:
        return tuple(max(x - y, 0) for x, y in zip(a, b, strict=False))

    return reading._replace(
        collections=minus(reading.collections, base.collections),
        collected=minus(reading.collected, base.collected),
        uncollectable=minus(reading.uncollectable, base.uncollectable),
        time_s=minus(reading.time_s, base.time_s),
    )


def _import_time(key: TraceKey) -> bool:
    """Sites of the import machinery: code and module objects made at import time."""
    return bool(key) and key[0][0].startswith("<frozen importlib")


def build_report_input_from_recording(
    path: str | os.PathLike[str],
    since: str | float | None = None,
    until: str | float | None = None,
    *,
    growth_threshold_mb_per_hour: float | None = None,
    alert_threshold_mb: float | None = None,
    memory_limit_bytes: int | None = None,
    trace_limit: int = TRACE_LIMIT,
) -> ReportInput:
    """Replay a recording (or the ``since``..``until`` part of it, see parse_bound).

    Thresholds default to the ones the recording names (10 MB/h and 1000 MB when it does not).
    Raises ReportError with one clear line for a missing, foreign, corrupt or empty file.
    """
    with Recording(path) as rec:
        return _build(
            rec,
            since,
            until,
            growth_threshold_mb_per_hour,
            alert_threshold_mb,
            memory_limit_bytes,
            trace_limit,
        )


def _build(
    rec: Recording,
    since: str | float | None,
    until: str | float | None,
    growth: float | None,
    alert: float | None,
    limit: int | None,
    trace_limit: int,
) -> ReportInput:
    meta = rec.meta
    span = rec.span()
    if span is None:
        raise ReportError(f"{rec.path}: the recording holds no samples yet")
    lo = parse_bound(since, *span)
    hi = parse_bound(until, *span)
    # Events (markers, dumps, verdicts) of an unbounded side reach the recording's end: a
    # marker set before the collector's first sample (the script's first line) still counts.
    ev_lo = lo if lo is not None else float("-inf")
    ev_hi = hi if hi is not None else float("inf")
    lo = span[0] if lo is None else max(lo, span[0])
    hi = span[1] if hi is None else min(hi, span[1])
    s = rec.series(lo, hi)
    if len(s) == 0:
        raise ReportError(f"{rec.path}: no samples between {_iso(lo)} and {_iso(hi)}")
    growth = float(growth if growth is not None else meta.get("growth_threshold_mb_per_hour", 10.0))
    alert = alert if alert is not None else meta.get("alert_threshold_mb", 1000.0)
    limit = limit if limit is not None else meta.get("memory_limit_bytes")
    t0 = float(s.t[0])
    ts = s.t - t0
    metrics = MemoryMetrics()
    culprits = CulpritAnalysis()
    has_traced = bool(np.any(s.traced > 0))
    has_blocks = bool(np.any(s.blocks > 0))
    for i in range(len(s)):
        t, rss, traced, blocks = (
            float(ts[i]),
            float(s.rss[i]),
            float(s.traced[i]),
            float(s.blocks[i]),
        )
        metrics.add_sample(
            t,
            MemoryReading(int(rss), int(s.vms[i])),
            int(traced),
            AllocatorReading(allocated_blocks=int(blocks)) if has_blocks else None,
        )
        culprits.observe_sample(
            t, rss, traced if has_traced else None, blocks if has_blocks else None, None
        )
    metrics.samples = int(s.count.sum())  # what was sampled, not the rows replayed
    metrics.peak_bytes = max(metrics.peak_bytes, int(s.rss_max.max()))
    metrics.min_bytes = min(metrics.min_bytes, int(s.rss_min.min()))
    detector = LeakDetector(growth, alert, limit)
    detector.update_many(ts, s.rss)

    readings = rec.gc_readings(lo, hi)
    if readings:
        in_window = [r for t, r in readings if t >= lo] or [readings[-1][1]]
        base = readings[0][1] if readings[0][0] < lo else None
        metrics.gc_first = _gc_delta(base, in_window[0]) if base else gc_from_dict(in_window[0])
        metrics.gc_last = _gc_delta(base, in_window[-1])

    snaps = SnapshotLog(500)
    sites = AllocationSiteTracker(max_sites=4 * trace_limit)
    latest_rows: tuple[SiteRow, ...] = ()
    site_series: dict[tuple[str, int], list[tuple[float, int]]] = {}
    pid = int(meta.get("pid", 0) or 0)
    has_census = False
    for t, _kind, rss, data in rec.snapshots(lo, hi):
        heap = decode_heap_summary(data.get("heap"))
        if heap is not None:  # a heap summary: containers by path, every object
            culprits.observe_heap_summary(t - t0, heap)
            heap_counts = heap_census(heap)
            has_census = has_census or heap_counts is not None
            snaps.append(
                MemorySnapshot(
                    timestamp=t,
                    elapsed_s=t - t0,
                    memory=MemoryReading(rss, 0),
                    census=heap_counts,
                    pid=pid,
                )
            )
            continue
        census_raw, gc_raw, signals_raw = data.get("census"), data.get("gc"), data.get("signals")
        census = census_from_dict(census_raw) if isinstance(census_raw, Mapping) else None
        gc = gc_from_dict(gc_raw) if isinstance(gc_raw, Mapping) else None
        has_census = has_census or census is not None
        snaps.append(
            MemorySnapshot(
                timestamp=t,
                elapsed_s=t - t0,
                memory=MemoryReading(rss, int(data.get("vms", 0) or 0), data.get("uss")),
                census=census,
                gc=gc,
                pid=pid,
            )
        )
        if census is not None:
            signals = (
                LeakSignals.from_dict(dict(signals_raw))
                if isinstance(signals_raw, Mapping)
                else None
            )
            culprits.observe_snapshot(t - t0, signals, census, gc)
        if isinstance(data.get("sites"), list):
            latest_rows = decode_site_rows(data["sites"])
            sites.observe(t - t0, site_sizes(latest_rows), trace_limit)
            for stat in stats_from_rows(latest_rows):
                site = stat.traceback.site_frame
                site_series.setdefault(site, []).append((round(t - t0, 1), stat.size))
    # The rows' own order (by size for held sizes, leaking first for watch-mode windows), with
    # the import machinery's sites last: they are never what a leak is.
    top = tuple(
        sorted(stats_from_rows(latest_rows), key=lambda st: _import_time(st.traceback.frames))[
            :trace_limit
        ]
    )

    role = str(meta.get("role", "agent"))
    kind = str(meta.get("kind", "outside" if role == "monitor" else "in-process"))
    unavailable = tuple(
        name
        for name, ok in (
            ("top_allocators", bool(top)),
            ("object_counts", has_census),
            ("gc_statistics", bool(readings)),
        )
        if not ok
    )
    clean = "ended_at" in meta
    notes = []
    if unavailable:
        notes.append("not in this recording: " + ", ".join(unavailable))
    if not clean:
        notes.append(
            f"the recording ends at {_iso(span[1])} without a clean close: the writer was "
            "killed or crashed (or is still running); at most its last seconds are missing"
        )
    markers = rec.markers(ev_lo, ev_hi)
    extra: dict[str, Any] = {
        "timeline": timeline(ts, s.rss, s.rss_min, s.rss_max, s.traced, t0, s.count),
        "markers": [
            {"at_seconds": round(t - t0, 1), "timestamp": _iso(t), "label": label, "source": src}
            for t, label, src in markers
        ],
        "heap_dumps": [
            {"at_seconds": round(t - t0, 1), "timestamp": _iso(t), "path": p, "summary": summary}
            for t, p, summary in rec.dumps(ev_lo, ev_hi)
        ],
        "verdict_history": [
            {
                "at_seconds": round(t - t0, 1),
                "state": st,
                "rate_mb_per_hour": round(r, 4),
                "confidence": round(c, 4),
                "reason": why,
            }
            for t, st, r, c, why in rec.verdicts(ev_lo, ev_hi)
        ],
        "allocator_timeline": [
            {
                "site": f"{stat.file}:{stat.line}",
                "t_s": [p[0] for p in site_series[stat.traceback.site_frame]],
                "size_mb": [round(p[1] / MIB, 4) for p in site_series[stat.traceback.site_frame]],
            }
            for stat in top[:8]
            if stat.traceback.site_frame in site_series
        ],
        "gc_timeline": {
            "t_s": [round(t - t0, 1) for t, _ in readings if t >= lo],
            "collections": [list(r.get("collections", [0, 0, 0])) for t, r in readings if t >= lo],
        },
        "recording": {
            "path": os.path.abspath(rec.path),
            "role": role,
            "size_bytes": rec.size_bytes(),
            "clean_end": clean,
            "window": {"since": _iso(lo), "until": _iso(hi)},
            "raw_samples": int(np.count_nonzero(s.count == 1)),
            "samples_represented": int(s.count.sum()),
        },
    }
    argv = meta.get("argv") or []
    return ReportInput(
        source=SourceInfo(
            pid=pid,
            kind=kind,
            command=" ".join(str(a) for a in argv) if isinstance(argv, list) else str(argv),
            python_version=meta.get("python"),
            unavailable=unavailable,
            note="; ".join(notes),
            ended=not clean and role != "monitor",
        ),
        start_wall=t0,
        end_wall=float(s.t[-1]),
        metrics=metrics,
        verdict=detector.final_verdict(),
        growth_threshold_mb_per_hour=growth,
        alert_threshold_mb=None if alert is None else float(alert),
        top_allocators=top,
        leaking_sites=tuple(sites.leaking()[:trace_limit]),
        snapshots=snaps.items,
        events=detector.events,
        memory_limit_bytes=limit,
        memory_limit_source=meta.get("memory_limit_source"),
        culprits=culprits.to_report() if has_census or has_traced else None,
        extra=extra,
    )


def _iso(wall: float) -> str:
    if not math.isfinite(wall):
        return "?"
    try:
        when = dt.datetime.fromtimestamp(wall, tz=dt.timezone.utc)
    except (ValueError, OverflowError, OSError):  # a damaged row's time (found by fuzzing)
        return "?"
    return when.replace(tzinfo=None).isoformat(timespec="seconds")
