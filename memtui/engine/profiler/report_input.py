"""Provides profiler_report_input: the documented report's input, from an in-process run.

What the run saw (the analysis, the snapshot summaries, the recording, the profiler's own
cost and errors) goes to ``memtui.engine.report.json_report.build_report`` unchanged; this
module only says where each part comes from and what could not be seen.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from memtui.engine.profiler.options import SHORT_RUN_BUDGET
from memtui.engine.report.json_report import ReportInput, SourceInfo
from memtui.engine.report.recording import timeline_from_metrics
from memtui.probe.heap.summary import summary_note

if TYPE_CHECKING:
    from memtui.engine.profiler.memory_profiler import MemoryProfiler


def profiler_report_input(p: MemoryProfiler, command: str = "") -> ReportInput:
    """What build_report needs, from a MemoryProfiler's run."""
    unavailable: tuple[str, ...] = ()
    note = ""
    if not p.in_process:
        unavailable = ("top_allocators", "gc_statistics", "object_counts")
        note = (
            f"pid {p.pid} was watched from outside: only its memory series is known; "
            "allocation sites, object counts and GC statistics need the in-process agent"
        )
    elif not p.enable_tracemalloc:
        unavailable = ("top_allocators",)
        note = "tracemalloc was off (enable_tracemalloc=False): no allocation sites"
    heap_note = summary_note(p._collector.summaries.state())
    if heap_note:
        note = f"{note}; {heap_note}" if note else heap_note
    snap = p._snaps.latest
    top = tuple(p._snaps.sites.with_growth(snap.get_top_stats(p.trace_limit)) if snap else ())
    with p._lock:
        end_wall = p._end_wall if p._end_wall is not None else p._clock.time()
        return ReportInput(
            source=SourceInfo(
                pid=p.pid,
                kind="in-process" if p.in_process else "outside",
                command=command or (" ".join(sys.argv) if p.in_process else ""),
                python_version=sys.version.split()[0] if p.in_process else None,
                unavailable=unavailable,
                note=note,
                ended=p._target_ended,
            ),
            start_wall=p._start_wall,
            end_wall=end_wall,
            metrics=p.metrics,
            verdict=p.detector.final_verdict(),
            growth_threshold_mb_per_hour=p.growth_threshold_mb_per_hour,
            alert_threshold_mb=p.alert_threshold_mb,
            top_allocators=top,
            leaking_sites=tuple(g for g in p._snaps.sites.leaking()[: p.trace_limit]),
            snapshots=p._snaps.log.items,
            events=p.detector.events,
            memory_limit_bytes=p._limit_bytes,
            memory_limit_source=p._limit_source,
            culprits=_culprits_report(p) if p.in_process else None,
            extra={
                "profiler": {
                    "sample_interval_seconds": p.sample_interval,
                    "effective_sample_interval_seconds": round(p._collector.sample_interval_s, 3),
                    "snapshot_interval_seconds": p.snapshot_interval,
                    "effective_snapshot_interval_seconds": round(p._collector.census_gap_s, 3),
                    "snapshot_spacing_note": _spacing_note(p),
                    "snapshots_taken": p._snaps.taken,
                    "own_cpu_seconds": round(p._collector.census_cpu_s, 4),
                    "tracemalloc_frames": p.tracemalloc_frames if p.enable_tracemalloc else 0,
                    "errors": list(p._errors),
                },
                "timeline": timeline_from_metrics(p.metrics, p._start_wall),
                "markers": list(p._recording.markers),
                "recording": {"path": p.recording_path},
            },
        )


def _culprits_report(p: MemoryProfiler) -> dict[str, Any]:
    report = p.culprits.to_report()
    report["heap"]["collection"] = p._collector.summaries.state()
    return report


def _spacing_note(p: MemoryProfiler) -> str | None:
    """Why snapshots were further apart than asked (None when they were not)."""
    gap_s = p._collector.census_gap_s
    if gap_s <= p.snapshot_interval * 1.05:
        return None
    return (
        f"snapshots every {gap_s:.1f} s, not {p.snapshot_interval:g} s: "
        f"each cost {p._collector.last_census_cpu_s * 1000:.0f} ms of CPU (budget "
        f"{SHORT_RUN_BUDGET:.0%} of wall time in the first minute, then "
        f"{p.overhead_budget:.0%})"
    )
