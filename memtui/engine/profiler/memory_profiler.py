"""Provides MemoryProfiler, the spec's in-process API: sampling, snapshots, leak alerts, reports.

A daemon thread samples memory every ``sample_interval`` seconds (about 10 µs of work) and
takes a full snapshot (tracemalloc sites, type census, GC) every ``snapshot_interval``
seconds. Snapshots are spaced further apart when they cost more than ``overhead_budget`` of
wall time, so a big heap never makes the profiler the program's main cost. With a clock that
is not real time (tests), nothing runs in a thread: the awaiting coroutine (or ``poll()``)
does the due work, so days can be simulated in seconds, deterministically.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memtui.engine.analysis import ProcessAnalysis
from memtui.engine.detect.detector import LeakEvent, LeakVerdict
from memtui.engine.detect.memlimit import detect_memory_limit
from memtui.engine.facts.frames import SampleRow, decode_frame
from memtui.engine.facts.snapshot import MemorySnapshot
from memtui.engine.intake import FrameIntake
from memtui.engine.profiler.alerts import AlertDispatcher, LeakCallback, event_info
from memtui.engine.profiler.baseline import RunningStats
from memtui.engine.profiler.heap_dumps import HeapDumpMethods, ProfilerDumps
from memtui.engine.profiler.memory_source import MemorySource
from memtui.engine.profiler.options import (
    SHORT_RUN_BUDGET,
    SHORT_RUN_S,
    check_arguments,
    require,
)
from memtui.engine.profiler.queries import ProfilerQueries
from memtui.engine.profiler.report_input import profiler_report_input
from memtui.engine.profiler.run_recording import RunRecording
from memtui.engine.profiler.snapshots import ProfilerSnapshots
from memtui.engine.report.json_report import ReportInput, build_report
from memtui.engine.report.writer import write_report
from memtui.errors import TargetProcessError, TracingError
from memtui.probe.clock import Clock, SystemClock
from memtui.probe.collector import CensusBudget, Collector
from memtui.probe.gcstats import GcReading
from memtui.probe.heap.summary import (
    HeapSummaries,
    summaries_from_env,
)
from memtui.probe.memory import MemoryReading
from memtui.probe.recorder import (
    Recorder,
)
from memtui.probe.tracing import start_tracing, stop_tracing

log = logging.getLogger("memtui")
MIB: float = 1024.0 * 1024.0


class MemoryProfiler(ProfilerQueries, HeapDumpMethods):
    """Profiles this process (or watches another pid's memory from outside).

    Args:
        snapshot_interval: seconds between full snapshots (sites, census, GC).
        trace_limit: allocation sites kept in rankings and reports.
        alert_threshold_mb: RSS level (MiB) whose crossing raises an alert.
        growth_threshold_mb_per_hour: growth slower than this is never called a leak.
        enable_tracemalloc: trace allocation sites (costs 2.5x-13x on allocation-heavy code).
        tracemalloc_frames: traceback depth kept per allocation (1 is by far the cheapest).
        gc_threshold: gc.set_threshold() values applied while profiling, restored on stop.
        output_dir: where generate_report() also saves each report as JSON, and where the
            run is recorded (memtui_PID_STAMP.db, see ``memtui report``) unless record_path
            names the recording.
        enable_heap_dump: dump the heap (once per crossing, HEAP_DUMP_COOLDOWN_S apart) when
            RSS crosses alert_threshold_mb; heap_dump_dir: where dumps go (./heap_dumps).
        sample_interval: seconds between memory samples.
        pid: another process to watch from outside (memory series only).
        clock: injectable clock; a non-realtime clock makes awaiting coroutines drive sampling.
        memory_reader: replaces /proc readings (tests feed synthetic series through it).
        overhead_budget: largest share of wall time snapshots may take.
        record_path: the SQLite recording to write (samples, snapshots, verdicts, markers).
    """

    def __init__(
        self,
        snapshot_interval: float = 60.0,
        trace_limit: int = 100,
        alert_threshold_mb: float | None = 1000.0,
        growth_threshold_mb_per_hour: float = 10.0,
        enable_tracemalloc: bool = True,
        tracemalloc_frames: int = 1,
        gc_threshold: tuple[int, int, int] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
        enable_heap_dump: bool = False,
        heap_dump_dir: str | os.PathLike[str] | None = None,
        *,
        sample_interval: float = 1.0,
        pid: int | None = None,
        enable_census: bool = True,
        time_gc: bool = True,
        clock: Clock | None = None,
        memory_reader: Callable[[], MemoryReading] | None = None,
        overhead_budget: float = 0.02,
        record_path: str | os.PathLike[str] | None = None,
    ) -> None:
        check_arguments(
            snapshot_interval=snapshot_interval,
            sample_interval=sample_interval,
            trace_limit=trace_limit,
            tracemalloc_frames=tracemalloc_frames,
            growth_threshold_mb_per_hour=growth_threshold_mb_per_hour,
            alert_threshold_mb=alert_threshold_mb,
            overhead_budget=overhead_budget,
            gc_threshold=gc_threshold,
        )
        self._snapshot_interval = float(snapshot_interval)
        self.trace_limit = int(trace_limit)
        self.alert_threshold_mb = alert_threshold_mb
        self.growth_threshold_mb_per_hour = float(growth_threshold_mb_per_hour)
        self.tracemalloc_frames = int(tracemalloc_frames)
        self.gc_threshold = tuple(int(x) for x in gc_threshold) if gc_threshold else None
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.enable_heap_dump = enable_heap_dump
        self.heap_dump_dir = Path(heap_dump_dir if heap_dump_dir is not None else "heap_dumps")
        self._sample_interval = float(sample_interval)
        self.pid = os.getpid() if pid is None else int(pid)
        self.in_process = self.pid == os.getpid() and memory_reader is None
        self.enable_tracemalloc = enable_tracemalloc and self.in_process
        self.enable_census = enable_census and self.in_process
        self.overhead_budget = overhead_budget
        self.on_leak_detected: LeakCallback | None = None
        """Called once per new leak episode with a dict describing it (sync or async)."""
        self.on_alert: LeakCallback | None = None
        """Called for every other detector event: threshold crossings, spikes, drops."""

        self._clock: Clock = clock or SystemClock()
        self._memory = MemorySource(self.pid, memory_reader)
        limit = detect_memory_limit(None if self.in_process else self.pid)
        self._limit_bytes: int | None = limit.limit_bytes
        self._limit_source: str | None = limit.source
        self.analysis = ProcessAnalysis(
            self.growth_threshold_mb_per_hour, alert_threshold_mb, limit
        )
        """Metrics, verdict and culprits, fed from this process's readings."""
        self._collector = Collector(
            clock=self._clock,
            sample_interval_s=min(self.sample_interval, self.snapshot_interval),
            census=CensusBudget(
                self.snapshot_interval, overhead_budget, SHORT_RUN_BUDGET, SHORT_RUN_S, True
            ),
            read_memory=self._read_memory,
            pid=self.pid,
            early_samples=True,
            time_gc=time_gc,
            summaries=summaries_from_env(
                self._clock.time, enabled=self.in_process and self.enable_census
            ),
            in_process=self.in_process,
            fatal=(ProcessLookupError, TargetProcessError),
        )
        """The probe's collection loop (the agent's), run here without a socket: samples,
        the census and its signals on the snapshot schedule, heap summaries."""
        self._collector.on_error = self._note_error
        self._collector.read_traced = self.enable_tracemalloc
        self._collector.census_enabled = self.enable_census
        self._collector.read_malloc = True
        self._intake = FrameIntake(self.analysis, self.pid, self.trace_limit, self._clock.time)
        """Its frames, decoded and analysed the way a monitor does an agent's."""
        self._censuses_seen = 0
        self._baseline: MemorySnapshot | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._alerts = AlertDispatcher()
        self._state = "new"
        self._t0: float | None = None
        self._start_wall = self._clock.time()
        self._end_wall: float | None = None
        self._leak_announced = False
        self._started_tracing = False
        self._saved_gc_threshold: tuple[int, int, int] | None = None
        self._target_ended = False
        self._errors: list[str] = []
        self._baseline_stats: RunningStats | None = None
        self.record_path = Path(record_path) if record_path is not None else None
        self._recording = RunRecording(self._clock, self._errors)
        self._snaps = ProfilerSnapshots(
            self.pid, self.trace_limit, self._read_memory, lambda: self._tracing, self._recording
        )
        """The spec's snapshots: the census plus a full memory reading and the sites."""
        self._collector.census_extra = self._snaps.take_extra
        triggered = enable_heap_dump and self.pid == os.getpid()
        self._dumps = ProfilerDumps(
            self.heap_dump_dir,
            alert_threshold_mb if triggered else None,
            self._clock.time,
            self._errors,
        )

    @property
    def snapshot_interval(self) -> float:
        """Seconds between snapshots asked for (further apart when they cost more than the
        budget); may be changed while profiling."""
        return self._snapshot_interval

    @snapshot_interval.setter
    def snapshot_interval(self, seconds: float) -> None:
        require(seconds > 0, f"snapshot_interval must be > 0, got {seconds!r}")
        self._snapshot_interval = float(seconds)
        self._apply_intervals()

    @property
    def sample_interval(self) -> float:
        """Seconds between memory samples asked for; may be changed while profiling."""
        return self._sample_interval

    @sample_interval.setter
    def sample_interval(self, seconds: float) -> None:
        require(seconds > 0, f"sample_interval must be > 0, got {seconds!r}")
        self._sample_interval = float(seconds)
        self._apply_intervals()

    def _apply_intervals(self) -> None:
        """Memory is sampled at least as often as snapshots are taken."""
        collector = self._collector
        collector.sample_interval_s = min(self._sample_interval, self._snapshot_interval)
        if collector.census_budget is not None:
            budget = collector.census_budget._replace(interval_s=self._snapshot_interval)
            collector.census_budget = budget
            collector.census_gap_s = max(collector.census_gap_s, self._snapshot_interval)

    # ----------------------------------------------------------------- lifecycle
    @property
    def is_running(self) -> bool:
        return self._state == "running"

    async def start(self) -> None:
        """Start sampling; raise TracingError when already running."""
        if self._state == "running":
            raise TracingError("the profiler is already running; call stop() first")
        self._alerts.loop = asyncio.get_running_loop()
        self._memory.open()
        if self.gc_threshold is not None:
            self._saved_gc_threshold = gc.get_threshold()
            gc.set_threshold(*self.gc_threshold)
        if self.enable_tracemalloc:
            self._started_tracing = start_tracing(self.tracemalloc_frames)
        self._stop.clear()
        self._state = "running"
        now = self._clock.monotonic()
        if self._t0 is None:
            self._t0 = now
            self._start_wall = self._clock.time()
            self.culprits.start_t = self._start_wall
        self._collector.start()
        self._open_recorder()
        self.poll()
        if self._clock.realtime:
            self._thread = threading.Thread(target=self._run, name="memtui-sampler", daemon=True)
            self._thread.start()

    def _open_recorder(self) -> None:
        self._recording.open(
            self.record_path,
            self.output_dir,
            {
                "role": "profiler" if self.in_process else "monitor",
                "kind": "in-process" if self.in_process else "outside",
                "pid": self.pid,
                "started_at": self._start_wall,
                "growth_threshold_mb_per_hour": self.growth_threshold_mb_per_hour,
                "alert_threshold_mb": self.alert_threshold_mb,
                "memory_limit_bytes": self._limit_bytes,
                "memory_limit_source": self._limit_source,
                "sample_interval_s": self.sample_interval,
            },
            self.pid,
        )

    @property
    def _summaries(self) -> HeapSummaries:
        """The heap summaries' cadence (the collector's)."""
        return self._collector.summaries

    @property
    def recorder(self) -> Recorder | None:
        """The run's recording (None when none is written)."""
        return self._recording.recorder

    @property
    def recording_path(self) -> str | None:
        """The SQLite recording of this run (see ``memtui report``), if one is written."""
        return self._recording.path

    async def stop(self) -> None:
        """Stop sampling after a final snapshot; raise TracingError when not running."""
        if self._state != "running":
            raise TracingError("the profiler is not running; call start() first")
        self._stop.set()
        self._collector.summaries.cancel()  # a summary under way would only burn a core
        thread, self._thread = self._thread, None
        if thread is not None:
            await asyncio.to_thread(thread.join, 60.0)
        with self._lock:
            if not self._target_ended:
                self._safe(self._collector.sample)
                self._safe(self._collector.census)
                self._take_frame()
            self._announce_final_leak()
            self._state = "stopped"
            self._end_wall = self._clock.time()
            self._collector.stop()
            self._collector.close()
            if self._started_tracing:
                stop_tracing()
                self._started_tracing = False
            if self._saved_gc_threshold is not None:
                gc.set_threshold(*self._saved_gc_threshold)
                self._saved_gc_threshold = None
            self._recording.close()
        await self._alerts.wait()  # a callback scheduled by the final verdict, too
        self._memory.close()

    async def monitor_continuous(
        self, days: float = 0.0, hours: float = 0.0, minutes: float = 0.0, seconds: float = 0.0
    ) -> None:
        """Profile for the given time (fractions allowed), starting and stopping if needed.

        Returns early when a watched process exits.
        """
        total = days * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds
        require(total > 0, f"monitor_continuous needs a positive duration, got {total!r} s")
        started_here = self._state != "running"
        if started_here:
            await self.start()
        try:
            await self._run_for(total)
        finally:
            if started_here and self._state == "running":
                await self.stop()

    async def create_baseline(self, duration_hours: float = 1.0) -> dict[str, Any]:
        """Profile for ``duration_hours`` and keep the result as the baseline for later growth."""
        require(duration_hours > 0, f"duration_hours must be > 0, got {duration_hours!r}")
        start_samples = self.metrics.samples
        m0 = RunningStats()
        self._baseline_stats = m0
        try:
            await self.monitor_continuous(hours=duration_hours)
        finally:
            self._baseline_stats = None
        self._baseline = self._snaps.latest
        stats = m0.result()
        return {
            "duration_hours": duration_hours,
            "samples": self.metrics.samples - start_samples,
            "average_mb": stats["average_mb"],
            "min_mb": stats["min_mb"],
            "peak_mb": stats["peak_mb"],
            "end_mb": self.current_memory_mb,
            "object_counts": self._baseline.top_types(50) if self._baseline else {},
        }

    async def _run_for(self, total_s: float) -> None:
        end = self._clock.monotonic() + total_s
        while self._state == "running" and not self._target_ended:
            now = self._clock.monotonic()
            if not self._clock.realtime:
                self.poll()
            if now >= end:
                break
            if self._clock.realtime:
                await self._clock.sleep(min(end - now, 1.0))
            else:
                due = self._collector.next_due_s()
                await self._clock.sleep(max(0.0, min(end, due) - now) or min(end - now, 1e-3))

    def _run(self) -> None:
        while not self._stop.is_set():
            self.poll()
            if self._target_ended:
                return
            wait = self._collector.next_due_s() - self._clock.monotonic()
            if self._clock.wait(max(0.0, wait), self._stop):
                return

    def poll(self) -> None:
        """Do whatever collection is due now and analyse its frame (the sampler thread calls
        this; tests may too)."""
        with self._lock:
            if self._state != "running" or self._target_ended:
                return
            collector = self._collector
            if self.detector.verdict.state != "ok":
                collector.summaries.request_now()
            try:
                collector.poll()
            except (ProcessLookupError, TargetProcessError):
                self._mark_ended()
            self._take_frame()

    def _take_frame(self) -> None:
        """The collector's news as a frame, decoded and fed to the analysis (the intake);
        then what the spec's API adds: the recording, threshold dumps, callbacks, the
        tracemalloc sites of a snapshot."""
        collector = self._collector
        new_census = collector.censuses != self._censuses_seen
        raw = collector.frame(
            self._intake.seq,
            self._intake.summary_seq,
            census=None if new_census else {},  # unchanged: not decoded again
            gc_state={},  # read below, whole
        )
        frame = decode_frame(raw)
        full = collector.latest_census_result
        if new_census and frame.census is not None and full is not None:
            # In this process the census is whole; an agent's frame carries its top types.
            frame = dataclasses.replace(frame, census=full)
        if collector.gc_monitor is not None:
            frame = dataclasses.replace(frame, gc=collector.gc_monitor.read())
        events = self._intake.observe_frame(frame)
        self._intake.new_events.clear()
        for row in frame.samples:
            self._after_sample(row, frame.gc)
        if new_census:
            self._censuses_seen = collector.censuses
            now = self._clock.monotonic()
            elapsed = now - (self._t0 if self._t0 is not None else now)
            self._snaps.after_census(
                frame.census, self._clock.time(), elapsed, collector.gc_monitor
            )
        summary = frame.heap_summary
        if summary is not None and isinstance(raw.get("heap_summary"), dict):
            taken = summary.taken_at_s or self._clock.time()
            census = self._intake.heap_census
            self._snaps.after_heap_summary(
                raw["heap_summary"], taken, taken - self._start_wall, census
            )
        for event in events:
            self._dispatch(event)

    @property
    def _tracing(self) -> bool:
        """Allocation sites are read whenever tracemalloc traces, whoever started it
        (``python -X tracemalloc``, another profiler): only the one that started it stops it."""
        if not self.enable_tracemalloc or self._state != "running":
            return False
        if self._started_tracing:
            return True
        import tracemalloc

        return tracemalloc.is_tracing()

    def _safe(self, work: Callable[[], object]) -> None:
        """Run sampling work; a failure is recorded, never raised into the profiled program."""
        try:
            work()
        except (ProcessLookupError, TargetProcessError):
            self._mark_ended()
        except Exception as exc:
            self._note_error(exc)

    def _note_error(self, exc: BaseException) -> None:
        message = f"{type(exc).__name__}: {exc}"
        log.warning("memtui sampling failed: %s", message)
        if len(self._errors) < 20:
            self._errors.append(message)

    def _mark_ended(self) -> None:
        self._target_ended = True
        self._end_wall = self._clock.time()

    # ----------------------------------------------------------------- sampling
    def _read_memory(self, full: bool = False) -> MemoryReading:
        """RSS and VMS (``full``: USS and PSS too, when /proc allows)."""
        return self._memory.read(full)

    def _after_sample(self, row: SampleRow, gc_reading: GcReading | None) -> None:
        """A new sample, analysed already: the baseline, threshold dumps, the recording."""
        if self._baseline_stats is not None:
            self._baseline_stats.add(row.t_s, row.rss_bytes)
        self._dumps.observe(self._clock.monotonic(), row.rss_bytes / MIB)
        rec = self.recorder
        if rec is None:
            return
        traced = row.traced_bytes if self._tracing else None
        rec.add_sample(row.t_s, row.rss_bytes, row.vms_bytes, traced, row.allocated_blocks or None)
        if gc_reading is not None and self.in_process:
            rec.add_gc(row.t_s, gc_reading._asdict())
        v = self.detector.verdict
        rec.add_verdict(row.t_s, v.state, v.rate_mb_per_hour, v.confidence, v.reason)
        self._dumps.record_new(rec)
        rec.maybe_flush()

    # ----------------------------------------------------------------- callbacks
    def _announce_final_leak(self) -> None:
        """A run too short for the live alert (it needs 32 samples and persistence) whose final
        verdict is a leak still calls on_leak_detected, once, when it stops."""
        if self._leak_announced:
            return
        v = self.detector.final_verdict()
        if v.leak_detected:
            t = self.metrics.duration_s
            msg = f"leak: RSS floor {v.rate_mb_per_hour:+.0f} MB/h ({v.reason}), final verdict"
            self._dispatch(LeakEvent("leak_started", t, v.rate_mb_per_hour, msg), v)

    def _dispatch(self, event: LeakEvent, verdict: LeakVerdict | None = None) -> None:
        if event.kind == "leak_started":
            self._leak_announced = True
        callback = self.on_leak_detected if event.kind == "leak_started" else self.on_alert
        if callback is None:
            return
        info = self._event_info(event, verdict)
        self._alerts.dispatch(callback, info)

    def _event_info(self, event: LeakEvent, verdict: LeakVerdict | None = None) -> dict[str, Any]:
        suspects = self.culprits.suspects(5)
        tracebacks = [str(t) for t in self.get_leaking_tracebacks()[:5]]
        verdict = verdict or self.detector.verdict
        return event_info(event, verdict, self.pid, self.metrics.current_mb, suspects, tracebacks)

    # ----------------------------------------------------------------- queries
    @property
    def current_memory_mb(self) -> float:
        """RSS now, in MiB (a fresh reading; about 1 µs). A reading over alert_threshold_mb
        starts the threshold heap dump like a sample would (the spec's loop polls this)."""
        try:
            mb = self._read_memory().rss_bytes / MIB
            if self._state == "running":
                self._dumps.observe(self._clock.monotonic(), mb)
            return mb
        except (ProcessLookupError, TargetProcessError):
            self._mark_ended()
            return self.metrics.current_mb

    @property
    def effective_snapshot_interval_seconds(self) -> float:
        """The snapshot spacing really used (longer than asked when snapshots are costly)."""
        return float(self._collector.census_gap_s)

    @property
    def peak_memory_mb(self) -> float:
        return self.metrics.peak_mb

    @property
    def verdict(self) -> LeakVerdict:
        return self.detector.verdict

    @property
    def target_ended(self) -> bool:
        """True when a watched process exited during profiling."""
        return self._target_ended

    @property
    def snapshots(self) -> tuple[MemorySnapshot, ...]:
        """Summaries of the periodic snapshots (bounded; without per-site traces)."""
        return self._snaps.log.items

    def take_snapshot(self) -> MemorySnapshot:
        """A full snapshot now: memory, tracemalloc sites, object counts, GC state."""
        with self._lock:
            self._memory.open()
            if self._state == "running" and not self._target_ended:
                # The collector's census now (its schedule moves on), analysed like any other.
                self._safe(self._collector.census)
                self._take_frame()
                if self._snaps.latest is not None:
                    return self._snaps.latest
            now = self._clock.monotonic()
            elapsed = now - (self._t0 if self._t0 is not None else now)
            return self._snaps.take_now(self._clock.time(), elapsed, self.enable_census)

    def set_baseline(self) -> MemorySnapshot:
        """Take a snapshot that later growth (sites, types) is measured against."""
        self._baseline = self.take_snapshot()
        return self._baseline

    def _current_sites_snapshot(self) -> MemorySnapshot | None:
        if self._state == "running" and self._tracing:
            return self.take_snapshot()
        return self._snaps.latest

    # ----------------------------------------------------------------- reports
    def report_input(self, command: str = "") -> ReportInput:
        """What build_report needs, from this run."""
        return profiler_report_input(self, command)

    def generate_report(self, command: str = "") -> dict[str, Any]:
        """The documented JSON report; also saved under output_dir when one is set."""
        report = build_report(self.report_input(command))
        if self.output_dir is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self._clock.time()))
            write_report(report, str(self.output_dir / f"memory_report_{self.pid}_{stamp}.json"))
        return report
