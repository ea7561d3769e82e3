"""Provides watch mode: allocation sites found by tracing in short windows.

Continuous tracemalloc slows allocation-heavy code 2.5x-12.8x (1 frame). Watch mode traces
only a short window (``window_s``, default 0.25 s) at most every ``period_s`` (default 15 s,
with ±20% jitter so windows do not lock onto a periodic program), and with the default period
only while the windows' cost stays within WINDOW_SHARE of the program's run
(memtui.probe.overhead): the first comes after ~13 s, a 3-s program is never traced.

Each window takes two site totals of what was allocated since the window started and is
still alive: one half-way (``mid``) and one at the end; memtui.probe.window_rank ranks them.
For a leaking site the end holds twice what the middle did (``end - mid`` ≈ rate x window/2,
every window); a site whose objects live briefly holds about the same at both instants, so
its growth is zero on average and its median over windows is ~0 even when a big temporary
object happens to be alive at one of them. Sites are ranked by the median growth per window
across the last ``MAX_WINDOWS`` windows, so one site that is busy by chance never tops the
list.

When tracemalloc is already tracing (the program uses it, or continuous mode), windows are
not run: the full traces are aggregated every ``FULL_INTERVAL_S`` (more rarely when that is
costly), and sites are ranked by live size. Standard library only.
"""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc
from collections import deque
from typing import Any

from memtui.probe.clock import Clock, SystemClock
from memtui.probe.leak_budget import (
    LEAK_BUDGET_BYTES,
    LEAK_FACTOR,
    LEAKY_STOP,
    leak_bytes,
    stopped_note,
)
from memtui.probe.overhead import RunBudget
from memtui.probe.raw_domain import start_tracemalloc
from memtui.probe.tracing import (
    TraceKey,
    aggregate_raw_traces,
    group_by_site,
    take_site_totals,
    visible_totals,
)
from memtui.probe.window_rank import (
    MAX_SITES,
    Totals,
    Window,
    process_block_rate,
    rank_totals,
    rank_windows,
    window_sites,
)

DEFAULT_WINDOW_S: float = 0.25
DEFAULT_PERIOD_S: float = 15.0
FIRST_WINDOW_S: float = 2.0
"""Earliest first window after start (the budget below usually puts it later)."""
WINDOW_SHARE: float = 0.02
"""With the default period, windows cost the program at most this share of the time watched
(memtui.probe.overhead.RunBudget): the first one comes after ~13 s, not in a 3-s program."""
TRACED_LOSS: float = 0.85
"""The share of each traced second the program loses: code that allocates runs 5-7x slower
under tracemalloc with 8 frames (benchmarks/soak/cost.py: a Flask request costs 6.8x its CPU
while traced). Charged to the window budget with the window's own snapshot and ranking time."""
SUSPECT_WINDOW_SHARE: float = 0.035
"""The share the next window may bring the total to once the monitor suspects a leak."""
FIRST_WINDOW_COST_S: float = 0.05
"""The snapshot and ranking cost assumed for the first window, before one was measured."""
JITTER: float = 0.2
MAX_WINDOWS: int = 64
FULL_INTERVAL_S: float = 10.0
FULL_BUDGET: float = 0.02
"""Full-trace aggregation is spaced so it takes at most this share of wall time."""
CONTINUOUS_COST_NOTE: str = (
    "continuous tracemalloc slows allocation-heavy code 2.5x-12.8x (1 frame), more with frames"
)
MODES: tuple[str, ...] = ("off", "watch", "continuous", "external")


class TraceController:
    """Owns tracemalloc for the agent: watch windows, continuous tracing, or hands off.

    ``mode`` is ``off``, ``watch``, ``continuous`` (we trace all the time) or ``external``
    (the program traces; we only read). All transitions happen under one lock, and the
    controller only ever stops tracing that it started itself.
    """

    def __init__(
        self,
        mode: str = "watch",
        frames: int = 1,
        window_s: float = DEFAULT_WINDOW_S,
        period_s: float = DEFAULT_PERIOD_S,
        clock: Clock | None = None,
        first_window_s: float = FIRST_WINDOW_S,
        budget_share: float | None = None,
        run_age_s: float = 0.0,
        first_unbudgeted: bool = False,
    ) -> None:
        if mode not in ("off", "watch", "continuous"):
            raise ValueError(f"unknown trace mode {mode!r}; use off, watch or continuous")
        self.base_mode = mode
        self.frames = max(1, int(frames))
        self.window_s = max(0.01, float(window_s))
        self.period_s = max(self.window_s, float(period_s))
        self.first_window_s = first_window_s
        self.clock: Clock = clock or SystemClock()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._mode = "off"
        self._owned = False  # True while tracemalloc runs because we started it
        self._window_open = False
        self._windows: deque[Window] = deque(maxlen=MAX_WINDOWS)
        self._process_blocks_per_s: float | None = None
        """Median growth of the interpreter's allocated blocks in the windows' second halves."""
        self._full: Totals | None = None
        self._full_prev: Totals | None = None
        self._full_first: Totals | None = None
        self._full_first_at = 0.0
        self._full_stacks: dict[TraceKey, TraceKey] = {}
        self._full_dt_s = 0.0
        self._full_at = 0.0
        self._full_cost_s = 0.0
        self._full_last_cost_s = 0.0
        self.version = 0
        """Moves on with every new window or full-trace refresh (for caching rankings)."""
        self._ranked: tuple[tuple[str, int, int], list[dict[str, Any]] | None] | None = None
        self._started_mono = self.clock.monotonic()
        self._started_wall = self.clock.time()
        self.budget = (
            RunBudget(budget_share, self._started_mono - run_age_s) if budget_share else None
        )
        """Spaces the windows by their cost over the program's run so far (``run_age_s``
        before the controller started); None: every ``period_s``, as asked."""
        self._suspected = False
        self.first_unbudgeted = first_unbudgeted
        """The first window after ``first_window_s`` whatever the budget (charged all the
        same): an attach, where the user asked to look now."""
        self.traced_s = 0.0
        self.cost_s = 0.0
        self.leak_budget_bytes = LEAK_BUDGET_BYTES if LEAKY_STOP else 0  # 0: no budget
        self.leaked_bytes = 0
        """Estimated bytes the windows left in CPython's tracemalloc (LEAKY_STOP)."""
        self.errors = 0
        self.last_error = ""

    @property
    def mode(self) -> str:
        """off, watch, continuous (we trace) or external (the program traces)."""
        return self._mode

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        with self._lock:
            if tracemalloc.is_tracing():
                self._mode = "external"
            elif self.base_mode == "continuous":
                start_tracemalloc(self.frames)
                self._owned = True
                self._mode = "continuous"
            else:
                self._mode = self.base_mode
        if self._mode != "off" or self.base_mode != "off":
            self._thread = threading.Thread(
                target=self._run, name="memtui-agent-watch", daemon=True
            )
            self._thread.start()

    def stop(self, join_s: float = 2.0) -> None:
        """Stop the thread and any tracing we started (the program's tracing is left alone)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(join_s)
        with self._lock:
            self._release_tracing()
            self._mode = "off"

    def after_fork_in_child(self) -> None:
        """In a forked child: no thread exists; stop tracing the parent's agent had started.

        Runs right after fork, so it takes no lock (another parent thread may have held it).
        """
        self._stop.set()
        self._thread = None
        if self._owned and tracemalloc.is_tracing():
            tracemalloc.stop()
        self._owned = False
        self._mode = "off"
        if self.budget is not None:
            self.budget.restart(self.clock.monotonic())

    def _release_tracing(self) -> None:
        if self._owned and tracemalloc.is_tracing():
            tracemalloc.stop()
        self._owned = False
        self._window_open = False

    # -- commands --------------------------------------------------------------------------
    def set_continuous(self, on: bool, frames: int | None = None) -> None:
        """Turn continuous tracing on (with ``frames``) or off (back to the base mode).

        Raises ValueError when the program's own tracing is in the way.
        """
        with self._lock:
            if self._mode == "external" or (tracemalloc.is_tracing() and not self._owned):
                raise ValueError(
                    "tracemalloc was started by the program itself; memtui leaves it alone"
                )
            if on:
                wanted = max(1, int(frames or self.frames))
                if self._mode != "continuous" or tracemalloc.get_traceback_limit() != wanted:
                    self._release_tracing()
                    start_tracemalloc(wanted)
                    self._owned = True
                    self.frames = wanted
                self._mode = "continuous"
                self._full = self._full_prev = self._full_first = None
            else:
                if self._mode == "continuous":
                    self._release_tracing()
                self._mode = "off" if self.base_mode == "off" else "watch"
        self._wake.set()

    def state(self) -> dict[str, Any]:
        elapsed = max(1e-9, self.clock.monotonic() - self._started_mono)
        tracing = tracemalloc.is_tracing()
        traced, peak = tracemalloc.get_traced_memory() if tracing else (0, 0)
        return {
            "mode": self._mode,
            "tracing": tracing,
            "frames": tracemalloc.get_traceback_limit() if tracing else self.frames,
            "started_by_agent": self._owned,
            "window_s": self.window_s,
            "period_s": self.period_s,
            "windows": len(self._windows),
            "process_blocks_per_s": self._process_blocks_per_s,
            "duty_cycle": round(self.traced_s / elapsed, 5),
            "budget_share": self.budget.share if self.budget is not None else None,
            "cost_s": round(self.cost_s + self._full_cost_s, 4),
            "traced_bytes": traced if self._mode in ("continuous", "external") else 0,
            "peak_traced_bytes": peak if self._mode in ("continuous", "external") else 0,
            "continuous_cost": CONTINUOUS_COST_NOTE,
            "leaked_bytes": self.leaked_bytes,
            "windows_stopped": self.windows_stopped(),
            "errors": self.errors,
            "last_error": self.last_error,
        }

    def windows_stopped(self) -> str:
        """Why no more windows are run ('' while they are)."""
        return stopped_note(self.leaked_bytes, self.leak_budget_bytes)

    def sites(self, limit: int = 50) -> list[dict[str, Any]] | None:
        """The current ranking: windows in watch mode, live totals with full traces (cached)."""
        key = (self._mode, self.version, limit)
        cached = self._ranked
        if cached is not None and cached[0] == key:
            return cached[1]
        ranked = self._rank(limit)
        self._ranked = (key, ranked)
        return ranked

    def _rank(self, limit: int) -> list[dict[str, Any]] | None:
        mode = self._mode
        if mode in ("continuous", "external"):
            full = self._full
            if full is None:
                return None
            return rank_totals(
                full,
                self._full_prev,
                self._full_dt_s,
                limit,
                self._full_stacks,
                self._full_first,
                self._full_at - self._full_first_at,
            )
        if mode == "watch" or self._windows:
            return rank_windows(list(self._windows), limit, self._started_wall)
        return None

    def refresh_full(self) -> None:
        """Aggregate the full traces now (continuous or external mode; a no-op otherwise)."""
        if self._mode not in ("continuous", "external") or not tracemalloc.is_tracing():
            return
        started = time.perf_counter()
        try:
            totals, stacks = group_by_site(take_site_totals().by_traceback)
        except RuntimeError:  # the program stopped tracing between our check and the snapshot
            return
        cost = time.perf_counter() - started
        now = self.clock.monotonic()
        if len(totals) > MAX_SITES:
            totals = dict(sorted(totals.items(), key=lambda kv: -kv[1][0])[:MAX_SITES])
        self._full_stacks = {k: stacks[k] for k in totals}
        self._full_prev, self._full = self._full, totals
        self._full_dt_s = now - self._full_at if self._full_prev is not None else 0.0
        self._full_at = now
        if self._full_first is None:
            self._full_first, self._full_first_at = totals, now
        self._full_cost_s += cost
        self._full_last_cost_s = cost
        self.version += 1

    # -- the thread ------------------------------------------------------------------------
    def _run(self) -> None:
        delay = self.first_window_s
        if not self.first_unbudgeted:
            delay = self._budget_delay(delay, self.expected_cost_s())
        due = self.clock.monotonic() + delay
        while not self._stop.is_set():
            woken = self.clock.wait(max(0.0, due - self.clock.monotonic()), self._wake)
            if self._stop.is_set():
                break
            if woken:
                self._wake.clear()
                if self._suspected:  # one window sooner, within the suspect share
                    soon = self._budget_delay(0.0, self.expected_cost_s(), SUSPECT_WINDOW_SHARE)
                    due = min(due, self.clock.monotonic() + soon)
                continue
            try:
                self._suspected = False
                delay = self._step()
            except Exception as exc:
                # The thread lives inside the target: record the failure and carry on, so a
                # surprise in tracemalloc never takes the program (or the agent) down.
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._release_tracing()
                delay = self.period_s
            due = self.clock.monotonic() + delay

    def leak_suspected(self) -> None:
        """The monitor's detector suspects a leak: the next window comes as soon as
        SUSPECT_WINDOW_SHARE of the run allows (naming the line is worth more now)."""
        if self.budget is not None:
            self._suspected = True
            self._wake.set()

    def _next_delay(self) -> float:
        import random  # here, not at import (the agent's start)

        return self.period_s * random.uniform(1.0 - JITTER, 1.0 + JITTER)

    def _step(self) -> float:
        with self._lock:
            if self._mode == "external" and not tracemalloc.is_tracing():
                self._mode = self.base_mode if self.base_mode != "continuous" else "watch"
            elif self._mode in ("watch", "off") and tracemalloc.is_tracing() and not self._owned:
                self._mode = "external"
            mode = self._mode
        if mode in ("continuous", "external"):
            self.refresh_full()
            return max(FULL_INTERVAL_S, self._full_last_cost_s / FULL_BUDGET)
        if mode == "watch":
            if self.windows_stopped():
                return 60.0  # the mode may still change (continuous on request, external)
            window = self.run_window()
            if window is not None and self.budget is not None:
                self.budget.charge(window_cost_s(window))
            return self._budget_delay(self._next_delay(), self.expected_cost_s())
        return 1.0

    def expected_cost_s(self) -> float:
        """What the next window will cost the program: the last one's cost, or a guess."""
        if self._windows:
            return window_cost_s(self._windows[-1])
        return self.window_s * TRACED_LOSS + FIRST_WINDOW_COST_S

    def _budget_delay(self, delay: float, expected_s: float, share: float | None = None) -> float:
        """``delay``, or longer when a window now would spend more than the budget allows."""
        if self.budget is None:
            return delay
        return max(delay, self.budget.earliest_s(expected_s, share) - self.clock.monotonic())

    def run_window(self) -> Window | None:
        """Trace one window now and add it to the ranking; None when it was cut short.

        Tracing is on only from start to the end snapshot: snapshots are taken while tracing
        (tens of ms per 100k blocks) and aggregated after tracemalloc stopped, when the
        aggregation's own allocations are no longer traced and the program runs at full speed.
        """
        with self._lock:
            if self._mode != "watch" or tracemalloc.is_tracing() or self.windows_stopped():
                return None
            # Deeper than asked, so that the agent's own allocations (json, threading) can be
            # told apart from the program's, and a site is the program's own line even when
            # the allocation happened in a library it called (memtui.probe.tracing.site_index).
            start_tracemalloc(max(self.frames, WATCH_FRAMES))
            self._owned = True
            self._window_open = True
            t0 = time.perf_counter()
        t_stop = t0
        try:
            if self._stop.wait(self.window_s / 2):
                return None
            t_mid = time.perf_counter()
            mid = self._snapshot_if_open()
            mid_blocks = sys.getallocatedblocks()  # the mid snapshot alive in both readings
            mid_cost = time.perf_counter() - t_mid
            if mid is None or self._stop.wait(max(0.0, self.window_s / 2 - mid_cost)):
                return None
            t_end = time.perf_counter()
            end_blocks = sys.getallocatedblocks()
            end = self._snapshot_if_open()
            if end is None:
                return None
        finally:
            with self._lock:
                if self._window_open:
                    self._release_tracing()
                    t_stop = time.perf_counter()
                    self.traced_s += t_stop - t0
        mid_sites, mid_stacks, _ = _aggregate(mid)
        end_sites, stacks, leak = _aggregate(end)
        if self.leak_budget_bytes:
            self.leaked_bytes += int(leak * LEAK_FACTOR)
        del mid, end
        sites = window_sites(mid_sites, end_sites)
        stacks = {k: stacks.get(k) or mid_stacks[k] for k in sites}
        cost = mid_cost + time.perf_counter() - t_end
        self.cost_s += cost
        window = Window(
            t_end=self.clock.time(),
            traced_s=t_stop - t0,
            half_s=max(1e-6, t_end - t_mid),
            cost_s=cost,
            sites=sites,
            stacks=stacks,
            process_blocks=end_blocks - mid_blocks,
        )
        self._windows.append(window)
        self._process_blocks_per_s = process_block_rate(list(self._windows))
        self.version += 1
        return window

    def _snapshot_if_open(self) -> tracemalloc.Snapshot | None:
        if not self._window_open:
            return None  # continuous mode or a stop took the tracing over
        try:
            return tracemalloc.take_snapshot()
        except RuntimeError:  # the program called tracemalloc.stop() inside our window
            return None


def window_cost_s(window: Window) -> float:
    """What a window cost the program: the time it ran traced (TRACED_LOSS of it lost) and
    the snapshots and ranking, which hold the GIL."""
    return window.traced_s * TRACED_LOSS + window.cost_s


WATCH_FRAMES: int = 8
"""Frames traced inside a window (cheap at a 1-2% duty cycle): enough to recognise memtui's own
work and to find the program's line above a few library frames."""


def _aggregate(
    snapshot: tracemalloc.Snapshot,
) -> tuple[Totals, dict[TraceKey, TraceKey], int]:
    """Per-site totals of a window snapshot (the agent's own allocations left out), with each
    site's heaviest full traceback, and the bytes its distinct tracebacks take in tracemalloc
    (what a stop leaks where LEAKY_STOP).

    Runs after tracing stopped, so its own allocations are not traced (about 0.4 µs per
    block here; a Counter over (traceback, size) pairs measured slower, as it hashes more).
    """
    raw = snapshot.traces._traces  # type: ignore[attr-defined]  # raw tuples: no Trace objects
    by_traceback = aggregate_raw_traces(raw)
    leak = leak_bytes(by_traceback)
    totals, stacks = group_by_site(visible_totals(by_traceback))
    return totals, stacks, leak
