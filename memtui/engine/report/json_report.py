"""Provides build_report: the spec's JSON report from what a profiling run saw.

Structure (spec "Memory Report Structure"): summary, leak_detection, top_allocators,
gc_statistics, snapshots; plus the top-level keys the spec's examples read
(memory_leak_detected, leak_rate_mb_per_hour) and schema_version. Additions are allowed,
renames are not. Every value is plain JSON (no NaN, no numpy types).

Allocation sites (``top_allocators``, ``leak_detection.leaking_allocators``): ``file``/``line``/
``function`` name the first frame in the program's own code (not the standard library,
site-/dist-packages, memtui or ``<frozen ...>``); ``user_code`` is false when the whole traced
stack was library code and the site is its innermost frame; ``traceback`` is the full stack,
most recent call first. ``size_kind`` says what ``size_mb``/``count`` mean ('held': what the
line holds now; 'window': what a watch-mode window saw it allocate and keep), spelled out in
``size_means``; ``growth_mb`` (since watching started) and ``growth_mb_per_hour`` are filled
from the second window or snapshot on. Leaking entries add ``method`` ('windows': ``windows``
of ``of_windows`` grew, sign-test ``p_value``; 'snapshots': ``r_squared`` over ``snapshots``).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from memtui.engine.culprits.signatures import Suspect
from memtui.engine.culprits.site_rows import SiteLeak
from memtui.engine.culprits.sites import SiteGrowth
from memtui.engine.detect.detector import LeakEvent, LeakVerdict
from memtui.engine.facts.metrics import MemoryMetrics
from memtui.engine.facts.snapshot import AllocationStat, MemorySnapshot
from memtui.probe.tracing import TraceKey

SCHEMA_VERSION: int = 1
MIB: float = 1024.0 * 1024.0


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What was watched and how, so a reader knows which fields could be filled."""

    pid: int
    kind: str
    """'in-process' (everything), or 'outside' (memory series only, read from /proc)."""
    command: str = ""
    python_version: str | None = None
    unavailable: tuple[str, ...] = ()
    """Report sections that this kind of source cannot fill, with the reason in ``note``."""
    note: str = ""
    ended: bool = False
    """The target exited while it was being watched."""


@dataclass(frozen=True, slots=True)
class ReportInput:
    """Everything build_report needs; the profiler, the CLI and recordings all produce one."""

    source: SourceInfo
    start_wall: float
    end_wall: float
    metrics: MemoryMetrics
    verdict: LeakVerdict
    growth_threshold_mb_per_hour: float
    alert_threshold_mb: float | None
    top_allocators: tuple[AllocationStat, ...] = ()
    leaking_sites: tuple[SiteGrowth[TraceKey] | SiteLeak, ...] = ()
    """Lines that leak: from snapshots of held sizes (SiteGrowth) or tracing windows."""
    snapshots: tuple[MemorySnapshot, ...] = ()
    events: tuple[LeakEvent, ...] = ()
    memory_limit_bytes: int | None = None
    memory_limit_source: str | None = None
    culprits: dict[str, Any] | None = None
    """CulpritAnalysis.to_report(): named suspects and RSS triage."""
    extra: dict[str, Any] = field(default_factory=dict)


def _num(value: float | None, digits: int = 4) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _iso(wall: float) -> str:
    import datetime as dt

    return (
        dt.datetime.fromtimestamp(wall, tz=dt.timezone.utc)
        .replace(tzinfo=None)
        .isoformat(timespec="seconds")
    )


def _gc_statistics(data: ReportInput) -> dict[str, Any]:
    rates = data.metrics.gc_rates()
    last = data.metrics.gc_last
    if rates is None or last is None:
        return {
            "gen0_collections": None,
            "gen1_collections": None,
            "gen2_collections": None,
            "total_gc_time_seconds": None,
            "available": False,
        }
    return {
        "gen0_collections": rates.collections[0],
        "gen1_collections": rates.collections[1],
        "gen2_collections": rates.collections[2],
        "total_gc_time_seconds": _num(rates.total_time_s, 6) if last.timed else None,
        "available": True,
        "timed": last.timed,
        "collections_per_minute": [_num(x, 3) for x in rates.collections_per_minute],
        "gc_time_fraction": _num(rates.time_fraction, 6) if last.timed else None,
        "max_pause_seconds": _num(rates.max_pause_s, 6) if last.timed else None,
        "collected": list(rates.collected),
        "uncollectable": list(rates.uncollectable),
        "garbage_objects": last.garbage_count,
        "thresholds": list(last.thresholds),
    }


SIZE_MEANINGS: dict[str, str] = {
    "held": "bytes the line holds now (tracemalloc traced all along)",
    "window": "watch mode (short tracing windows): the larger of the line's estimated growth "
    "while watched (growth_mb) and what one window saw it allocate and keep "
    "(window_size_mb): at least what it accumulated while watched, not what it holds",
}


def _site_dict(stat: AllocationStat) -> dict[str, Any]:
    """A top_allocators entry: file/line/function are the first frame in the program's own
    code (``user_code`` false: all library code, the innermost frame); ``traceback`` is the
    full stack, most recent call first; ``size_kind`` says what size_mb means."""
    out = stat.to_dict()
    if stat.size_kind == "window":
        # A leak hunter reads size_mb first: a leaking line's window figure (~0.1 MB) hides
        # the megabytes it piled up while watched, so size_mb is the larger of the two.
        out["window_size_mb"] = out["size_mb"]
        out["size_mb"] = max(out["size_mb"], out["growth_mb"] or 0.0)
    out["size_means"] = SIZE_MEANINGS[stat.size_kind]
    out["traceback"] = [f"{fn}:{ln}" for fn, ln in stat.traceback.frames]
    return out


def _leak_dict(leak: SiteGrowth[TraceKey] | SiteLeak) -> dict[str, Any]:
    """A leaking_allocators entry: the site as in top_allocators, its rate and the evidence."""
    site = SiteLeak.from_growth(leak) if isinstance(leak, SiteGrowth) else leak
    entry = _site_dict(site.stat)
    entry.update(
        growth_mb_per_hour=_num(site.growth_mb_per_hour),
        method=site.method,
        r_squared=_num(site.r_squared),
        snapshots=site.snapshots,
        windows=site.windows,
        of_windows=site.of_windows,
        p_value=_num(site.p_value, 6),
    )
    return entry


def build_report(data: ReportInput) -> dict[str, Any]:
    """The documented JSON report (see the module docstring)."""
    m = data.metrics
    v = data.verdict
    duration_h = m.duration_s / 3600.0
    top = [_site_dict(s) for s in data.top_allocators]
    leaking = [_leak_dict(g) for g in data.leaking_sites]
    report: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "summary": {
            "duration_hours": _num(duration_h, 6),
            "start_memory_mb": _num(m.start_bytes / MIB, 3),
            "end_memory_mb": _num(m.current_bytes / MIB, 3),
            "peak_memory_mb": _num(m.peak_bytes / MIB, 3),
            "average_memory_mb": _num(m.average_bytes / MIB, 3),
            "growth_rate_mb_per_hour": _num(v.rate_mb_per_hour),
            "net_growth_mb_per_hour": _num(m.net_growth_mb_per_hour),
            "samples": m.samples,
            "started_at": _iso(data.start_wall),
            "ended_at": _iso(data.end_wall),
            "peak_traced_memory_mb": _num(m.peak_traced_bytes / MIB, 3)
            if "top_allocators" not in data.source.unavailable
            else None,
        },
        "leak_detection": {
            "leak_detected": bool(v.leak_detected),
            "state": v.state,
            "confidence": _num(v.confidence),
            "leak_rate_mb_per_hour": _num(v.rate_mb_per_hour),
            "projected_oom_hours": _num(v.projected_oom_hours, 2),
            "memory_limit_mb": _num(data.memory_limit_bytes / MIB, 1)
            if data.memory_limit_bytes
            else None,
            "memory_limit_source": data.memory_limit_source,
            "r_squared": _num(v.r_squared),
            "first_detected_at_seconds": _num(v.first_detected_at, 1),
            "onset_seconds": _num(v.onset_s, 1),
            "reason": v.reason,
            "growth_threshold_mb_per_hour": data.growth_threshold_mb_per_hour,
            "alert_threshold_mb": data.alert_threshold_mb,
            "alert_threshold_exceeded": bool(
                data.alert_threshold_mb is not None and m.peak_bytes / MIB > data.alert_threshold_mb
            ),
            "leaking_allocators": leaking,
            "events": [
                {
                    "kind": e.kind,
                    "at_seconds": _num(e.t_s, 1),
                    "size_mb": _num(e.size_mb, 3),
                    "message": e.message,
                }
                for e in data.events
            ],
        },
        "top_allocators": top,
        "gc_statistics": _gc_statistics(data),
        "snapshots": [s.to_report_dict() for s in data.snapshots],
        "source": {
            "pid": data.source.pid,
            "kind": data.source.kind,
            "command": data.source.command,
            "python_version": data.source.python_version,
            "unavailable": list(data.source.unavailable),
            "note": data.source.note,
            "target_exited": data.source.ended,
        },
    }
    if m.uss_bytes is not None:
        report["summary"]["uss_mb"] = _num(m.uss_bytes / MIB, 3)
        report["summary"]["pss_mb"] = _num((m.pss_bytes or 0) / MIB, 3)
        report["summary"]["swap_mb"] = _num((m.swap_bytes or 0) / MIB, 3)
    if m.allocator is not None and m.allocator.malloc_free_bytes is not None:
        report["summary"]["malloc_free_mb"] = _num(m.allocator.malloc_free_bytes / MIB, 3)
    if data.culprits is not None:
        report["leak_detection"].update(data.culprits)
        corroborate(report["leak_detection"], data.growth_threshold_mb_per_hour)
        link_lines_to_suspects(report["leak_detection"], top)
    report.update(data.extra)
    # The spec's examples read these at the top level.
    report["memory_leak_detected"] = report["leak_detection"]["leak_detected"]
    report["leak_rate_mb_per_hour"] = report["leak_detection"]["leak_rate_mb_per_hour"]
    return report


def steady_suspect(
    suspects: Iterable[tuple[str, float | None]], rss_rate_mb_per_hour: float, threshold: float
) -> tuple[str, float] | None:
    """(name, MB/h) of the first suspect container growing at >= ``threshold`` while the RSS
    still grows at >= ``threshold`` too, else None: the evidence that lifts an "ok" to
    "suspected" (``suspects`` as (name, bytes_per_hour), steady growth already required)."""
    if rss_rate_mb_per_hour < threshold:
        return None
    for name, bytes_per_hour in suspects:
        per_hour = (bytes_per_hour or 0.0) / MIB
        if per_hour >= threshold:
            return name, per_hour
    return None


def corroborate(leak: dict[str, Any], threshold_mb_per_hour: float) -> None:
    """An "ok" verdict whose RSS still grows above the threshold while a named container grows
    steadily becomes "suspected" (``leak_detected`` stays as the detector said).

    Why: in a short run of a web service the RSS floor is mostly start-up (imports, thread pools,
    first requests), so its growth slows and the detector rightly holds back ("levelling off"),
    while the heap summaries watch a dict of sessions grow at the same pace summary after
    summary (a suspect needs steady growth: memtui.engine.culprits.retainers). Saying "no
    leak" next to that suspect contradicted the report's own evidence.
    """
    if leak.get("state") != "ok":
        return
    found = steady_suspect(
        ((str(s.get("name")), s.get("bytes_per_hour")) for s in leak.get("suspects") or []),
        leak.get("leak_rate_mb_per_hour") or 0.0,
        threshold_mb_per_hour,
    )
    if found is not None:
        leak["state"] = "suspected"
        leak["reason"] = suspected_reason(str(leak.get("reason")), *found)


def lifted_verdict(
    verdict: LeakVerdict, suspects: Iterable[Suspect], threshold_mb_per_hour: float
) -> LeakVerdict:
    """A live verdict by the report's rule (``corroborate``): an "ok" whose RSS still grows
    above the threshold beside a suspect container growing steadily as fast is "suspected"."""
    if verdict.state != "ok":
        return verdict
    found = steady_suspect(
        ((s.name, s.bytes_per_hour) for s in suspects),
        verdict.rate_mb_per_hour,
        threshold_mb_per_hour,
    )
    if found is None:
        return verdict
    reason = suspected_reason(verdict.reason, *found)
    return dataclasses.replace(verdict, state="suspected", reason=reason)


def suspected_reason(reason: str, name: str, per_hour: float) -> str:
    """The reason of a verdict lifted to "suspected" (the report's and the monitor's)."""
    return f"{reason}; but {name} grows steadily ({per_hour:+.1f} MB/h): leak suspected"


def link_lines_to_suspects(leak: dict[str, Any], top: list[dict[str, Any]]) -> None:
    """Mark the allocation lines whose source names a suspect container (``fills``), and list
    those first among the leaking lines.

    Why: watch windows cannot tell a line that fills a bounded buffer from one that fills a
    leak when the process leaks (both grow in every window, and the blocks do add up), so a
    busy ``RECENT.append(...)`` could top the leaking lines above ``SESSIONS[sid] = ...``.
    The heap summaries know which container grows; the line that names it is the one a
    reader would pick by eye. A hint by name, from the source file when it is readable here.
    """
    import linecache
    import re

    names: dict[str, Any] = {}
    for suspect in leak.get("suspects") or []:
        path = suspect.get("path")  # a container reached from a root (not a type, not threads)
        short = str(path or "").rsplit(".", 1)[-1]
        if short.isidentifier() and len(short) >= 3:
            names.setdefault(short, suspect.get("name"))
    if not names:
        return
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    for entry in [*(leak.get("leaking_allocators") or []), *top]:
        source = linecache.getline(str(entry.get("file")), int(entry.get("line") or 0))
        found = pattern.search(source)
        if found:
            entry["fills"] = names[found.group(1)]
    leaking = leak.get("leaking_allocators") or []
    leaking.sort(key=lambda e: "fills" not in e)  # stable: by rate within each group


PROCESS_SUSPECTS: int = 5
"""Suspects and leaking allocators kept per process in the ``processes`` section."""


def process_entry(
    report: dict[str, Any], *, ppid: int, role: str, started_wall: float, ended: bool
) -> dict[str, Any]:
    """One entry of a pool report's ``processes``, cut from that process's own report.

    Why: a pool report must give every worker its own verdict and suspects without repeating
    every section per worker (a pool that recycles workers sees hundreds of them).
    """
    v = report["leak_detection"]
    summary = report["summary"]
    return {
        "pid": report["source"]["pid"],
        "ppid": ppid,
        "role": role,
        "command": report["source"]["command"],
        "started_at": _iso(started_wall),
        "ended_at": summary["ended_at"] if ended else None,
        "exited": ended,
        "summary": summary,
        "leak_detection": {
            "verdict": v["state"],
            "leak_detected": v["leak_detected"],
            "confidence": v["confidence"],
            "leak_rate_mb_per_hour": v["leak_rate_mb_per_hour"],
            "reason": v["reason"],
            "suspects": list(v.get("suspects") or [])[:PROCESS_SUSPECTS],
            "leaking_allocators": list(v.get("leaking_allocators") or [])[:PROCESS_SUSPECTS],
        },
        "top_allocators": list(report.get("top_allocators") or [])[:PROCESS_SUSPECTS],
    }


def add_processes(
    report: dict[str, Any], processes: list[dict[str, Any]], seen_total: int
) -> dict[str, Any]:
    """Add the pool sections: ``processes`` (one entry per process) and ``pool`` (counts).

    The root's own sections are left as they are; ``pool.leak_detected`` is true when any
    process leaks (what --fail-on-leak tests).
    """
    leaking = [p["pid"] for p in processes if p["leak_detection"]["leak_detected"]]
    report["processes"] = processes
    report["pool"] = {
        "processes_seen": max(seen_total, len(processes)),
        "processes_listed": len(processes),
        "leaking_pids": leaking,
        "leak_detected": bool(leaking),
    }
    return report
