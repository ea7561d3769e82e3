"""Provides the detector's event side: spikes and drops against a robust moving baseline, and
absolute-threshold crossings (one event per upward crossing, with hysteresis).

Why a separate module: these events are independent of the trend test; they are computed on each
closed block of raw samples and only need a short history of block medians and MADs.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np

from memtui.engine.detect.stats import FloatArray

LeakState = Literal["ok", "suspected", "leak", "insufficient_data"]
"""``insufficient_data``: too few samples for any verdict yet (fewer than 8 floor points)."""
EventKind = Literal["leak_started", "leak_cleared", "threshold_crossed", "spike", "drop", "restart"]
BASELINE_BLOCKS = 32
EVENTS_KEPT = 256


@dataclass(frozen=True, slots=True)
class LeakEvent:
    """Something the detector noticed at a point in time (seconds from the first sample)."""

    kind: EventKind
    t_s: float
    size_mb: float
    message: str


class EventLog:
    """Bounded record of events plus the queue not yet drained by the caller."""

    __slots__ = ("events", "pending")

    def __init__(self) -> None:
        self.events: deque[LeakEvent] = deque(maxlen=EVENTS_KEPT)
        self.pending: deque[LeakEvent] = deque(maxlen=EVENTS_KEPT)

    def emit(self, kind: EventKind, t: float, size: float, msg: str) -> None:
        ev = LeakEvent(kind, t, size, msg)
        self.events.append(ev)
        self.pending.append(ev)

    def drain(self) -> list[LeakEvent]:
        out = list(self.pending)
        self.pending.clear()
        return out

    def __len__(self) -> int:
        return len(self.events) + len(self.pending)


class AnomalyWatch:
    """Spikes/drops against the median of recent block medians (scale: pooled MAD), and
    threshold crossings that re-arm 5% below the threshold."""

    __slots__ = ("_armed", "_base", "_log", "_mad", "_med", "_tail", "alert_threshold_mb")

    def __init__(self, log: EventLog, alert_threshold_mb: float | None) -> None:
        self._log = log
        self.alert_threshold_mb = alert_threshold_mb
        self._med: deque[float] = deque(maxlen=BASELINE_BLOCKS)
        self._mad: deque[float] = deque(maxlen=BASELINE_BLOCKS)
        self._tail = {"spike": False, "drop": False}
        self._armed = True
        self._base: tuple[float, float] | None = None

    def memory_items(self) -> int:
        return len(self._med) + len(self._mad)

    def block(
        self, ts: FloatArray, xs: FloatArray, med: float, mad: float, lo: float, hi: float
    ) -> None:
        """Judge one closed block (``lo``/``hi``: its min and max), then add it to the baseline."""
        if len(self._med) >= 8:
            self._anomalies(ts, xs, lo, hi)
        if self.alert_threshold_mb is not None:
            self._thresholds(ts, xs, self.alert_threshold_mb)
        self._med.append(med)
        self._mad.append(mad)
        self._base = None

    def _baseline(self) -> tuple[float, float]:
        if self._base is None:
            center = statistics.median(self._med)
            spread = 1.4826 * (
                statistics.median(self._mad)
                + statistics.median([abs(m - center) for m in self._med])
            )
            self._base = (center, max(8.0 * spread, 16.0))
        return self._base

    def _anomalies(self, ts: FloatArray, xs: FloatArray, xmin: float, xmax: float) -> None:
        center, margin = self._baseline()
        hi = center + margin
        lo = center - margin
        if xmax <= hi and xmin >= lo:
            return
        for kind, mask in (("spike", xs > hi), ("drop", xs < lo)):
            if not bool(mask.any()):
                self._tail[kind] = False
                continue
            starts = np.flatnonzero(mask & ~np.concatenate([[self._tail[kind]], mask[:-1]]))
            self._tail[kind] = bool(mask[-1])
            for s in starts[:4]:
                size = float(xs[s] - center)
                self._log.emit(
                    "spike" if kind == "spike" else "drop",
                    float(ts[s]),
                    size,
                    f"RSS {kind} of {size:+.0f} MB against a baseline of {center:.0f} MB",
                )

    def _thresholds(self, ts: FloatArray, xs: FloatArray, lim: float) -> None:
        i = 0
        n = xs.size
        while i < n:
            if self._armed:
                hit = np.flatnonzero(xs[i:] >= lim)
                if hit.size == 0:
                    return
                k = i + int(hit[0])
                self._armed = False
                self._log.emit(
                    "threshold_crossed",
                    float(ts[k]),
                    float(xs[k]),
                    f"RSS {xs[k]:.0f} MB crossed the alert threshold of {lim:.0f} MB",
                )
                i = k + 1
            else:
                back = np.flatnonzero(xs[i:] < lim * 0.95)
                if back.size == 0:
                    return
                self._armed = True
                i += int(back[0]) + 1


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    """The detector's current judgement."""

    state: LeakState
    leak_detected: bool
    confidence: float
    """0..1: one-sided probability (normal approximation, standard error inflated for
    autocorrelation) that the memory floor in the deciding window grows faster than the
    threshold; halved when the shape looks like one step or a levelling-off."""
    rate_mb_per_hour: float
    """Growth rate of the leaking (or latest) segment, MiB per hour."""
    r_squared: float
    first_detected_at: float | None
    """Seconds from the first sample at which the live alert was first raised; None if never."""
    onset_s: float | None
    projected_oom_hours: float | None
    reason: str
