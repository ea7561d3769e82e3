"""Provides watch mode: allocation sites found by tracing in short windows, ranked across windows.

Continuous tracemalloc slows allocation-heavy code 2.5x-12.8x (1 frame). Watch mode traces
only a short window (``window_s``, default 0.25 s) every ``period_s`` (default 15 s, with
±20% jitter so windows do not lock onto a periodic program): a 1.7% duty cycle, so even a
12.8x slowdown inside the windows costs the program about 1.6% overall.

Each window takes two site totals of what was allocated since the window started and is
still alive: one half-way (``mid``) and one at the end. For a leaking site the end holds
twice what the middle did (``end - mid`` ≈ rate x window/2, every window); a site whose
objects live briefly holds about the same at both instants, so its growth is zero on average
and its median over windows is ~0 even when a big temporary object happens to be alive at
one of them. Sites are ranked by the median growth per window across the last
``MAX_WINDOWS`` windows, so one site that is busy by chance never tops the list.

When tracemalloc is already tracing (the program uses it, or continuous mode), windows are
not run: the full traces are aggregated every ``FULL_INTERVAL_S`` (more rarely when that is
costly), and sites are ranked by live size. Standard library only.
"""

from __future__ import annotations

import math
import threading
import time
import tracemalloc
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from memtui.probe.clock import Clock, SystemClock
from memtui.probe.leak_budget import (
    LEAK_BUDGET_BYTES,
    LEAK_FACTOR,
    LEAKY_STOP,
    leak_bytes,
    stopped_note,
)
from memtui.probe.tracing import (
    TraceKey,
    aggregate_raw_traces,
    group_by_site,
    is_user_file,
    site_frame,
    take_site_totals,
    visible_totals,
)

DEFAULT_WINDOW_S: float = 0.25
DEFAULT_PERIOD_S: float = 15.0
FIRST_WINDOW_S: float = 2.0
"""Delay of the first window after start, so a leak is named within the first minute."""
JITTER: float = 0.2
MAX_SITES: int = 200
"""Sites kept per window (half by growth, half by size) and in the full-trace ranking."""
MAX_WINDOWS: int = 64
FULL_INTERVAL_S: float = 10.0
FULL_BUDGET: float = 0.02
"""Full-trace aggregation is spaced so it takes at most this share of wall time."""
CONTINUOUS_COST_NOTE: str = (
    "continuous tracemalloc slows allocation-heavy code 2.5x-12.8x (1 frame), more with frames"
)
MODES: tuple[str, ...] = ("off", "watch", "continuous", "external")
SUSPECT_P: float = 0.05
"""A site is a suspect when growing in that many windows has at most this chance (sign test)."""
MIB: float = 1024.0 * 1024.0

Totals = dict[TraceKey, tuple[int, int]]


@dataclass(frozen=True, slots=True)
class Window:
    """What one tracing window found, per site: (end bytes, end blocks, growth bytes, growth
    blocks), growth being end minus mid-window. Sites are ``(site_frame,)`` keys (see
    memtui.probe.tracing.site_index); ``stacks`` holds each one's heaviest full traceback."""

    t_end: float
    traced_s: float
    """Wall time tracemalloc was on for this window."""
    half_s: float
    """Wall time between the mid and end snapshots (growth is over this span)."""
    cost_s: float
    """Time spent taking and aggregating the two snapshots."""
    sites: dict[TraceKey, tuple[int, int, int, int]]
    stacks: dict[TraceKey, TraceKey] = field(default_factory=dict)


def window_sites(
    mid: Totals, end: Totals, keep: int = MAX_SITES
) -> dict[TraceKey, tuple[int, int, int, int]]:
    """Per site (end bytes, end blocks, growth bytes, growth blocks), bounded to ``keep`` sites."""
    rows: dict[TraceKey, tuple[int, int, int, int]] = {}
    for key in end.keys() | mid.keys():
        end_size, end_count = end.get(key, (0, 0))
        mid_size, mid_count = mid.get(key, (0, 0))
        rows[key] = (end_size, end_count, end_size - mid_size, end_count - mid_count)
    if len(rows) <= keep:
        return rows
    # Keep the sites that moved most (either way: churn must average out) and the biggest.
    chosen = dict.fromkeys(sorted(rows, key=lambda k: -abs(rows[k][2]))[: keep // 2])
    for key in sorted(rows, key=lambda k: -rows[k][0]):
        if len(chosen) >= keep:
            break
        chosen.setdefault(key)
    return {k: rows[k] for k in chosen}


def _site_row(key: TraceKey, size: int, count: int, stack: TraceKey | None) -> dict[str, Any]:
    """One ranked site: ``file``/``line`` are the site (the program's own line), ``frames`` the
    full traceback (most recent call first) and ``site`` the site's index in it."""
    frames = stack or key
    file, line = site_frame(key) if key else ("<unknown>", 0)
    index = frames.index((file, line)) if (file, line) in frames else 0
    return {
        "file": file,
        "line": line,
        "frames": [[f, n] for f, n in frames],
        "site": index,
        "user_code": is_user_file(file),
        "size_bytes": size,
        "count": count,
    }


def sign_test_p(positive: int, n: int) -> float:
    """One-sided sign test: chance of ``positive`` or more rises in ``n`` coin flips."""
    return sum(math.comb(n, k) for k in range(positive, n + 1)) / 2.0**n if n else 1.0


def rank_windows(
    windows: list[Window], limit: int = 50, started_at: float | None = None
) -> list[dict[str, Any]]:
    """Sites ranked by median growth per window (absent = 0), the biggest first.

    ``size_bytes``/``count`` (``size_kind`` 'window') are the median over windows of what the
    site allocated during a window and still held at its end: a window figure, not what it
    holds (tracing is off between windows, so older objects are not seen).
    ``growth_bytes_per_s`` is the median rate at which the site's live bytes grew while
    traced; from the second window on, ``rate_mb_per_hour`` is that rate and
    ``growth_bytes`` that rate times the time watched (since ``started_at``, else since the
    first window). Code runs slower while traced, so for CPU-bound code these underestimate.
    ``suspect``: the site grew in so many windows that chance is unlikely (sign test, p≤5%).
    """
    import statistics  # here, not at import: every program start pays for the agent's

    if not windows:
        return []
    n = len(windows)
    keys: set[TraceKey] = set()
    stacks: dict[TraceKey, TraceKey] = {}
    for w in windows:
        keys.update(w.sites)
        stacks.update(w.stacks)  # the latest window's traceback wins
    span = windows[-1].t_end - (started_at if started_at is not None else windows[0].t_end)
    rows: list[tuple[float, int, dict[str, Any]]] = []
    for key in keys:
        cells = [w.sites.get(key, (0, 0, 0, 0)) for w in windows]
        growth = [c[2] for c in cells]
        median_growth = statistics.median(growth)
        rate = statistics.median(c[2] / w.half_s for c, w in zip(cells, windows, strict=True))
        block_rate = statistics.median(c[3] / w.half_s for c, w in zip(cells, windows, strict=True))
        survived = sum(c[0] for c in cells)
        positive = sum(1 for g in growth if g > 0)
        size = int(statistics.median(c[0] for c in cells))
        count = int(statistics.median(c[1] for c in cells))
        row = _site_row(key, size, count, stacks.get(key))
        filled = n >= 2
        row.update(
            size_kind="window",
            survived_bytes=survived,
            growth_bytes_per_s=round(rate, 1),
            growth_blocks_per_s=round(block_rate, 2),
            rate_mb_per_hour=round(rate * 3600.0 / MIB, 4) if filled else None,
            growth_bytes=int(rate * max(0.0, span)) if filled else None,
            windows=positive,
            of_windows=n,
            suspect=median_growth > 0 and sign_test_p(positive, n) <= SUSPECT_P,
        )
        rows.append((max(0.0, median_growth), survived, row))
    rows.sort(key=lambda r: (-r[0], -r[1]))
    return [r[2] for r in rows[:limit]]


def rank_totals(
    totals: Totals,
    previous: Totals | None,
    dt_s: float,
    limit: int = 50,
    stacks: dict[TraceKey, TraceKey] | None = None,
    first: Totals | None = None,
    since_first_s: float = 0.0,
) -> list[dict[str, Any]]:
    """Sites of full traces ranked by live size (``size_kind`` 'held'), with the rate since
    the previous totals and the growth (and its rate) since the first totals."""
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][0])[:limit]
    out = []
    for key, (size, count) in ranked:
        row = _site_row(key, size, count, (stacks or {}).get(key))
        row["size_kind"] = "held"
        if previous is not None and dt_s > 0:
            row["growth_bytes_per_s"] = round((size - previous.get(key, (0, 0))[0]) / dt_s, 1)
        if first is not None and since_first_s > 0:
            growth = size - first.get(key, (0, 0))[0]
            row["growth_bytes"] = growth
            row["rate_mb_per_hour"] = round(growth / MIB / (since_first_s / 3600.0), 4)
        out.append(row)
    return out


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
                tracemalloc.start(self.frames)
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
                    tracemalloc.start(wanted)
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
            "duty_cycle": round(self.traced_s / elapsed, 5),
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
        while not self._stop.is_set():
            self._wake.clear()
            if self.clock.wait(delay, self._stop):
                break
            try:
                delay = self._step()
            except Exception as exc:
                # The thread lives inside the target: record the failure and carry on, so a
                # surprise in tracemalloc never takes the program (or the agent) down.
                self.errors += 1
                self.last_error = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    self._release_tracing()
                delay = self.period_s

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
            self.run_window()
            return self._next_delay()
        return 1.0

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
            tracemalloc.start(max(self.frames, WATCH_FRAMES))
            self._owned = True
            self._window_open = True
            t0 = time.perf_counter()
        t_stop = t0
        try:
            if self._stop.wait(self.window_s / 2):
                return None
            t_mid = time.perf_counter()
            mid = self._snapshot_if_open()
            mid_cost = time.perf_counter() - t_mid
            if mid is None or self._stop.wait(max(0.0, self.window_s / 2 - mid_cost)):
                return None
            t_end = time.perf_counter()
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
        )
        self._windows.append(window)
        self.version += 1
        return window

    def _snapshot_if_open(self) -> tracemalloc.Snapshot | None:
        if not self._window_open:
            return None  # continuous mode or a stop took the tracing over
        try:
            return tracemalloc.take_snapshot()
        except RuntimeError:  # the program called tracemalloc.stop() inside our window
            return None


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
