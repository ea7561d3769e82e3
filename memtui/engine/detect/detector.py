"""Provides LeakDetector: an online leak detector fed one memory sample at a time.

How it decides (why each step exists):

* Samples are grouped into blocks (>= 60 s and >= 4 samples). Per-sample work is one list
  append; everything else happens when a block closes, so a week at 1 sample/s is cheap.
* A block is summarised by its 25th percentile (robust to spikes and short dips). Blocks go into
  a bounded multi-resolution store (`leak_floor.FloorStore`).
* GC sawtooth period is estimated from sudden drops; the trend is fitted to the *floor*: the
  20% quantile over groups of blocks spanning >= 1.5 GC cycles.
* Windows of 1 h, 2 h, 4 h, ... (up to the segment age) are fitted by least squares with the
  slope's standard error inflated for autocorrelated residuals. A window shows *growth* when the
  lower confidence bound of the rate exceeds the threshold, the recent half still grows, the
  growth is not decelerating (warm-up, log saturation) and one step does not explain it better
  than a line (cache fill). Twice the window must not be decelerating either.
* Growth seen in 3 consecutive evaluations of a window (spaced by 1/8 window) raises the alert;
  it clears only after a hysteresis period without growth.
* A large persistent fall of the floor starts a new segment (restart); the state survives it.
* Short recordings (under 32 min, where 60 s blocks are too few) are judged on blocks whose
  length adapts to the elapsed time (`leak_floor.short_check`): only overwhelming, linear,
  non-decelerating growth counts, and the live alert needs that verdict to have held for a third
  of the time observed. Spikes, drops and threshold crossings live in `leak_events`.
"""

from __future__ import annotations

import math
import statistics
from collections import deque

import numpy as np

from memtui.engine.detect.events import AnomalyWatch, EventLog, LeakEvent, LeakState, LeakVerdict
from memtui.engine.detect.floor import (
    MIN_POINTS,
    SHORT_MIN_POINTS,
    SHORT_MIN_SPAN_S,
    SHORT_SPAN_S,
    FloorStore,
    ShortRun,
    WindowCheck,
    block_rho,
    check_window,
    complete,
    group_floor,
    segment_rate,
    short_check,
)
from memtui.engine.detect.stats import (
    HOUR,
    MIB,
    FloatArray,
    TrendFit,
    fit_trend,
    normal_cdf,
)
from memtui.engine.detect.stats import (
    sorted_median as _sorted_median,
)

__all__ = [
    "MIB",
    "LeakDetector",
    "LeakEvent",
    "LeakState",
    "LeakVerdict",
    "TrendFit",
    "fit_trend",
]


BLOCK_MIN_S = 60.0
BLOCK_MIN_SAMPLES = 4
BLOCK_MAX_SAMPLES = 4096
WINDOWS_S: tuple[float, ...] = tuple(
    sorted({HOUR * m * 2.0**k for k in range(8) for m in (1.0, 1.5)})
)[:-1]
"""1, 1.5, 2, 3, 4, 6 ... 128 h: half-octave steps, so a leak is first judged on a window not
much longer than the time it has run (each window is re-checked every 1/8 of its length)."""
PERSIST_EVALS = 3
LONE_PERSIST_EVALS = 6
GC_BLOCKS = 64
TICK_S = WINDOWS_S[0] / 16.0


class LeakDetector:
    """Online leak detector: O(1) amortised work per sample, bounded memory.

    Args:
        growth_threshold_mb_per_hour: growth slower than this is never a leak.
        alert_threshold_mb: absolute RSS level whose crossing raises a threshold event.
        memory_limit_bytes: the limit used for projected time to OOM (None: not projected).
    """

    def __init__(
        self,
        growth_threshold_mb_per_hour: float = 10.0,
        alert_threshold_mb: float | None = None,
        memory_limit_bytes: int | None = None,
    ) -> None:
        self.threshold = float(growth_threshold_mb_per_hour)
        self.alert_threshold_mb = alert_threshold_mb
        self.memory_limit_bytes = memory_limit_bytes
        self._t0: float | None = None
        self._bt: list[float] = []
        self._bx: list[float] = []
        self._b_start = 0.0
        self._last_x: float | None = None
        self._last_t = 0.0
        self._store = FloorStore()
        self._seg_t0 = 0.0
        self._gc: deque[tuple[float, int]] = deque(maxlen=GC_BLOCKS)
        self._dmad: deque[float] = deque(maxlen=32)
        self._gc_sum_s = 0.0
        self._gc_drops = 0
        self._log = EventLog()
        self._watch = AnomalyWatch(self._log, alert_threshold_mb)
        self._recent_q: deque[float] = deque(maxlen=12)
        self._low_run = 0
        self._rho0 = 0.0
        self._rho_span = 1.0
        self._checks: dict[float, WindowCheck] = {}
        self._last_eval: dict[float, float] = {}
        self._streak: dict[float, int] = {}
        self._next_due = 0.0
        self._state: LeakState = "ok"
        self._first_alert: float | None = None
        self._alert_window = 0.0
        self._last_growth_t = 0.0
        self._peak_mb = 0.0
        self._verdict: LeakVerdict | None = None
        self._short = ShortRun()

    # ------------------------------------------------------------------ feeding
    def update(self, t_s: float, rss_bytes: float) -> LeakVerdict:
        """Feed one sample (t_s: seconds, any origin, non-decreasing) and get the verdict."""
        if self._t0 is None:
            self._t0 = float(t_s)
        t = float(t_s) - self._t0
        x = float(rss_bytes) / MIB
        if self._short.active and self._short.feed(t, x, self._seg_t0 > 0.0):
            self._short_eval(t)
        if not self._bt:
            self._b_start = t
        self._bt.append(t)
        self._bx.append(x)
        if (len(self._bt) >= BLOCK_MIN_SAMPLES and t >= self._b_start + BLOCK_MIN_S) or len(
            self._bt
        ) >= BLOCK_MAX_SAMPLES:
            ts = np.asarray(self._bt, dtype=np.float64)
            xs = np.asarray(self._bx, dtype=np.float64)
            self._bt, self._bx = [], []
            self._close_block(ts, xs)
        return self.verdict

    def update_many(self, t_s: FloatArray, rss_bytes: FloatArray) -> LeakVerdict:
        """Feed many samples at once; same result as calling update() for each, much faster."""
        ta = np.asarray(t_s, dtype=np.float64).ravel()
        xa = np.asarray(rss_bytes, dtype=np.float64).ravel() / MIB
        n = int(min(ta.size, xa.size))
        if n == 0:
            return self.verdict
        if self._t0 is None:
            self._t0 = float(ta[0])
        ta = ta[:n] - self._t0
        i = 0
        if self._short.active:
            k = int(np.searchsorted(ta, SHORT_SPAN_S, side="right"))
            for now in self._short.feed_many(ta[: k + 1], xa[: k + 1]):
                self._short_eval(now)
            if k + 1 < n:
                self._short.stop()
        while i < n:
            if not self._bt:
                self._b_start = float(ta[i])
            have = len(self._bt)
            j_count = i + BLOCK_MIN_SAMPLES - have - 1
            j_time = int(np.searchsorted(ta, self._b_start + BLOCK_MIN_S, side="left"))
            j = max(j_count, j_time, i)
            j = min(j, i + BLOCK_MAX_SAMPLES - have - 1)
            if j >= n:
                self._bt.extend(ta[i:].tolist())
                self._bx.extend(xa[i:n].tolist())
                break
            if have:
                ts = np.concatenate([np.asarray(self._bt), ta[i : j + 1]])
                xs = np.concatenate([np.asarray(self._bx), xa[i : j + 1]])
                self._bt, self._bx = [], []
            else:
                ts, xs = ta[i : j + 1], xa[i : j + 1]
            self._close_block(ts, xs)
            i = j + 1
        return self.verdict

    # ------------------------------------------------------------------ short recordings
    def _short_eval(self, now: float) -> None:
        """Judge the recording so far on adaptive blocks (`ShortRun.judge`) and move the state."""
        c, strict, alert = self._short.judge(now, self.threshold)
        self._verdict = None
        if not strict:
            if self._state == "suspected" and not (c is not None and c.growth):
                self._state = "ok"
            return
        self._last_growth_t = now
        if self._state != "leak" and alert and c is not None:
            self._start_leak(
                now,
                now,
                c.rate,
                f"leak: RSS floor +{c.rate:.0f} MB/h, steady over the whole {now:.0f} s observed",
            )
        elif self._state == "ok":
            self._state = "suspected"

    def _start_leak(self, now: float, alert_window: float, rate: float, message: str) -> None:
        """Enter the leak state: remember when and why, and raise one leak_started event."""
        self._state = "leak"
        self._alert_window = alert_window
        if self._first_alert is None:
            self._first_alert = now
        self._log.emit("leak_started", now, rate, message)

    # ------------------------------------------------------------------ block work
    def _close_block(self, ts: FloatArray, xs: FloatArray) -> None:
        now = float(ts[-1])
        dur = max(now - float(ts[0]), 1e-9)
        if self._last_x is not None:
            dur = max(now - self._last_t, 1e-9)
        srt = np.sort(xs)
        n = srt.size
        pos = 0.25 * (n - 1)
        lo = int(pos)
        q = float(srt[lo] + (srt[min(lo + 1, n - 1)] - srt[lo]) * (pos - lo))
        med = _sorted_median(srt)
        mad = _sorted_median(np.sort(np.abs(xs - med)))
        self._peak_mb = float(srt[-1])
        self._watch.block(ts, xs, med, mad, float(srt[0]), self._peak_mb)
        # GC drops: sample-to-sample falls far outside the (pooled) noise of differences.
        seq = xs if self._last_x is None else np.concatenate([[self._last_x], xs])
        drops = 0
        if seq.size >= 3:
            d = np.diff(seq)
            ds = np.sort(d)
            dm = _sorted_median(ds)
            self._dmad.append(1.4826 * _sorted_median(np.sort(np.abs(d - dm))))
            if len(self._dmad) >= 4:
                lim = -max(6.0 * statistics.median(self._dmad), 1.0)
                if ds[0] < lim:
                    drops = int(np.count_nonzero(d < lim))
        if len(self._gc) == self._gc.maxlen:
            old_d, old_k = self._gc[0]
            self._gc_sum_s -= old_d
            self._gc_drops -= old_k
        self._gc.append((dur, drops))
        self._gc_sum_s += dur
        self._gc_drops += drops
        self._last_x = float(xs[-1])
        self._last_t = now
        if self._restarted(now, q):
            return
        self._store.push(float(ts.mean()), q, dur)
        self._verdict = None
        if now >= self._next_due:
            self._evaluate(now)

    def _restarted(self, now: float, q: float) -> bool:
        """A fall of the floor by >= 30% of its level (and >= 64 MB) held for 3 blocks."""
        ref = statistics.median(self._recent_q) if len(self._recent_q) >= 6 else None
        if ref is not None and q < 0.7 * ref and ref - q >= 64.0:
            self._low_run += 1
        else:
            self._low_run = 0
            self._recent_q.append(q)
        if self._low_run < 3:
            return False
        self._log.emit(
            "restart",
            now,
            q - (ref or q),
            f"floor fell from {ref:.0f} MB to {q:.0f} MB: treated as a restart",
        )
        self._store = FloorStore()
        self._seg_t0 = now
        self._recent_q.clear()
        self._low_run = 0
        self._checks.clear()
        self._last_eval.clear()
        self._streak.clear()
        self._next_due = 0.0
        self._verdict = None
        return True

    def gc_period_s(self) -> float:
        """Estimated GC sawtooth period over recent blocks (0 when no sawtooth is seen)."""
        return self._gc_sum_s / self._gc_drops if self._gc_drops >= 3 else 0.0

    def _window_points(self, window_s: float) -> tuple[FloatArray, FloatArray, float]:
        """Floor points of the last ``window_s`` and the expected residual correlation."""
        t, v, bs = self._store.blocks(window_s * 1.05)
        if t.size == 0:
            return t, v, 0.0
        lo = int(np.searchsorted(t, t[-1] - window_s, side="left"))
        t, v = t[lo:], v[lo:]
        group = max(window_s / 32.0, 1.5 * self.gc_period_s(), bs)
        tt, vv = group_floor(t, v, bs, group)
        spacing = float(tt[1] - tt[0]) if tt.size > 1 else group
        base = max(self._rho_span, 1e-9)
        rho = self._rho0 ** (spacing / base) if self._rho0 > 0.0 else 0.0
        return tt, vv, rho

    def _persistent(self, w: float, now: float, age: float) -> bool:
        """Growth held for 3 evaluations and confirmed by a window twice as long (or by the
        whole segment when it is younger than that); without a partner it must hold for 6."""
        streak = self._streak.get(w, 0)
        if streak >= LONE_PERSIST_EVALS:
            return True
        if streak < PERSIST_EVALS:
            return False
        partner = self._checks.get(2.0 * w)
        if 2.0 * w > age * 1.02 and age >= 1.2 * w:
            tt, vv, rho = self._window_points(age)
            partner = check_window(tt, vv, age, self.threshold, rho)
        return partner is not None and partner.growth

    def _due(self, w: float, now: float) -> bool:
        """Window ``w`` is re-checked every w/8, on a grid of ticks (1/16 of the shortest window)
        so that all windows due around the same time share one evaluation."""
        return now - self._last_eval.get(w, -math.inf) >= w / 8.0 - TICK_S / 2.0

    def _due_after(self, age: float) -> float:
        """The first tick at which some window is due or a longer window becomes eligible."""
        nxt = math.inf
        for w in WINDOWS_S:
            if w > age * 1.02:
                nxt = min(nxt, self._seg_t0 + w / 1.02)
                break
            nxt = min(nxt, self._last_eval.get(w, -math.inf) + w / 8.0 - TICK_S / 2.0)
        k = math.ceil((nxt - self._seg_t0) / TICK_S - 1e-9)
        return self._seg_t0 + max(k, 0) * TICK_S

    def _evaluate(self, now: float) -> None:
        age = now - self._seg_t0
        any_growth = False
        changed = False
        if not any(self._due(w, now) for w in WINDOWS_S if w <= age * 1.02):
            self._next_due = self._due_after(age)
            return
        vals, self._rho_span = self._store.tier_values(1.5 * self.gc_period_s())
        self._rho0 = block_rho(vals)
        for w in WINDOWS_S:
            if w > age * 1.02:
                break
            if not self._due(w, now):
                c = self._checks.get(w)
                any_growth = any_growth or (c is not None and c.growth)
                continue
            self._last_eval[w] = now
            tt, vv, rho = self._window_points(w)
            c = check_window(tt, vv, w, self.threshold, rho, full=False)
            changed = True
            if c is None:
                self._checks.pop(w, None)
                self._streak[w] = 0
                continue
            self._checks[w] = c
            longer = self._checks.get(2.0 * w)
            ok = c.growth and not (longer is not None and longer.decelerating)
            self._streak[w] = self._streak.get(w, 0) + 1 if ok else 0
            any_growth = any_growth or ok
            if self._state != "leak" and self._persistent(w, now, age):
                self._start_leak(
                    now,
                    w,
                    c.rate,
                    f"leak: RSS floor +{c.rate:.1f} MB/h over the last {w / HOUR:.1f} h",
                )
        self._next_due = self._due_after(age)
        if not changed:
            return
        self._verdict = None
        if any_growth:
            self._last_growth_t = now
        if self._state == "leak":
            hold = max(2.0 * HOUR, self._alert_window)
            rates = [c.rate for c in self._checks.values()]
            if now - self._last_growth_t >= hold and (not rates or max(rates) < self.threshold):
                self._state = "ok"
                self._log.emit("leak_cleared", now, 0.0, "leak cleared: the floor stopped growing")
        elif any_growth:
            self._state = "suspected"
        else:
            self._state = "ok"

    # ------------------------------------------------------------------ results
    def _segment_points(self) -> tuple[FloatArray, FloatArray]:
        age = self._last_t - self._seg_t0
        t, v, bs = self._store.blocks(age + 1.0)
        group = max(age / 48.0, 1.5 * self.gc_period_s(), bs)
        return group_floor(t, v, bs, group)

    def _build(self, final: bool) -> LeakVerdict:
        state = self._state
        last_t = max(self._last_t, self._short.last_t())
        age = max(last_t - self._seg_t0, 0.0)
        deciding: WindowCheck | None = None
        if self._checks:
            grow = [c for c in self._checks.values() if c.growth]
            deciding = (
                max(grow, key=lambda c: c.window_s)
                if grow
                else max(self._checks.values(), key=lambda c: c.window_s)
            )
        if self._short.active and self._short.t:
            # Short recording: adaptive blocks over the whole of it (see _short_eval).
            ts, xs = self._short.arrays(final)
            whole, strict, tt, vv = short_check(ts, xs, self.threshold)
            if final and strict:
                state = "leak"
            elif final and state == "suspected":
                state = "ok"
            deciding = deciding or whole
        else:
            tt, vv = self._segment_points()
            whole = (
                check_window(tt, vv, age, self.threshold, self._rho0)
                if tt.size >= MIN_POINTS
                else None
            )
            short = age < 2.0 * HOUR or state == "suspected"
            if whole is None and final and tt.size >= 6:
                whole = check_window(tt, vv, age, self.threshold, self._rho0, min_points=6)
            if final and state != "leak" and short and whole is not None and whole.growth:
                state = "leak"
                deciding = whole
            held = [c for w, c in self._checks.items() if c.growth and self._streak.get(w, 0) >= 2]
            if final and state == "suspected" and held:
                state = "leak"
                deciding = max(held, key=lambda c: c.window_s)
            if deciding is None:
                deciding = whole
        if deciding is not None:
            deciding = complete(deciding, self.threshold)
        elif state != "leak":
            state = "insufficient_data"
        onset: float | None = None
        if state == "leak" and tt.size >= 3:
            onset, rate, r2, se = segment_rate(tt, vv)
        elif deciding is not None:
            rate, r2, se = deciding.rate, deciding.r_squared, deciding.se
        else:
            rate, r2, se = 0.0, 0.0, 0.0
        if se > 0.0:
            conf = normal_cdf((rate - self.threshold) / se)
        else:
            conf = 1.0 if rate > self.threshold and state == "leak" else 0.0
        if deciding is not None and (deciding.step_like or deciding.decelerating):
            conf *= 0.5
        oom: float | None = None
        if self.memory_limit_bytes is not None and rate > 0.0:
            peak = max(self._peak_mb, max(self._short.x) if self._short.x else 0.0)
            oom = max(self.memory_limit_bytes / MIB - peak, 0.0) / rate
        return LeakVerdict(
            state=state,
            leak_detected=state == "leak",
            confidence=float(min(1.0, max(0.0, conf))),
            rate_mb_per_hour=float(rate),
            r_squared=float(r2),
            first_detected_at=self._first_alert,
            onset_s=onset,
            projected_oom_hours=oom,
            reason=self._reason(
                state, rate, deciding, onset, age, float(tt[-1]) if tt.size else last_t
            ),
        )

    def _reason(
        self,
        state: LeakState,
        rate: float,
        c: WindowCheck | None,
        onset: float | None,
        age: float,
        last_t: float,
    ) -> str:
        if state == "leak":
            span = (last_t - (onset if onset is not None else self._seg_t0)) / HOUR
            if span < 1.0 / 60.0:
                return (
                    f"RSS floor {rate:+.1f} MB/h, steady for {span * HOUR:.1f} s, not levelling off"
                )
            if span < 1.0:
                return (
                    f"RSS floor {rate:+.1f} MB/h, steady for {span * 60:.1f} min, not levelling off"
                )
            per = self.gc_period_s()
            cyc = f" across {span * HOUR / per:.0f} GC cycles" if per > 0 else ""
            return f"RSS floor {rate:+.1f} MB/h for {span:.1f} h{cyc}, not levelling off"
        if c is None:
            return (
                "insufficient data: a verdict needs at least"
                f" {SHORT_MIN_POINTS} samples over {SHORT_MIN_SPAN_S:.0f} s (8 floor points: a"
                " slope with 6 degrees of freedom and first vs last third)"
            )
        over = f"{c.window_s / HOUR:.1f} h" if c.window_s >= HOUR else f"{c.window_s / 60:.1f} min"
        if state == "suspected":
            return f"growing: floor {rate:+.1f} MB/h over {over}, not yet sustained"
        if c.step_like and abs(c.step_mb) >= 4.0:
            return f"one step of {c.step_mb:+.0f} MB then flat (cache fill), not a leak"
        if c.decelerating:
            return f"levelling off: floor growth slowed to {c.rate_new:+.1f} MB/h (warm-up)"
        if c.growth:
            return f"growing {rate:+.1f} MB/h over {over}, but not steadily enough to call a leak"
        return f"flat: floor {rate:+.1f} MB/h over {over}"

    @property
    def verdict(self) -> LeakVerdict:
        """The live verdict (recomputed only when a window was re-evaluated)."""
        if self._verdict is None:
            self._verdict = self._build(final=False)
        return self._verdict

    def final_verdict(self) -> LeakVerdict:
        """Verdict at the end of a recording: like `verdict`, but a series shorter than 2 h
        (too short for the live persistence rule) is judged on its whole length."""
        return self._build(final=True)

    def drain_events(self) -> list[LeakEvent]:
        """Events raised since the last call (new leak episodes, threshold crossings, anomalies)."""
        return self._log.drain()

    @property
    def events(self) -> tuple[LeakEvent, ...]:
        """The most recent events (bounded)."""
        return tuple(self._log.events)

    def memory_items(self) -> int:
        """Number of stored values (buffers, rings, events): flat over a run of any length."""
        return (
            self._store.memory_items()
            + len(self._bt) * 2
            + len(self._short.t) * 2
            + len(self._gc) * 2
            + self._watch.memory_items()
            + len(self._recent_q)
            + len(self._dmad)
            + len(self._log)
            + len(self._checks) * 12
        )
