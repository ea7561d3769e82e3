"""Provides LeakDetector: an online leak detector fed one memory sample at a time."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

MIB: float = 1024.0 * 1024.0

LeakState = Literal["ok", "suspected", "leak"]


@dataclass(frozen=True, slots=True)
class LeakEvent:
    """Something the detector noticed at a point in time (seconds from the first sample)."""

    kind: Literal["leak_started", "leak_cleared", "threshold_crossed", "spike", "drop", "restart"]
    t_s: float
    size_mb: float
    message: str


@dataclass(frozen=True, slots=True)
class LeakVerdict:
    """The detector's current judgement."""

    state: LeakState
    leak_detected: bool
    confidence: float
    """0..1: probability-like strength of evidence that the floor grows faster than the threshold."""
    rate_mb_per_hour: float
    """Growth rate of the leaking (or latest) segment, MiB per hour."""
    r_squared: float
    first_detected_at: float | None
    """Seconds from the first sample at which the live alert was first raised; None if never."""
    onset_s: float | None
    projected_oom_hours: float | None
    reason: str


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
        raise NotImplementedError

    def update(self, t_s: float, rss_bytes: float) -> LeakVerdict:
        """Feed one sample (t_s: seconds, any origin, non-decreasing) and get the verdict."""
        raise NotImplementedError

    @property
    def verdict(self) -> LeakVerdict:
        raise NotImplementedError

    def drain_events(self) -> list[LeakEvent]:
        """Events raised since the last call (new leak episodes, threshold crossings, anomalies)."""
        raise NotImplementedError

    @property
    def events(self) -> tuple[LeakEvent, ...]:
        """The most recent events (bounded)."""
        raise NotImplementedError
