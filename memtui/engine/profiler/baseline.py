"""Provides RunningStats: what create_baseline() says of the memory over its window."""

from __future__ import annotations

MIB: float = 1024.0 * 1024.0


class RunningStats:
    """Average (time-weighted: early samples come faster), min and peak of RSS over a window."""

    def __init__(self) -> None:
        self.n = 0
        self.total = 0.0
        self.span = 0.0
        self.last: tuple[float, float] | None = None
        self.lo = float("inf")
        self.hi = 0.0

    def add(self, t_s: float, rss_bytes: float) -> None:
        self.n += 1
        if self.last is not None:
            dt = max(t_s - self.last[0], 0.0)
            self.total += 0.5 * (rss_bytes + self.last[1]) * dt
            self.span += dt
        self.last = (t_s, rss_bytes)
        self.lo = min(self.lo, rss_bytes)
        self.hi = max(self.hi, rss_bytes)

    def result(self) -> dict[str, float]:
        if self.n == 0 or self.last is None:
            return {"average_mb": 0.0, "min_mb": 0.0, "peak_mb": 0.0}
        avg = self.total / self.span if self.span > 0 else self.last[1]
        return {
            "average_mb": avg / MIB,
            "min_mb": self.lo / MIB,
            "peak_mb": self.hi / MIB,
        }
