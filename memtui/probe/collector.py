"""Provides Collector: the one collection loop of a profiled process, and the frames it makes.

It samples memory into a ring of raw samples and a bounded multi-resolution History, takes a
type census (with the cheap leak signals) on a schedule spaced so that its cost stays under a
share of wall time, runs the heap summaries' cadence and the tracing controller, and keeps the
markers. ``frame()`` says all of it in the agent protocol's ``frame`` reply.

Two owners run it: the agent (memtui.probe.agent, a thread plus a socket server) and the
in-process MemoryProfiler (a thread, or the awaiting coroutine on a fake clock, no socket),
which decodes the same frames through the same analysis as a monitor does. Standard library
only: it runs inside the target.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
import tracemalloc
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

from memtui.probe.allocator import read_allocator
from memtui.probe.census import CensusResult, take_census
from memtui.probe.clock import Clock, SystemClock
from memtui.probe.gcstats import GcMonitor
from memtui.probe.heap.summary import HeapSummaries, light_summary, summaries_from_env
from memtui.probe.history import History, HistoryPoint
from memtui.probe.memory import MemoryReading, ProcMemoryReader
from memtui.probe.recorder import Recorder
from memtui.probe.signals import collect_signals
from memtui.probe.watch import TraceController

RING_SIZE: int = 3600
HISTORY_FIELDS: tuple[str, ...] = ("rss", "vms", "traced", "blocks")
FRAME_HISTORY_POINTS: int = 2000
TOP_TYPES: int = 50
MAX_MARKERS: int = 1000
FRAME_MARKERS: int = 50
SAMPLES_PER_RUN: int = 32
MIN_SAMPLE_GAP_S: float = 0.05

Row = tuple[int, float, int, int, int, int, int | None]
"""A raw sample: seq, wall time, RSS, VMS, traced bytes, allocated blocks, malloc free bytes."""


class CensusBudget(NamedTuple):
    """How far apart censuses are: at least ``interval_s``, and further when one costs more
    than ``share`` of wall time (``early_share`` in the first ``early_s`` seconds, so a short
    run still gets a few)."""

    interval_s: float
    share: float
    early_share: float | None = None
    early_s: float = 60.0
    by_cpu: bool = False
    """Budget the census's CPU time with its extra work (the profiler's traces), not only the
    census walk's wall time (the agent's)."""

    def spacing_s(self, cost_s: float, elapsed_s: float) -> float:
        share = self.share
        if self.early_share is not None and elapsed_s < self.early_s:
            share = max(share, self.early_share)
        return max(self.interval_s, cost_s / share)


def census_summary(result: CensusResult, taken_at: float) -> dict[str, Any]:
    """A census as a frame carries it: the top types, totals and the largest containers."""
    top = sorted(result.counts.items(), key=lambda kv: -kv[1])[:TOP_TYPES]
    return {
        "taken_at": taken_at,
        "counts": dict(top),
        "total_objects": result.total_objects,
        "types": len(result.counts),
        "duration_s": round(result.duration_s, 6),
        "max_hold_s": round(result.max_hold_s, 6),
        "largest_containers": [c._asdict() for c in result.largest_containers],
    }


DEFAULT_CENSUS_BUDGET = CensusBudget(30.0, 0.01)
CENSUS_COSTS_KEPT: int = 3
"""Censuses whose median cost spaces the next: one slowed by a loaded machine, a fork or a
collection in the program (0.18 s where 0.01 s is usual) must not put off the next ones for
half a minute; a heap that grew makes two of three costly, and the spacing follows."""


def history_point(p: HistoryPoint) -> dict[str, Any]:
    return {
        "t_start": p.t_start,
        "t_end": p.t_end,
        "count": p.count,
        "min": list(p.minimum),
        "max": list(p.maximum),
        "mean": [round(v, 1) for v in p.mean],
        "last": list(p.last),
    }


class Collector:
    """Samples, censuses, heap summaries and markers of one process, bounded for days.

    Args:
        clock: what time is (a fake clock makes days pass in a test).
        sample_interval_s: seconds between memory samples; with ``early_samples`` the first
            seconds are sampled faster (elapsed/32, at least 0.05 s), so a short run still
            has the 32 samples a verdict needs.
        census: the census schedule; None: no census (a process watched from outside).
        tracer: the allocation-site tracing controller; None: none.
        read_memory: replaces /proc readings (tests feed synthetic series through it).
        pid: the process whose memory is read.
        in_process: whether the objects, allocator and GC of this process are the ones
            profiled (default: pid is this process and memory is read from /proc); when not,
            only memory is sampled and the census schedule runs ``census_extra`` alone.
        fatal: errors that mean the process is gone: raised from poll(), not counted.
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        sample_interval_s: float = 1.0,
        census: CensusBudget | None = DEFAULT_CENSUS_BUDGET,
        tracer: TraceController | None = None,
        read_memory: Callable[[], MemoryReading] | None = None,
        pid: int | None = None,
        early_samples: bool = False,
        time_gc: bool = True,
        summaries: HeapSummaries | None = None,
        in_process: bool | None = None,
        fatal: tuple[type[BaseException], ...] = (ProcessLookupError,),
    ) -> None:
        self.clock: Clock = clock or SystemClock()
        self.pid = os.getpid() if pid is None else pid
        if in_process is None:
            in_process = self.pid == os.getpid() and read_memory is None
        self.in_process = in_process
        self.fatal = fatal
        self.sample_interval_s = float(sample_interval_s)
        self.census_budget = census
        self.read_traced = True
        """Sample tracemalloc's traced total while it traces (without a tracer of ours)."""
        self.census_enabled = True
        """Count objects by type in the census step (off: signals and extra work only)."""
        self.read_malloc = False
        """Also read malloc's own accounting each sample (glibc mallinfo2, a few µs): the
        profiler's triage uses the free bytes; the agent leaves it out (recordings have no
        column for it, and a report from a recording says what the live one said)."""
        """Count objects by type in the census step (off: signals and extra work only)."""
        """Sample tracemalloc's traced total while it traces (without a tracer of ours)."""
        self.tracer = tracer
        self.early_samples = early_samples
        self._read_memory = read_memory
        self.gc_monitor = GcMonitor(time_collections=time_gc) if self.in_process else None
        self.summaries = summaries or summaries_from_env(self.clock.time, enabled=False)
        """Full-heap census and named containers from a forked copy, on a cadence."""
        self.history = History(HISTORY_FIELDS)
        self.ring: deque[Row] = deque(maxlen=RING_SIZE)
        self.seq = 0
        self.lock = threading.Lock()  # never held across socket I/O
        self.started_at = self.clock.time()
        self.started_mono = self.clock.monotonic()
        self._reader: ProcMemoryReader | None = None
        self.first_census: dict[str, Any] | None = None
        self.latest_census: dict[str, Any] | None = None
        """Census summary; its "signals" key holds the leak signals taken with it."""
        self.latest_census_result: CensusResult | None = None
        """The latest census whole (a frame carries its top types only)."""
        self.census_cost_s = 0.0
        self.census_cpu_s = 0.0
        self.last_census_cpu_s = 0.0
        self.censuses = 0
        self.census_gap_s = census.interval_s if census is not None else 0.0
        self._census_costs: deque[float] = deque(maxlen=CENSUS_COSTS_KEPT)
        self.next_sample_s = self.started_mono
        self.next_census_s = self.started_mono
        self.markers: deque[tuple[float, str, str]] = deque(maxlen=MAX_MARKERS)
        self.recorder: Recorder | None = None
        """Where samples and censuses are also written (the agent's recording)."""
        self.census_extra: Callable[[], None] | None = None
        """Work of the owner's that rides on the census schedule and its budget."""
        self.errors = 0
        self.last_error = ""
        self.on_error: Callable[[BaseException], None] | None = None
        self._started = False

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Open the memory reader and the GC hook, start tracing; the first sample is due now."""
        if self._read_memory is None and self._reader is None:
            self._reader = ProcMemoryReader(None if self.pid == os.getpid() else self.pid)
        if self.gc_monitor is not None:
            self.gc_monitor.install()
        if self.tracer is not None:
            self.tracer.start()
        now = self.clock.monotonic()
        if not self._started:
            self._started = True
            self.started_mono = now
            self.started_at = self.clock.time()
        self.next_sample_s = self.next_census_s = now

    def stop(self, join_s: float = 2.0) -> None:
        """Stop the summaries, tracing and the GC hook; samples can still be read (the last
        one of a recording) until close()."""
        self.summaries.cancel()  # a summary under way would only burn a core after the stop
        if self.tracer is not None:
            self.tracer.stop(join_s)
        if self.gc_monitor is not None:
            self.gc_monitor.uninstall()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def after_fork_in_child(self) -> None:
        """In a forked child: this collection is the parent's; stop it without its files."""
        if self.tracer is not None:
            self.tracer.after_fork_in_child()
        if self.gc_monitor is not None:
            self.gc_monitor.uninstall()
        self.recorder = None  # the parent's connection: never closed nor used here
        self.summaries.after_fork_in_child()

    def note_error(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"
        if self.on_error is not None:
            self.on_error(exc)

    def add_marker(self, t: float, label: str, source: str) -> None:
        with self.lock:
            self.markers.append((t, label, source))

    # -- the loop --------------------------------------------------------------------------
    def elapsed_s(self) -> float:
        return self.clock.monotonic() - self.started_mono

    def sample_gap_s(self) -> float:
        """Seconds to the next sample (elapsed/32 early on when ``early_samples``)."""
        if not self.early_samples:
            return self.sample_interval_s
        early = max(MIN_SAMPLE_GAP_S, self.elapsed_s() / SAMPLES_PER_RUN)
        return min(self.sample_interval_s, early)

    def poll(self) -> float:
        """Do whatever is due now (sample, census, heap summary); the next due monotonic time.

        A surprise from /proc or the census is counted in ``errors``, never raised: this runs
        inside the profiled program.
        """
        now = self.clock.monotonic()
        if now >= self.next_sample_s:
            self._guard(self.sample)
            self.next_sample_s = max(self.next_sample_s + self.sample_gap_s(), now)
            self._guard(self._summary_tick)
        if self.census_budget is not None and now >= self.next_census_s:
            self._guard(self.census)
        rec = self.recorder
        if rec is not None:
            self._guard(rec.maybe_flush)
        return self.next_due_s()

    def next_due_s(self) -> float:
        due = self.next_sample_s
        if self.census_budget is not None:
            due = min(due, self.next_census_s)
        return due

    def _guard(self, work: Callable[[], object]) -> None:
        try:
            work()
        except self.fatal:
            raise
        except Exception as exc:
            self.note_error(exc)

    def read_memory(self) -> MemoryReading:
        if self._read_memory is not None:
            return self._read_memory()
        if self._reader is None:
            return MemoryReading(0, 0)
        return self._reader.read()

    def sample(self) -> Row:
        reading = self.read_memory()
        rss, vms = reading.rss_bytes, reading.vms_bytes
        mode = self.tracer.mode if self.tracer is not None else "off"
        traced = 0
        if mode in ("continuous", "external") or (self.tracer is None and self.read_traced):
            traced = tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0
        blocks, free = 0, None
        if self.in_process and self.read_malloc:
            allocator = read_allocator()
            blocks, free = allocator.allocated_blocks, allocator.malloc_free_bytes
        elif self.in_process:
            blocks = sys.getallocatedblocks()
        t = self.clock.time()
        with self.lock:
            self.seq += 1
            row: Row = (self.seq, t, rss, vms, traced, blocks, free)
            self.ring.append(row)
            self.history.append(t, (float(rss), float(vms), float(traced), float(blocks)))
        rec = self.recorder
        if rec is not None:
            rec.add_sample(t, rss, vms, traced or None, blocks or None)
        return row

    def census(self) -> dict[str, Any] | None:
        """A census of gc-tracked objects with the leak signals (and the owner's extra work),
        then the next one spaced by the budget; None outside the process (extra work only)."""
        cpu0 = time.thread_time()
        t0 = time.perf_counter()
        result = take_census(largest=10) if self.in_process and self.census_enabled else None
        # Leak signals (named containers, caches, handlers, threads, fds) ride on the census
        # schedule and its budget: about 3-11 ms each.
        signals = collect_signals().to_dict() if self.in_process else None
        if self.census_extra is not None:
            self.census_extra()
        cpu = time.thread_time() - cpu0
        self.census_cpu_s += cpu
        self.last_census_cpu_s = cpu
        self.census_cost_s += time.perf_counter() - t0
        self.censuses += 1
        budget = self.census_budget or DEFAULT_CENSUS_BUDGET
        self._census_costs.append(cpu if budget.by_cpu or result is None else result.duration_s)
        costs = sorted(self._census_costs)
        cost = costs[(len(costs) - 1) // 2]  # the median (of two, the lower)
        self.census_gap_s = budget.spacing_s(cost, self.elapsed_s())
        self.next_census_s = self.clock.monotonic() + self.census_gap_s
        if result is None:
            return None
        summary = census_summary(result, self.clock.time())
        summary["signals"] = signals
        with self.lock:
            self.latest_census_result = result
            self.latest_census = summary
            if self.first_census is None:
                self.first_census = summary
        rec = self.recorder
        if rec is not None:
            gcd = self.gc_monitor.read()._asdict() if self.gc_monitor else {}
            rec.add_snapshot(
                summary["taken_at"],
                {
                    "census": {
                        k: summary[k] for k in ("counts", "total_objects", "types", "duration_s")
                    },
                    "signals": signals,
                    "sites": self.tracer.sites(20) or [] if self.tracer is not None else [],
                    "gc": gcd,
                },
                rss=self.ring[-1][2] if self.ring else None,
            )
            rec.add_gc(summary["taken_at"], gcd)
        return summary

    def _summary_tick(self) -> None:
        summary = self.summaries.tick()
        rec = self.recorder
        if summary is not None and rec is not None:
            rec.add_snapshot(
                float(summary.get("taken_at", self.clock.time())),
                {"heap": light_summary(summary)},
                kind="heap",
                rss=self.ring[-1][2] if self.ring else None,
            )

    # -- what a frame says -----------------------------------------------------------------
    def samples_since(self, since: int, max_points: int) -> tuple[list[Any], list[Any] | None]:
        """Raw samples after ``since``, and history buckets for what the ring no longer has."""
        with self.lock:
            samples = []
            for row in reversed(self.ring):  # newest first: a poll costs what is new only
                if row[0] <= since:
                    break
                samples.append(list(row))
            samples.reverse()
            oldest = self.ring[0] if self.ring else None
            older: list[Any] | None = None
            if oldest is not None and since < oldest[0] - 1:
                points = self.history.points(max_points=max_points)
                older = [history_point(p) for p in points if p.t_end < oldest[1]]
        return samples, older

    def gc_state(self) -> dict[str, Any]:
        if self.gc_monitor is None:
            return {}
        return {**self.gc_monitor.read()._asdict(), "enabled": gc.isenabled()}

    def recent_markers(self) -> list[list[Any]]:
        with self.lock:
            return [list(m) for m in list(self.markers)[-FRAME_MARKERS:]]

    def uptime_s(self) -> float:
        return round(self.clock.monotonic() - self.started_mono, 3)

    def frame(
        self,
        since: int = 0,
        summary_seq: object = 0,
        *,
        census: dict[str, Any] | None = None,
        sites: list[dict[str, Any]] | None = None,
        gc_state: dict[str, Any] | None = None,
        include_sites: bool = True,
    ) -> dict[str, Any]:
        """What is new since sample ``since``: the agent protocol's ``frame`` reply (the
        owner adds its own keys). ``census``, ``sites`` and ``gc_state`` replace the latest
        census, the tracer's ranking (the agent shows them against its baseline) and the GC
        state (``{}``: left out, for an owner that reads the GC monitor itself);
        ``include_sites=False`` leaves the ranking out (the viewer has it: keep the last)."""
        samples, older = self.samples_since(since, FRAME_HISTORY_POINTS)
        tracer = self.tracer
        reply: dict[str, Any] = {
            "seq": self.seq,
            "oldest_seq": self.ring[0][0] if self.ring else self.seq + 1,
            "samples": samples,
            "gc": gc_state if gc_state is not None else self.gc_state(),
            "census": census if census is not None else self.latest_census,
            "sites": (sites if sites is not None else (tracer.sites() if tracer else None))
            if include_sites
            else None,
            "tracing": tracer.state() if tracer is not None else {"mode": "off"},
            "uptime_s": self.uptime_s(),
            "markers": self.recent_markers(),
            "heap_summaries": self.summaries.state(),
        }
        latest = self.summaries.latest
        if latest is not None and (
            type(summary_seq) is not int or summary_seq < self.summaries.seq
        ):
            reply["heap_summary"] = latest
        if older is not None:
            reply["history"] = older
            reply["history_fields"] = list(HISTORY_FIELDS)
        return reply

    def stats(self) -> dict[str, Any]:
        """The collector's own cost and health (the frame's ``agent`` part)."""
        uptime = max(1e-9, self.clock.monotonic() - self.started_mono)
        return {
            "census_time_fraction": round(self.census_cost_s / uptime, 5),
            "census_cost_s": round(self.census_cost_s, 4),
            "census_cpu_s": round(self.census_cpu_s, 4),
            "errors": self.errors,
            "last_error": self.last_error,
            "recording": self.recorder.state() if self.recorder is not None else None,
        }
