"""Provides the monitor's sources: AgentSource (agent in the target) and OutsideSource (psutil).

Both turn what they gather into MonitorFrames with the engine's builders, and write the same
JSON report as the headless commands.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Any

from memtui.engine.detect.detector import LeakDetector
from memtui.engine.detect.memlimit import detect_memory_limit
from memtui.engine.facts.metrics import MemoryMetrics
from memtui.engine.monitor.frame import (
    AllocatorRow,
    CommandResult,
    HeaderView,
    MonitorFrame,
    Status,
)
from memtui.engine.monitor.view import (
    allocator_rows,
    gc_view,
    leaking_types,
    marker_points,
    object_rows,
    series_points,
    suspect_views,
    verdict_view,
)
from memtui.engine.report.json_report import ReportInput, SourceInfo, build_report
from memtui.engine.report.writer import write_report
from memtui.errors import MemtuiError
from memtui.probe.census import CensusResult
from memtui.probe.memory import ProcMemoryReader
from memtui.probe.recorder import Recorder, RecorderError, default_meta
from memtui.remote.client import AgentUnavailable
from memtui.remote.process_source import process_facts
from memtui.remote.session import AgentSession

MIB: float = 1024.0 * 1024.0


def _report_path(out_dir: str, pid: int) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return os.path.join(out_dir, f"memtui-report-{pid}-{stamp}.json")


def _export(report_input: ReportInput, out_dir: str, pid: int) -> CommandResult:
    try:
        path = write_report(build_report(report_input), _report_path(out_dir, pid))
    except MemtuiError as exc:
        return CommandResult(False, str(exc))
    return CommandResult(True, f"Report written to {path}", path)


def _allocator_suspect(row: AllocatorRow) -> str:
    """A top allocator as a suspect line: held bytes, or the growth rate of a window figure."""
    where = f"{row.file}:{row.line} in {row.function}"
    if row.size_kind == "held":
        return f"{where}: {row.size_bytes / MIB:.1f} MiB"
    if row.growth_mb_per_hour is not None:
        return f"{where}: {row.growth_mb_per_hour:+.1f} MB/h"
    return f"{where}: {row.size_bytes / MIB:.2f} MiB in one tracing window"


class AgentSource:
    """Frames from an agent session; commands go to the agent."""

    def __init__(
        self,
        session: AgentSession,
        sample_interval_s: float = 1.0,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.session = session
        self.sample_interval_s = sample_interval_s
        self.process = process
        self._seq = 0
        self._ended_at: float | None = None
        self._baseline_sites: dict[Any, tuple[int, int]] | None = None
        self._baseline_census: CensusResult | None = None
        self._baseline_t: float | None = None
        self._objects_base: tuple[CensusResult, float] | None = None
        """Object counts' Delta and Rate start at the first census seen (``b`` re-bases)."""
        self._census_seen: tuple[CensusResult | None, float] = (None, 0.0)
        self._objects_full = False
        """The base is a heap summary's census (every object), not the gc census."""
        self._events: list[str] = []

    @property
    def pid(self) -> int:
        return self.session.pid

    def poll(self, max_points: int = 600) -> MonitorFrame:
        s = self.session
        alive = s.poll()
        if not alive and self._ended_at is None:
            self._ended_at = time.time()
        for event in s.new_events:
            self._events.append(f"{event.t_s:.0f}s {event.kind}: {event.message}")
        s.new_events.clear()
        self._events.extend(s.notices)
        s.notices.clear()
        del self._events[:-20]
        self._seq += 1
        return self._frame(max_points)

    def _status(self) -> tuple[Status, int | None]:
        if self._ended_at is None:
            return "live", None
        code = self.process.poll() if self.process is not None else None
        return ("exited" if self.process is not None else "disconnected"), code

    def _frame(self, max_points: int) -> MonitorFrame:
        s = self.session
        m = s.metrics
        status, code = self._status()
        age = m.duration_s - self._baseline_t if self._baseline_t is not None else None
        allocators = allocator_rows(s.top_allocators(), self._baseline_sites, age)
        # Named culprits (containers, caches, listeners, threads...) first: they say what
        # holds the memory; allocation sites only once the memory itself is suspect.
        s.culprits.start_t = m.start_t_s or s.started_wall
        named = s.culprits.suspects(5)
        suspects = [sus.detail for sus in named[:3]]
        shown = s.shown_verdict(named)
        if shown.state != "ok":
            suspects += [_allocator_suspect(r) for r in allocators[:3]]
        verdict = verdict_view(
            shown,
            suspects,
            s.memory_limit.source,
            m.current_bytes,
            m.duration_s,
            suspect_views(named),
        )
        # Counts of every object once heap summaries come (gc-tracked ones until then); the
        # base is the first census of the kind shown, so deltas never mix the two.
        census = s.heap_census or s.census
        full = s.heap_census is not None
        if census is not self._census_seen[0]:
            self._census_seen = (census, m.duration_s)
        if census is not None and (self._objects_base is None or self._objects_full != full):
            first = s.first_heap_census if full and s.first_heap_census else census
            self._objects_base = (first, m.duration_s)
            self._objects_full = full
        base_census, base_t = self._objects_base or (None, None)
        # The rate is measured at the census, so rows change only when the counts do.
        objects_age = self._census_seen[1] - base_t if base_t is not None else None
        return MonitorFrame(
            seq=self._seq,
            header=HeaderView(
                pid=s.pid,
                command=" ".join(s.argv),
                python_version=s.python_version,
                kind="agent",
                why_limited="",
                uptime_s=max(0.0, (self._ended_at or time.time()) - s.started_wall),
                sample_interval_s=self.sample_interval_s,
                status=status,
                exit_code=code,
                ended_at=self._ended_at,
                tracing=str(s.tracing.get("mode", "off")),
            ),
            series=series_points(m, max_points),
            current_rss_bytes=m.current_bytes,
            peak_rss_bytes=m.peak_bytes,
            alert_threshold_bytes=int(s.alert_threshold_mb * MIB) if s.alert_threshold_mb else None,
            verdict=verdict,
            allocators=allocators,
            objects=object_rows(census, base_census, objects_age, leaking=leaking_types(verdict)),
            gc=gc_view(s.gc),
            events=tuple(self._events),
            baseline_at_s=self._baseline_t,
            objects_base_s=base_t,
            markers=marker_points(s.markers, m.start_t_s),
        )

    def _request(self, cmd: str, done: str, **args: Any) -> CommandResult:
        try:
            reply = self.session.client.request(cmd, **args)
        except MemtuiError as exc:
            return CommandResult(False, str(exc))
        path = reply.get("path")
        return CommandResult(True, done.format(**reply), str(path) if path else None)

    def take_snapshot(self) -> CommandResult:
        return self._request("snapshot", "Snapshot taken")

    def mark(self, label: str) -> CommandResult:
        """Record a marker (``label``) at the target's now, in its recording and frames."""
        return self._request("mark", "Marker recorded: {marked}", label=str(label)[:200])

    def set_baseline(self) -> CommandResult:
        result = self._request("set_baseline", "Baseline set")
        if result.ok:
            self._baseline_sites = dict(self.session.sites)
            self._baseline_census = self.session.census
            self._baseline_t = self.session.metrics.duration_s
            shown = self.session.heap_census or self.session.census
            if shown is not None:
                self._objects_base = (shown, self._baseline_t)
                self._objects_full = self.session.heap_census is not None
        return result

    def collect_garbage(self) -> CommandResult:
        return self._request("gc_collect", "Garbage collected: {collected} objects freed")

    def set_tracing(self, on: bool) -> CommandResult:
        frames = 1
        return self._request(
            "tracemalloc",
            "Continuous tracing on (slows the target)" if on else "Continuous tracing off",
            on=on,
            frames=frames,
        )

    def dump_heap(self, out_dir: str) -> CommandResult:
        # The target resolves paths against its own working directory: send an absolute one.
        try:
            reply = self.session.client.request(
                "heap_dump", out_dir=os.path.abspath(out_dir), wait_s=8
            )
        except MemtuiError as exc:
            return CommandResult(False, str(exc))
        path = str(reply.get("path") or "")
        if reply.get("pending"):
            return CommandResult(
                True, f"Heap dump still being written to {path}", path or None, pending=True
            )
        return CommandResult(True, f"Heap dump written to {path}", path or None)

    def export_report(self, out_dir: str) -> CommandResult:
        return _export(self.session.report_input(), out_dir, self.pid)

    def close(self) -> None:
        self.session.close()


class OutsideSource:
    """Memory series of any process from /proc; panes that need an agent say why not."""

    def __init__(
        self,
        pid: int,
        why_limited: str,
        growth_threshold_mb_per_hour: float = 10.0,
        alert_threshold_mb: float | None = 1000.0,
        sample_interval_s: float = 1.0,
        record_path: str | None = None,
    ) -> None:
        self.pid = pid
        self.why_limited = why_limited
        self.sample_interval_s = sample_interval_s
        self.alert_threshold_mb = alert_threshold_mb
        self.growth_threshold_mb_per_hour = growth_threshold_mb_per_hour
        self._reader = ProcMemoryReader(pid)
        self._limit = detect_memory_limit(pid)
        self.metrics = MemoryMetrics()
        self.detector = LeakDetector(
            growth_threshold_mb_per_hour=growth_threshold_mb_per_hour,
            alert_threshold_mb=alert_threshold_mb,
            memory_limit_bytes=self._limit.limit_bytes,
        )
        self._t0 = time.monotonic()
        self._start_wall = time.time()
        self._ended_at: float | None = None
        self._seq = 0
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                self.command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            self.command = ""
        self.recorder: Recorder | None = None
        self.record_error = ""
        if record_path:
            self._open_recorder(record_path)

    def _open_recorder(self, path: str) -> None:
        meta = {
            **default_meta(),
            "role": "monitor",
            "kind": "outside",
            "pid": self.pid,
            "python": None,
            "executable": None,
            "started_at": self._start_wall,
            "sample_interval_s": self.sample_interval_s,
            "growth_threshold_mb_per_hour": self.growth_threshold_mb_per_hour,
            "alert_threshold_mb": self.alert_threshold_mb,
            "memory_limit_bytes": self._limit.limit_bytes,
            "memory_limit_source": self._limit.source,
        }
        try:
            with open(f"/proc/{self.pid}/cmdline", "rb") as f:
                meta["argv"] = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            meta.pop("argv", None)
        try:
            self.recorder = Recorder(path, meta)
        except (RecorderError, OSError) as exc:
            self.record_error = str(exc)

    def _sample(self) -> None:
        if self._ended_at is not None:
            return
        try:
            reading = self._reader.read()
        except (ProcessLookupError, PermissionError):
            self._ended_at = time.time()
            return
        t = time.monotonic() - self._t0
        self.metrics.add_sample(t, reading)
        self.detector.update(t, float(reading.rss_bytes))
        self.detector.drain_events()
        rec = self.recorder
        if rec is not None:
            rec.add_sample(self._start_wall + t, reading.rss_bytes, reading.vms_bytes)
            v = self.detector.verdict
            rec.add_verdict(
                self._start_wall + t, v.state, v.rate_mb_per_hour, v.confidence, v.reason
            )
            rec.maybe_flush()

    def poll(self, max_points: int = 600) -> MonitorFrame:
        self._sample()
        self._seq += 1
        m = self.metrics
        return MonitorFrame(
            seq=self._seq,
            header=HeaderView(
                pid=self.pid,
                command=self.command,
                python_version=None,
                kind="outside",
                why_limited=self.why_limited,
                uptime_s=(self._ended_at or time.time()) - self._start_wall,
                sample_interval_s=self.sample_interval_s,
                status="exited" if self._ended_at is not None else "live",
                ended_at=self._ended_at,
            ),
            series=series_points(m, max_points),
            current_rss_bytes=m.current_bytes,
            peak_rss_bytes=m.peak_bytes,
            alert_threshold_bytes=int(self.alert_threshold_mb * MIB)
            if self.alert_threshold_mb
            else None,
            verdict=verdict_view(
                self.detector.verdict, (), self._limit.source, m.current_bytes, m.duration_s
            ),
            unavailable=("allocators", "objects", "gc"),
        )

    def _unavailable(self, what: str) -> CommandResult:
        return CommandResult(
            False, f"{what} needs memtui's agent in the target: {self.why_limited}"
        )

    def take_snapshot(self) -> CommandResult:
        return self._unavailable("A snapshot")

    def set_baseline(self) -> CommandResult:
        return self._unavailable("A baseline")

    def collect_garbage(self) -> CommandResult:
        return self._unavailable("A forced GC")

    def set_tracing(self, on: bool) -> CommandResult:
        return self._unavailable("Tracing")

    def dump_heap(self, out_dir: str) -> CommandResult:
        return self._unavailable("A heap dump")

    def mark(self, label: str) -> CommandResult:
        """Record a marker (``label``) now in this monitor's recording (--record)."""
        rec = self.recorder
        if rec is None:
            return CommandResult(False, "Markers need a recording here: start with --record")
        text = " ".join(str(label).split())[:200] or "(marker)"
        rec.add_marker(time.time(), text, "monitor")
        return CommandResult(True, f"Marker recorded: {text}")

    def report_input(self) -> ReportInput:
        return ReportInput(
            source=SourceInfo(
                pid=self.pid,
                kind="outside",
                command=self.command,
                unavailable=("top_allocators", "gc_statistics", "object_counts"),
                note=self.why_limited,
                ended=self._ended_at is not None,
            ),
            start_wall=self._start_wall,
            end_wall=self._ended_at or time.time(),
            metrics=self.metrics,
            verdict=self.detector.final_verdict(),
            growth_threshold_mb_per_hour=self.growth_threshold_mb_per_hour,
            alert_threshold_mb=self.alert_threshold_mb,
            events=self.detector.events,
            memory_limit_bytes=self._limit.limit_bytes,
            memory_limit_source=self._limit.source,
            extra={"process": process_facts(self.pid)},  # maps, children, USS/PSS from outside
        )

    def export_report(self, out_dir: str) -> CommandResult:
        return _export(self.report_input(), out_dir, self.pid)

    def close(self) -> None:
        self._reader.close()
        if self.recorder is not None:
            self.recorder.close()


__all__ = ["AgentSource", "AgentUnavailable", "OutsideSource"]
