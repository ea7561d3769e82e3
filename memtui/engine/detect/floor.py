"""Provides the bounded multi-resolution store of memory-floor blocks and per-window trend checks.

Why: the detector must judge windows from one hour to days long with memory that does not grow
with the run. Tier 0 holds one low-quantile value per closed block of samples; tier k holds the
mean of pairs of tier k-1 blocks, each tier a ring of fixed size, so a window of any length is
read from the tier that gives it 48-96 blocks.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from memtui.engine.detect.stats import FloatArray, Ols, hinge_fit, ols, step_sse, t_crit

TIER_LEN = 256
MAX_TIERS = 9
FLOOR_QUANTILE = 0.2
MIN_POINTS = 6


class FloorStore:
    """Rings of (time, floor) blocks at doubling resolution; O(1) amortised per block."""

    __slots__ = ("_pending", "_t", "_v", "block_s", "n_blocks")

    def __init__(self) -> None:
        self._t: list[deque[float]] = []
        self._v: list[deque[float]] = []
        self._pending: list[tuple[float, float] | None] = []
        self.block_s = 0.0
        """Running mean duration of a tier-0 block, seconds."""
        self.n_blocks = 0

    def push(self, t: float, v: float, dur_s: float) -> None:
        """Add one tier-0 block (time in s, floor in MiB) and cascade pair-merges upwards."""
        self.n_blocks += 1
        self.block_s += (dur_s - self.block_s) / min(self.n_blocks, 64)
        k = 0
        item: tuple[float, float] | None = (t, v)
        while item is not None and k < MAX_TIERS:
            if k == len(self._t):
                self._t.append(deque(maxlen=TIER_LEN))
                self._v.append(deque(maxlen=TIER_LEN))
                self._pending.append(None)
            self._t[k].append(item[0])
            self._v[k].append(item[1])
            if k == MAX_TIERS - 1:
                if len(self._v[k]) == TIER_LEN:
                    self._compact_top()
                break
            prev = self._pending[k]
            if prev is None:
                self._pending[k] = item
                item = None
            else:
                self._pending[k] = None
                item = ((prev[0] + item[0]) * 0.5, (prev[1] + item[1]) * 0.5)
            k += 1

    def _compact_top(self) -> None:
        """Halve the top tier by averaging pairs, so the whole history stays in a fixed size."""
        k = MAX_TIERS - 1
        t = list(self._t[k])
        v = list(self._v[k])
        self._t[k] = deque(
            ((a + b) * 0.5 for a, b in zip(t[::2], t[1::2], strict=True)), maxlen=TIER_LEN
        )
        self._v[k] = deque(
            ((a + b) * 0.5 for a, b in zip(v[::2], v[1::2], strict=True)), maxlen=TIER_LEN
        )

    def blocks(self, span_s: float) -> tuple[FloatArray, FloatArray, float]:
        """Blocks covering the last ``span_s`` seconds from the coarsest tier still giving >= 48."""
        if not self._t:
            empty = np.zeros(0)
            return empty, empty, 0.0
        base = max(self.block_s, 1e-9)
        k = 0
        while k + 1 < len(self._t) and base * 2 ** (k + 1) * 48 <= span_s:
            k += 1
        t = np.fromiter(self._t[k], dtype=np.float64, count=len(self._t[k]))
        v = np.fromiter(self._v[k], dtype=np.float64, count=len(self._v[k]))
        step = base * 2**k
        if t.size > 2:
            step = max(step, float(t[-1] - t[0]) / (t.size - 1))
            lo = int(np.searchsorted(t, t[-1] - span_s, side="left"))
            t, v = t[lo:], v[lo:]
        return t, v, step

    def tier_values(self, span_s: float) -> tuple[FloatArray, float]:
        """Values of the finest tier whose blocks last >= ``span_s``, with that block length."""
        if not self._v:
            return np.zeros(0), 0.0
        base = max(self.block_s, 1e-9)
        k = 0
        while k + 1 < len(self._v) and base * 2**k < span_s:
            k += 1
        vals = np.fromiter(self._v[k], dtype=np.float64, count=len(self._v[k]))
        return vals, base * 2**k

    def latest(self) -> float | None:
        """The newest tier-0 floor value."""
        return self._v[0][-1] if self._t and self._v[0] else None

    def memory_items(self) -> int:
        """How many values are held (for the bounded-memory test)."""
        return sum(len(d) for d in self._t) * 2


def group_floor(
    t: FloatArray, v: FloatArray, block_s: float, group_s: float
) -> tuple[FloatArray, FloatArray]:
    """Low quantile of consecutive blocks spanning ``group_s``: the floor below GC sawtooth."""
    m = max(1, round(group_s / max(block_s, 1e-9)))
    ng = t.size // m
    if ng == 0:
        return np.zeros(0), np.zeros(0)
    cut = t.size - ng * m
    tt = t[cut:].reshape(ng, m).mean(axis=1)
    vv = v[cut:].reshape(ng, m)
    if m > 1:
        kq = int(FLOOR_QUANTILE * (m - 1))
        vv = np.partition(vv, kq, axis=1)[:, kq]
    else:
        vv = vv[:, 0]
    return tt, vv


@dataclass(frozen=True, slots=True)
class WindowCheck:
    """The trend of the floor over one window ending now (rates in MiB/h)."""

    window_s: float
    n: int
    rate: float
    se: float
    lower: float
    r_squared: float
    rate_old: float
    rate_new: float
    decelerating: bool
    step_like: bool
    step_mb: float
    growth: bool
    """The floor grows faster than the threshold here, steadily, and not as one step."""
    full: bool = True
    """False when the step test was skipped (no growth possible): see `complete`."""
    t: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    v: FloatArray = field(default_factory=lambda: np.zeros(0), repr=False, compare=False)
    rho_floor: float = field(default=0.0, repr=False, compare=False)


def _upper_median(a: FloatArray) -> float:
    """Upper median via partition: enough for robust scale estimates, much cheaper."""
    k = a.size // 2
    return float(np.partition(a, k)[k])


def block_rho(v: FloatArray) -> float:
    """Lag-1 autocorrelation of block floors from a robust variogram, immune to linear trends.

    For AR(1) noise gamma(2)/gamma(1) = 1 + rho; differences are centred on their median so a
    steady trend does not count as correlation. Short windows cannot estimate this themselves.
    """
    if v.size < 16:
        return 0.0
    d1 = np.diff(v)
    d2 = v[2:] - v[:-2]
    g1 = _upper_median((d1 - _upper_median(d1)) ** 2)
    g2 = _upper_median((d2 - _upper_median(d2)) ** 2)
    if not g1 > 0.0:
        return 0.0
    return min(0.97, max(0.0, g2 / g1 - 1.0))


def inflate(se: float, rho: float) -> float:
    """Standard error of a slope under AR(1) residuals with lag-1 correlation rho (<= 0.9)."""
    r = min(0.9, max(0.0, rho))
    return se * math.sqrt((1.0 + r) / (1.0 - r))


def check_window(
    t: FloatArray,
    v: FloatArray,
    window_s: float,
    threshold: float,
    rho_floor: float = 0.0,
    min_points: int = MIN_POINTS,
    full: bool = True,
) -> WindowCheck | None:
    """Judge one window of floor points (t in s, v in MiB); None when too few points.

    ``rho_floor`` is the residual lag-1 correlation at this window's point spacing expected
    from the longer-run noise model; the window's own estimate is used when larger. With
    ``full=False`` the step test (which only matters for a window that could show growth) is
    skipped when the rate's lower bound is below the threshold; `complete` adds it later.
    """
    n = int(t.size)
    if n < min_points:
        return None
    x = (t - t[-1]) / 3600.0
    fit = ols(x, v)
    se = inflate(fit.se, max(fit.rho, rho_floor))
    lower = fit.slope - t_crit(n - 2) * se
    h = n // 2
    f_old: Ols = ols(x[:h], v[:h])
    f_new: Ols = ols(x[n - h :], v[n - h :])
    decel = False
    if f_new.slope < 0.6 * f_old.slope and f_old.slope > threshold:
        se_d = math.hypot(
            inflate(f_old.se, max(f_old.rho, rho_floor)),
            inflate(f_new.se, max(f_new.rho, rho_floor)),
        )
        decel = f_old.slope - f_new.slope > 2.0 * se_d
    quick = not full and not lower > threshold
    sse_step, k = (math.inf, 0) if quick else step_sse(v)
    step_like = False
    step_mb = 0.0
    if sse_step < fit.sse:
        step_mb = float(v[k:].mean() - v[:k].mean())
        step_like = True
        if n - k >= min_points:
            post = ols(x[k:], v[k:])
            post_se = inflate(post.se, max(post.rho, rho_floor))
            if post.slope - t_crit(post.n - 2) * post_se > threshold:
                step_like = False
    growth = lower > threshold and f_new.slope > 0.5 * threshold and not decel and not step_like
    return WindowCheck(
        window_s,
        n,
        fit.slope,
        se,
        lower,
        fit.r_squared,
        f_old.slope,
        f_new.slope,
        decel,
        step_like,
        step_mb,
        growth,
        not quick,
        t,
        v,
        rho_floor,
    )


def complete(c: WindowCheck, threshold: float) -> WindowCheck:
    """The check with its step test done (for the reason and confidence of a verdict)."""
    if c.full or c.t.size == 0:
        return c
    done = check_window(c.t, c.v, c.window_s, threshold, c.rho_floor, min_points=c.n)
    return c if done is None else done


def segment_rate(t: FloatArray, v: FloatArray) -> tuple[float, float, float, float]:
    """Onset and rate of the growing part of a segment: (onset_s, rate MiB/h, r2, se)."""
    if t.size < 3:
        return (float(t[0]) if t.size else 0.0), 0.0, 0.0, 0.0
    x = (t - t[0]) / 3600.0
    x0, _, _ = hinge_fit(x, v)
    keep = x >= x0
    fit = ols(x[keep], v[keep])
    if fit.n < 3:
        fit = ols(x, v)
        x0 = 0.0
    return float(t[0] + x0 * 3600.0), fit.slope, fit.r_squared, fit.se_hac


SHORT_BLOCKS = 32
SHORT_MIN_BLOCK_SAMPLES = 4
SHORT_MAX_BLOCK_S = 60.0
SHORT_MIN_POINTS = 8
SHORT_MIN_Z = 6.0
SHORT_MIN_R2 = 0.9
SHORT_MIN_RATIO = 0.75
SHORT_MIN_SPAN_S = 2.0
"""No verdict on less than 2 s: below that one import or one batch of work looks like a rise."""


def short_block_samples(n: int) -> int:
    """Fewest samples per short-run block: 4 (robust to single spikes) once there are 32
    samples, fewer before, so a 10 s run sampled at 1 Hz still has 8 floor points."""
    return max(1, min(SHORT_MIN_BLOCK_SAMPLES, n // SHORT_MIN_POINTS))


def short_points(t: FloatArray, x: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Floor points of a short recording: the 25th percentile of consecutive blocks whose length
    adapts to the elapsed time (elapsed / 32, at most 60 s, at least 4 samples once there are
    32; fewer samples per block before that, so 8 samples already give the 8 points a verdict
    needs)."""
    n = int(t.size)
    if n < 2:
        return np.zeros(0), np.zeros(0)
    elapsed = float(t[-1] - t[0])
    dt = max(elapsed / (n - 1), 1e-9)
    m = max(short_block_samples(n), round(min(elapsed / SHORT_BLOCKS, SHORT_MAX_BLOCK_S) / dt))
    nb = n // m
    if nb == 0:
        return np.zeros(0), np.zeros(0)
    cut = n - nb * m
    tt = t[cut:].reshape(nb, m).mean(axis=1)
    kq = (m - 1) // 4
    vv = np.partition(x[cut:].reshape(nb, m), kq, axis=1)[:, kq]
    return tt, vv


def short_growth(c: WindowCheck, t: FloatArray, v: FloatArray, threshold: float) -> bool:
    """Overwhelming, linear, non-decelerating growth over the whole (short) observation.

    Beyond the window test: z of the rate over the threshold >= 6, R^2 >= 0.9, and the last third
    of the points grows at least 3/4 as fast as the first third (a warm-up that levels off or a
    fill that stops fails this even when it is too quick for the halves test). From 10 points
    on, the thirds leave out the first one, the program's start: its imports are a step, which
    made the first third of a short run of a leaking program steeper than the last (a real
    25-s leak read "not steadily enough"). Only one point: thirds of fewer points are noisier.
    """
    if not c.growth or (c.se <= 0.0 and c.rate <= threshold):
        return False
    z = (c.rate - threshold) / c.se if c.se > 0.0 else math.inf
    if z < SHORT_MIN_Z or c.r_squared < SHORT_MIN_R2:
        return False
    if t.size >= 10:
        t, v = t[1:], v[1:]
    # Thirds of at least 3 points (a slope needs 3): with fewer than 9 points they overlap.
    k = max(3, int(t.size) // 3)
    x = (t - t[-1]) / 3600.0
    first = ols(x[:k], v[:k]).slope
    last = ols(x[-k:], v[-k:]).slope
    return last >= SHORT_MIN_RATIO * first and last > threshold


def short_check(
    t: FloatArray, x: FloatArray, threshold: float
) -> tuple[WindowCheck | None, bool, FloatArray, FloatArray]:
    """Judge a short recording on its whole length: (check, strict growth, floor points)."""
    tt, vv = short_points(t, x)
    elapsed = float(t[-1] - t[0]) if t.size else 0.0
    if tt.size < SHORT_MIN_POINTS or elapsed < SHORT_MIN_SPAN_S:
        return None, False, tt, vv
    c = check_window(tt, vv, elapsed, threshold, 0.0, min_points=SHORT_MIN_POINTS)
    if c is None:
        return None, False, tt, vv
    return c, short_growth(c, tt, vv, threshold), tt, vv


SHORT_SPAN_S = 32 * 60.0
"""Below this age (32 blocks of 60 s) a recording is judged on adaptive blocks."""
SHORT_MAX_SAMPLES = 8192
SHORT_EVAL_MAX_SAMPLES = 4096
SHORT_PERSIST_FRAC = 1.0 / 3.0
SHORT_PERSIST_EVALS = 4
SHORT_LIVE_RISE = 0.5
SHORT_LIVE_MIN_SAMPLES = SHORT_MIN_POINTS * SHORT_MIN_BLOCK_SAMPLES
"""The live alert needs 8 full blocks of 4 samples (the final verdict needs only 8 samples): a
warm-up's first seconds look linear, so an alert that cannot be taken back waits longer."""
SHORT_LIVE_RATE = 100.0
"""A live alert on a short recording also needs a blatant leak: a rate >= 100x the threshold
that has grown the floor by half its starting level. A warm-up with a time constant of half an
hour, or a GC rise, looks just as linear for minutes; only the size tells them apart."""


class ShortRun:
    """Raw samples of the first 32 minutes (bounded: pairs are averaged past 8192) and the
    schedule of short-recording checks: one per adaptive block (elapsed/32, >= 4 samples)."""

    __slots__ = ("_evals", "_mark", "_next", "_since", "active", "t", "x")

    def __init__(self) -> None:
        self.t: list[float] = []
        self.x: list[float] = []
        self.active = True
        self._next = 0.0
        self._mark = 0
        self._since: float | None = None
        self._evals = 0

    def last_t(self) -> float:
        return self.t[-1] if self.t else 0.0

    def stop(self) -> None:
        self.active = False
        self.t, self.x = [], []

    def feed(self, t: float, x: float, restarted: bool) -> bool:
        """Add one sample; True when a check is due at it."""
        if t > SHORT_SPAN_S or restarted:
            self.stop()
            return False
        self.t.append(t)
        self.x.append(x)
        return t >= self._next or len(self.t) - self._mark >= SHORT_EVAL_MAX_SAMPLES

    def feed_many(self, ta: FloatArray, xa: FloatArray) -> Iterator[float]:
        """`feed` for many samples (all within the short span): yields the check times, so
        checks happen at exactly the samples where `feed` would ask for them."""
        i, n = 0, int(ta.size)
        while i < n and self.active:
            j = int(np.searchsorted(ta, self._next, side="left"))
            j = min(max(j, i), i + SHORT_EVAL_MAX_SAMPLES - (len(self.t) - self._mark) - 1)
            if j >= n:
                last = n if ta[n - 1] <= SHORT_SPAN_S else n - 1
                self.t.extend(ta[i:last].tolist())
                self.x.extend(xa[i:last].tolist())
                return
            if ta[j] > SHORT_SPAN_S:
                self.t.extend(ta[i:j].tolist())
                self.x.extend(xa[i:j].tolist())
                self.stop()
                return
            self.t.extend(ta[i : j + 1].tolist())
            self.x.extend(xa[i : j + 1].tolist())
            yield float(ta[j])
            i = j + 1

    def arrays(self, final: bool = True) -> tuple[FloatArray, FloatArray]:
        """All samples (final) or those up to the last check (live verdict)."""
        end = len(self.t) if final else self._mark
        return np.asarray(self.t[:end], dtype=np.float64), np.asarray(
            self.x[:end], dtype=np.float64
        )

    def judge(self, now: float, threshold: float) -> tuple[WindowCheck | None, bool, bool]:
        """Check the recording so far: (check, strict growth, live alert warranted). The alert
        needs strict growth for 4 checks and for a third of the time observed, and a blatant
        size (see SHORT_LIVE_RATE)."""
        if len(self.t) > SHORT_MAX_SAMPLES:  # halve by averaging pairs: bounded memory
            m = len(self.t) // 2 * 2
            self.t = np.asarray(self.t[:m]).reshape(-1, 2).mean(axis=1).tolist() + self.t[m:]
            self.x = np.asarray(self.x[:m]).reshape(-1, 2).mean(axis=1).tolist() + self.x[m:]
        self._mark = len(self.t)
        t, x = self.arrays()
        elapsed = now - float(t[0])
        dt = elapsed / max(t.size - 1, 1)
        # Live checks stay >= 4 samples apart: 4 checks must span 16 samples, so a warm-up's
        # first, linear-looking seconds cannot raise the alert (the final verdict, which only
        # needs 8 samples, is not rate-limited).
        self._next = now + max(min(max(elapsed / SHORT_BLOCKS, 4.0 * dt), SHORT_MAX_BLOCK_S), 1e-6)
        c, strict, _, vv = short_check(t, x, threshold)
        if not strict or c is None:
            self._since, self._evals = None, 0
            return c, False, False
        if self._since is None:
            self._since = now
        self._evals += 1
        alert = (
            t.size >= SHORT_LIVE_MIN_SAMPLES
            and self._evals >= SHORT_PERSIST_EVALS
            and now - self._since >= SHORT_PERSIST_FRAC * now
            and c.rate >= SHORT_LIVE_RATE * threshold
            and float(vv[-1] - vv[0]) >= SHORT_LIVE_RISE * max(float(vv[0]), 1.0)
        )
        return c, True, alert
