"""Provides AgentFrame and HeapSummary: what an agent sends, decoded once, at the boundary.

An agent's frame (memtui.probe.agent ``frame``), a recording's rows and a heap summary from
a forked child arrive as JSON. They are decoded here, once, into frozen dataclasses with units
in their field names; the analyses downstream (the detector, culprits, site rankings) read
these and never a raw dict. Tolerant by design: a malformed part decodes to its empty value,
so one bad field never loses a frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from memtui.engine.facts.wire import census_from_dict, gc_from_dict
from memtui.probe.census import CensusResult
from memtui.probe.gcstats import GcReading
from memtui.probe.signals import LeakSignals
from memtui.probe.tracing import TraceKey


@dataclass(frozen=True, slots=True)
class SampleRow:
    """One memory sample of the agent's ring."""

    seq: int
    t_s: float
    """Wall-clock time of the sample (seconds since the epoch)."""
    rss_bytes: int
    vms_bytes: int
    traced_bytes: int
    allocated_blocks: int
    """0 when the collector cannot see the allocator (a process watched from outside)."""
    malloc_free_bytes: int | None = None
    """Free bytes inside malloc's arenas (glibc), None when not known."""


@dataclass(frozen=True, slots=True)
class HistoryMean:
    """One bucket of the agent's multi-resolution history (means over the bucket)."""

    t_end_s: float
    rss_bytes: float
    vms_bytes: float
    traced_bytes: float
    allocated_blocks: float


@dataclass(frozen=True, slots=True)
class Marker:
    """A labelled instant (memtui.mark in the target)."""

    timestamp_s: float
    label: str
    source: str


@dataclass(frozen=True, slots=True)
class SiteRow:
    """One ranked allocation site (memtui.probe.watch rows, or a profiler's recorded rows)."""

    frames: TraceKey
    size_bytes: int
    count: int
    site: int | None = None
    """Index of the frame that is the site (the first user frame); None: the innermost."""
    size_kind: Literal["held", "window"] | None = None
    growth_bytes: int | None = None
    rate_mb_per_hour: float | None = None
    windows: int | None = None
    """Tracing windows in which the line's kept bytes grew (watch mode)."""
    of_windows: int | None = None
    blocks_per_s: float | None = None
    """Median rate at which the line's live blocks grew while traced (watch mode)."""


@dataclass(frozen=True, slots=True)
class ContainerRow:
    """One large container of a heap summary, named by its path from a root."""

    path: str
    address: int
    type_name: str
    items: int
    bytes: int
    chain: str = ""
    holds: str | None = None
    hint: str | None = None
    samples: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class HeapSummary:
    """A forked child's census of every object and the largest containers by path."""

    seq: int
    taken_at_s: float
    census: tuple[tuple[str, int, int], ...]
    """(type, count, bytes) of every live object type, largest first (gc-untracked too)."""
    containers: tuple[ContainerRow, ...]
    total_objects: int = 0
    totals: Mapping[str, Any] | None = None
    pause_s: float = 0.0
    child_s: float = 0.0
    child_cpu_s: float = 0.0
    walk_s: float = 0.0
    edges: int = 0

    @property
    def empty(self) -> bool:
        return not self.census and not self.containers


@dataclass(frozen=True, slots=True)
class AgentFrame:
    """Everything one ``frame`` reply says, decoded."""

    samples: tuple[SampleRow, ...] = ()
    history: tuple[HistoryMean, ...] = ()
    gc: GcReading | None = None
    census: CensusResult | None = None
    signals: LeakSignals | None = None
    """The census's cheap culprit readings (memtui.probe.signals)."""
    sites: tuple[SiteRow, ...] | None = None
    """None when the frame carried no site list (keep the previous one)."""
    heap_summary: HeapSummary | None = None
    heap_summary_state: Mapping[str, Any] | None = None
    """The agent's account of its heap summaries, passed on to the report as it is."""
    tracing_state: Mapping[str, Any] | None = None
    """The agent's tracing mode and windows, passed on to the report as it is."""
    markers: tuple[Marker, ...] = ()
    recording_state: Mapping[str, Any] | None = None
    """The agent's recorder health (path, failing, errors), for the user's notices."""


def _num(value: Any, default: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return default
    return float(value)


def _opt_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _opt_float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def decode_site_rows(rows: Any) -> tuple[SiteRow, ...]:
    """Site rows in the agent's (``frames``, ``size_bytes``) or an old (``file``, ``line``,
    ``size``) form; malformed rows are left out."""
    out = []
    for row in rows if isinstance(rows, Sequence) else ():
        if not isinstance(row, Mapping):
            continue
        try:
            frames = row.get("frames") or (
                [[row["file"], row["line"]]] if "file" in row and "line" in row else []
            )
            key: TraceKey = tuple((str(f[0]), int(f[1])) for f in frames)
            kind = row.get("size_kind")
            out.append(
                SiteRow(
                    frames=key,
                    size_bytes=int(row.get("size_bytes", row.get("size", 0)) or 0),
                    count=int(row.get("count", 0) or 0),
                    site=_opt_int(row.get("site")),
                    size_kind=kind if kind in ("held", "window") else None,
                    growth_bytes=_opt_int(row.get("growth_bytes")),
                    rate_mb_per_hour=_opt_float(row.get("rate_mb_per_hour")),
                    windows=_opt_int(row.get("windows")),
                    of_windows=_opt_int(row.get("of_windows")),
                    blocks_per_s=_opt_float(row.get("growth_blocks_per_s")),
                )
            )
        except (TypeError, ValueError, IndexError, KeyError):
            continue
    return tuple(out)


def decode_heap_summary(doc: Any) -> HeapSummary | None:
    """A heap summary document (memtui.probe.heap.summary), or None when it is not one."""
    if not isinstance(doc, Mapping):
        return None
    census = tuple(
        (str(r[0]), int(r[1]), int(r[2]))
        for r in doc.get("census") or ()
        if isinstance(r, Sequence) and len(r) >= 3
    )
    containers = []
    for c in doc.get("containers") or ():
        if not isinstance(c, Mapping):
            continue
        containers.append(
            ContainerRow(
                path=str(c.get("path", "?")),
                address=int(_num(c.get("address"))),
                type_name=str(c.get("type", "")),
                items=int(_num(c.get("items"))),
                bytes=int(_num(c.get("bytes"))),
                chain=str(c.get("chain", "")),
                holds=str(c["holds"]) if c.get("holds") else None,
                hint=str(c["hint"]) if c.get("hint") else None,
                samples=tuple(str(x) for x in c.get("samples") or ())[:3],
            )
        )
    totals = doc.get("totals")
    totals = dict(totals) if isinstance(totals, Mapping) else None
    objects = int(_num(totals.get("objects"))) if totals else 0
    return HeapSummary(
        seq=int(_num(doc.get("seq"))),
        taken_at_s=_num(doc.get("taken_at")),
        census=census,
        containers=tuple(containers),
        total_objects=objects or sum(r[1] for r in census),
        totals=totals,
        pause_s=_num(doc.get("pause_s")),
        child_s=_num(doc.get("child_s")),
        child_cpu_s=_num(doc.get("child_cpu_s")),
        walk_s=_num(doc.get("walk_s")),
        edges=int(_num(doc.get("edges"))),
    )


def site_sizes(rows: Sequence[SiteRow] | None) -> dict[TraceKey, tuple[int, int]]:
    """Per-traceback (bytes, blocks) of site rows (several rows of one traceback summed)."""
    out: dict[TraceKey, tuple[int, int]] = {}
    for row in rows or ():
        prev = out.get(row.frames, (0, 0))
        out[row.frames] = (prev[0] + row.size_bytes, prev[1] + row.count)
    return out


def heap_census(summary: HeapSummary) -> CensusResult | None:
    """A heap summary's census of every live object as a CensusResult (counts by type)."""
    if not summary.census:
        return None
    counts = {name: count for name, count, _ in summary.census}
    return CensusResult(
        counts=counts,
        total_objects=summary.total_objects or sum(counts.values()),
        duration_s=summary.child_s,
        max_hold_s=summary.pause_s,
    )


def _samples(rows: Any) -> tuple[SampleRow, ...]:
    out = []
    for row in rows if isinstance(rows, Sequence) else ():
        if not isinstance(row, Sequence):
            continue
        seq, t, rss, vms, traced, blocks, free = ([*row] + [0] * 6 + [None])[:7]
        out.append(
            SampleRow(
                int(_num(seq)),
                _num(t),
                int(_num(rss)),
                int(_num(vms)),
                int(_num(traced)),
                int(_num(blocks)),
                _opt_int(free),
            )
        )
    return tuple(out)


def _history(points: Any) -> tuple[HistoryMean, ...]:
    out = []
    for p in points if isinstance(points, Sequence) else ():
        if not isinstance(p, Mapping):
            continue
        mean = [*list(p.get("mean") or [])[:4], 0, 0, 0, 0]
        out.append(
            HistoryMean(
                _num(p.get("t_end")), _num(mean[0]), _num(mean[1]), _num(mean[2]), _num(mean[3])
            )
        )
    return tuple(out)


def _markers(rows: Any) -> tuple[Marker, ...]:
    out = []
    for m in rows if isinstance(rows, Sequence) else ():
        if isinstance(m, Sequence) and not isinstance(m, str) and len(m) >= 2:
            out.append(Marker(_num(m[0]), str(m[1]), str(m[2]) if len(m) > 2 else "target"))
    return tuple(out)


def decode_frame(raw: Mapping[str, Any]) -> AgentFrame:
    """One agent ``frame`` reply, decoded (see AgentFrame)."""
    gc_raw = raw.get("gc")
    census_raw = raw.get("census")
    census = None
    signals = None
    if isinstance(census_raw, Mapping) and census_raw:
        census = census_from_dict(census_raw)
        sig = census_raw.get("signals")
        signals = LeakSignals.from_dict(dict(sig)) if isinstance(sig, Mapping) else None
    sites = raw.get("sites")
    summaries = raw.get("heap_summaries")
    tracing = raw.get("tracing")
    agent = raw.get("agent")
    recording = agent.get("recording") if isinstance(agent, Mapping) else None
    return AgentFrame(
        samples=_samples(raw.get("samples")),
        history=_history(raw.get("history")),
        gc=gc_from_dict(gc_raw) if isinstance(gc_raw, Mapping) and gc_raw else None,
        census=census,
        signals=signals,
        sites=decode_site_rows(sites) if isinstance(sites, Sequence) else None,
        heap_summary=decode_heap_summary(raw.get("heap_summary")),
        heap_summary_state=dict(summaries) if isinstance(summaries, Mapping) else None,
        tracing_state=dict(tracing) if isinstance(tracing, Mapping) else None,
        markers=_markers(raw.get("markers")),
        recording_state=dict(recording) if isinstance(recording, Mapping) else None,
    )
