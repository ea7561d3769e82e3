"""Provides heap summaries on a cadence: a forked copy of the target counts and names its heap.

Why a fork: a census of *every* object (CPython does not track dicts and tuples of atomic values,
so ``gc.get_objects()`` misses most leaked records) and the path from a root to each large
container need a walk of the whole heap, 1-2 s of Python work per million objects. In a
copy-on-write child that work runs on another core while the target only pays for the fork (a few
ms) and the pages it writes meanwhile. The child walks (memtui.probe.heap.walk), summarises
(memtui.probe.heap.paths) and sends one JSON document back through a pipe; it never writes files.

The parent forks only with memory headroom for the copy-on-write worst case
(memtui.probe.heap.headroom) and never while a census of its own holds the object list.
``HeapSummaries`` schedules them: soon after start, then spaced by the heap's age and by what
the last one cost, and at once when asked (the detector suspects a leak). Standard library only.
"""

from __future__ import annotations

import contextlib
import gc
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable
from types import ModuleType
from typing import Any

from memtui.probe.census import _census_lock
from memtui.probe.heap.headroom import fork_headroom, memtui_fork, name_child
from memtui.probe.memory import ProcMemoryReader
from memtui.probe.overhead import RunBudget, cpu_weight, process_age_s

CHILD_BYTES_PER_OBJECT: int = 260
"""What the child allocates per object (walk index, CSR, ownership arrays), for the headroom."""
FIRST_AFTER_S: float = 4.0
MIN_INTERVAL_S: float = 5.0
MAX_INTERVAL_S: float = 300.0
AGE_DIVISOR: float = 6.0
"""The interval grows with the time watched (age / 6: 5-10 s in the first minute, 100 s at
10 minutes, 5 minutes from half an hour on): early summaries find a leak fast, later ones cost
little."""
COST_FACTOR: float = 5.0
"""The next summary waits at least this many times the last child's CPU time (the child takes
at most ~20% of one core; it runs at nice 5, so on a busy machine its wall time is mostly
waiting, which costs nobody) ..."""
PAUSE_BUDGET: float = 0.005
"""... and what the target pays (the fork pause and the copy-on-write faults while the child
runs) stays under 0.5% of wall time."""
REQUEST_GAP_S: float = 5.0
"""Requested summaries (request_now) come at most this often."""
SUMMARY_SHARE: float = 0.02
"""Over the whole run, summaries cost the target at most this share of the time watched
(memtui.probe.overhead.RunBudget): the pause, the copy-on-write faults and, weighted by the
cores (overhead.cpu_weight), the child's CPU. A 3-s program gets none; a 1M-object heap gets
its first after a few minutes on 2 cores."""
SUSPECT_SHARE: float = 0.10
"""The share for SUSPECT_HOLD_S after a leak is suspected (request_now): naming the culprit is
worth more then, and a small heap's summary is cheap (a big heap's still waits: 3M objects
take minutes of the run at this share)."""
SUSPECT_HOLD_S: float = 120.0
CHILD_CPU_PER_BLOCK_S: float = 2.5e-6
"""The child's CPU per allocated block, to guess the first summary's cost before one ran."""


class SummaryJob:
    """One summary under way in a forked child; a reaper thread collects its answer."""

    def __init__(self, taken_at: float) -> None:
        self.taken_at = taken_at
        self.pause_s = 0.0
        self.child_pid: int | None = None
        self.started_mono = time.monotonic()
        self.faults_at_start = _minor_faults()
        self._done = threading.Event()
        self.result: dict[str, Any] | None = None
        self.error = ""

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        return self._done.wait(timeout)

    @classmethod
    def refused(cls, taken_at: float, error: str) -> SummaryJob:
        """A job that never started: ``error`` says why."""
        job = cls(taken_at)
        job.finish(None, error)
        return job

    def finish(self, result: dict[str, Any] | None, error: str = "") -> None:
        self.result, self.error = result, error
        self._done.set()


FAULT_COST_S: float = 2e-6
"""What one minor page fault costs the target while a child shares its pages (the fault and
a 4 KiB copy): the copy-on-write part of a summary's cost."""


def _minor_faults() -> int:
    try:
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)
    except (ImportError, OSError):
        return 0


def _rss() -> int:
    try:
        with ProcMemoryReader() as reader:
            return reader.read().rss_bytes
    except OSError:
        return 0


def _own_thread_ids() -> list[int]:
    """memtui's threads (their objects are its own: never entered by the summary walk)."""
    return [id(t) for t in threading.enumerate() if t.name.startswith("memtui")]


def summary_refusal() -> str:
    """Why a summary's fork would be refused now ('' when it would not): too little memory
    for the child's copy-on-write pages and its walk, cgroup limits included."""
    blocks = sys.getallocatedblocks()
    room = fork_headroom(_rss(), blocks * CHILD_BYTES_PER_OBJECT)
    return "" if room.ok else f"fork refused: {room.reason}"


def start_heap_summary(taken_at: float, timeout_s: float | None = None) -> SummaryJob:
    """Fork a child that summarises the heap; the job finishes with the summary or an error
    (refused fork: ``error`` says why and ``result`` stays None)."""
    job = SummaryJob(taken_at)
    if not hasattr(os, "fork") or not sys.platform.startswith("linux"):
        job.finish(None, f"no fork-based heap summary on {sys.platform}")
        return job
    refusal = summary_refusal()
    if refusal:
        job.finish(None, refusal)
        return job
    # The walk's modules load here, in the parent, the first time a summary runs: not at
    # every program's start (~10 ms of its fixed cost), and never in the child (an import
    # there could wait forever on a lock another thread held at the fork).
    import tracemalloc

    from memtui.probe.heap import paths, walk

    blocks = sys.getallocatedblocks()
    if timeout_s is None:
        timeout_s = 30.0 + 20.0 * blocks / 1e6
    r, w = os.pipe()
    try:
        with _census_lock, memtui_fork():  # no census list of ours alive in the copy
            roots = walk.capture_roots()
            blocked = _own_thread_ids()
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                # 3.12+ warns that fork() in a threaded process may deadlock the child: the
                # child takes no lock another thread may hold (memtui.probe.heap.dump).
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:  # pragma: no cover - the child; its answer comes through the pipe
                _child(r, w, roots, blocked, t0, walk, paths, tracemalloc)
            job.pause_s = time.perf_counter() - t0
    except Exception as exc:  # os.fork failed or was replaced by the program: fall back
        os.close(r)
        os.close(w)
        job.finish(None, f"fork failed: {type(exc).__name__}: {exc}")
        return job
    os.close(w)
    del roots
    job.child_pid = pid
    threading.Thread(
        target=_reap,
        args=(job, pid, r, time.monotonic() + timeout_s),
        name="memtui-heapsummary-reaper",
        daemon=True,
    ).start()
    return job


def _exit_if_orphaned(parent: int) -> None:  # pragma: no cover - in the child
    """The target exited (or was killed): nobody will read the summary, stop at once."""
    if os.getppid() != parent:
        os._exit(1)


def _child(  # pragma: no cover - in the child
    r: int,
    w: int,
    roots: Any,
    blocked: list[int],
    t0: float,
    walk: ModuleType,
    paths: ModuleType,
    tracemalloc: ModuleType,
) -> None:
    code = 1
    parent = os.getppid()
    try:
        os.close(r)
        name_child("memtui-summary")
        gc.disable()  # no collection in the copy: it would change the heap being summarised
        if tracemalloc.is_tracing():
            tracemalloc.stop()  # tracing the walk's own allocations would slow it 5-10x
        pause = time.perf_counter() - t0
        with contextlib.suppress(OSError):
            os.nice(5)  # the target keeps the CPU when both want it
        cpu0 = time.process_time()
        nodes, refs = walk.capture(roots, skip_leaves=True)
        _exit_if_orphaned(parent)
        graph = walk.link(nodes, refs, roots, t0)
        del nodes, refs
        _exit_if_orphaned(parent)
        walked = time.perf_counter()
        summary = paths.summarize_graph(graph, roots, blocked, lambda: _exit_if_orphaned(parent))
        summary.update(
            ok=True,
            pause_s=round(pause, 6),
            walk_s=round(walked - t0, 4),
            child_s=round(time.perf_counter() - t0, 4),
            child_cpu_s=round(time.process_time() - cpu0, 4),
            edges=len(graph.edges),
        )
        data = json.dumps(summary, separators=(",", ":"), default=str).encode()
        code = 0
    except BaseException as exc:
        data = json.dumps({"ok": False, "error": f"{type(exc).__name__}: {exc}"}).encode()
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(w, view) :]
    finally:
        os._exit(code)


def _reap(job: SummaryJob, pid: int, r: int, deadline: float) -> None:
    from memtui.probe.heap.dump import child_answer

    message, error = child_answer(pid, r, deadline, "heap summary")
    if error:
        job.finish(None, error)
        return
    message["pause_s"] = round(job.pause_s, 6)
    message["taken_at"] = job.taken_at
    job.finish(message)


def light_summary(summary: dict[str, Any], types: int = 60) -> dict[str, Any]:
    """A heap summary without its long census tail, for recordings kept for days."""
    out = {k: v for k, v in summary.items() if k != "census"}
    out["census"] = list(summary.get("census") or [])[:types]
    return out


def summaries_from_env(
    wall: Callable[[], float] = time.time, enabled: bool = True
) -> HeapSummaries:
    """HeapSummaries as the environment asks: MEMTUI_HEAP_SUMMARY=0 turns them off,
    MEMTUI_HEAP_SUMMARY_INTERVAL=S fixes the interval (short CI runs, tests; the first one
    comes after S/3)."""
    if os.environ.get("MEMTUI_HEAP_SUMMARY", "1").strip() == "0":
        enabled = False
    try:
        interval = float(os.environ.get("MEMTUI_HEAP_SUMMARY_INTERVAL", "") or MIN_INTERVAL_S)
    except ValueError:
        interval = MIN_INTERVAL_S
    interval = max(0.5, interval)
    summaries = HeapSummaries(
        wall, enabled, first_after_s=min(FIRST_AFTER_S, interval / 3), min_interval_s=interval
    )
    if "MEMTUI_HEAP_SUMMARY_INTERVAL" in os.environ:
        summaries.fixed = True  # asked for: neither the run's age nor the cost stretches it
    return summaries


def summary_note(state: dict[str, Any]) -> str:
    """One line for the report's ``source`` when heap summaries could not be taken."""
    if not state or state.get("taken") or not state.get("last_error"):
        return ""
    return (
        f"no heap summary ({state['last_error']}): object counts are of gc-tracked objects "
        "only and containers are named from module globals"
    )


class HeapSummaries:
    """The cadence of heap summaries for one process, and the latest one.

    ``tick()`` from a collector loop: starts a summary when one is due, collects a finished
    one. Time for the cadence is real monotonic time (a simulated clock must not fork a copy
    per simulated minute); ``wall`` stamps the results.
    """

    def __init__(
        self,
        wall: Callable[[], float] = time.time,
        enabled: bool = True,
        first_after_s: float = FIRST_AFTER_S,
        min_interval_s: float = MIN_INTERVAL_S,
        max_interval_s: float = MAX_INTERVAL_S,
        budget_share: float | None = SUMMARY_SHARE,
    ) -> None:
        self.wall = wall
        self.enabled = enabled
        self.min_interval_s = min_interval_s
        self.max_interval_s = max_interval_s
        self._started = time.monotonic()
        self._next = self._started + first_after_s
        self._last_request = 0.0
        self.job: SummaryJob | None = None
        self.latest: dict[str, Any] | None = None
        self.seq = 0
        self.taken = 0
        self.refused = 0
        self.failed = 0
        self.last_error = ""
        self.child_s_total = 0.0
        self.pause_s_total = 0.0
        self.max_pause_s = 0.0
        self.cost_s_total = 0.0
        """Fork pauses plus copy-on-write faults, estimated (FAULT_COST_S each)."""
        self.interval_s = min_interval_s
        self.fixed = False
        """An asked-for interval: neither the run's age, the cost nor the budget stretches it."""
        # The program's run so far counts: attached to a long-running service, one comes soon.
        self.budget = RunBudget(budget_share or SUMMARY_SHARE, self._started - process_age_s())
        self.budgeted = budget_share is not None
        self._last_cost_s: float | None = None
        self._suspect_until = 0.0
        self._refusal_checked_at = -math.inf

    def request_now(self) -> None:
        """Take one soon (at most every REQUEST_GAP_S), and for SUSPECT_HOLD_S let summaries
        spend SUSPECT_SHARE of the run: the detector suspects a leak."""
        now = time.monotonic()
        self._suspect_until = now + SUSPECT_HOLD_S
        if now - self._last_request >= REQUEST_GAP_S:
            self._last_request = now
            self._next = min(self._next, now)

    def expected_cost_s(self) -> float:
        """What the next summary will cost the target: the last one's cost, or a guess from
        the heap's size."""
        if self._last_cost_s is not None:
            return self._last_cost_s
        return sys.getallocatedblocks() * CHILD_CPU_PER_BLOCK_S * cpu_weight()

    def due_s(self) -> float:
        """The monotonic time the next summary may start."""
        if self.fixed or not self.budgeted:
            return self._next
        suspected = time.monotonic() < self._suspect_until
        share = SUSPECT_SHARE if suspected else self.budget.share
        return max(self._next, self.budget.earliest_s(self.expected_cost_s(), share))

    def tick(self) -> dict[str, Any] | None:
        """Start or collect; the new summary when one just finished, else None."""
        if not self.enabled:
            return None
        job = self.job
        if job is not None:
            if not job.done:
                return None
            self.job = None
            return self._collect(job)
        now = time.monotonic()
        if now < self._next:
            return None
        if now < self.due_s():
            # The budget says wait; a refusal can be told now, at little cost (read at most
            # every min_interval_s), so that the reports say why no summary comes (a tight
            # cgroup) from the first minute.
            if now - self._refusal_checked_at >= self.min_interval_s:
                self._refusal_checked_at = now
                refusal = summary_refusal()
                if refusal:
                    self._collect(SummaryJob.refused(self.wall(), refusal))
            return None
        self.job = start_heap_summary(self.wall())
        if self.job.done:  # refused or failed at once
            job, self.job = self.job, None
            return self._collect(job)
        return None

    def _collect(self, job: SummaryJob) -> dict[str, Any] | None:
        now = time.monotonic()
        age = now - self._started
        interval = min(self.max_interval_s, max(self.min_interval_s, age / AGE_DIVISOR))
        if self.fixed:
            interval = self.min_interval_s
        if job.result is None:
            self.last_error = job.error
            if job.error.startswith("fork refused"):
                self.refused += 1
            else:
                self.failed += 1
            self.interval_s = interval
            self._next = now + interval
            return None
        result = job.result
        child_s = float(result.get("child_s", 0.0))
        faults = max(0, _minor_faults() - job.faults_at_start)
        cost = job.pause_s + faults * FAULT_COST_S
        result["parent_faults"] = faults
        busy_s = float(result.get("child_cpu_s", child_s) or child_s)
        charged = cost + busy_s * cpu_weight()
        self.budget.charge(charged)
        self._last_cost_s = charged
        self.cost_s_total += cost
        self.child_s_total += child_s
        self.pause_s_total += job.pause_s
        self.max_pause_s = max(self.max_pause_s, job.pause_s)
        if not self.fixed:
            interval = max(interval, COST_FACTOR * busy_s, cost / PAUSE_BUDGET)
        self.interval_s = interval
        self._next = now + interval
        self.taken += 1
        self.seq += 1
        result["seq"] = self.seq
        result["interval_s"] = round(interval, 2)
        self.latest = result
        self.last_error = ""
        return result

    def state(self) -> dict[str, Any]:
        """What the reports say about the summaries (their cost and why any were skipped)."""
        return {
            "taken": self.taken,
            "refused": self.refused,
            "failed": self.failed,
            "last_error": self.last_error,
            "interval_s": round(self.interval_s, 2),
            "child_s_total": round(self.child_s_total, 3),
            "pause_s_total": round(self.pause_s_total, 6),
            "max_pause_s": round(self.max_pause_s, 6),
            "target_cost_s_total": round(self.cost_s_total, 6),
            "budget_share": self.budget.share if self.budgeted and not self.fixed else None,
            "charged_s_total": round(self.budget.spent_s, 4),
            "source": "fork"
            if self.taken
            else ("none: " + self.last_error if self.last_error else "none yet"),
        }

    def cancel(self) -> None:
        """Stop a summary under way (the profiler or agent stops): kill its child."""
        job = self.job
        if job is not None and not job.done and job.child_pid is not None:
            with contextlib.suppress(OSError):
                os.kill(job.child_pid, signal.SIGKILL)

    def after_fork_in_child(self) -> None:
        """A forked worker starts with no summary of its own under way."""
        self.job = None
        self.latest = None
        self._started = time.monotonic()
        self._next = self._started + FIRST_AFTER_S
        self.budget.restart(self._started)
        self._last_cost_s = None
        self._suspect_until = 0.0
