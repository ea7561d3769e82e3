"""Provides SiteGrowthTracker: per-allocation-site size series across snapshots, ranked by growth.

A two-point diff calls any site that happened to be busy at the second snapshot a leak; a site
is a suspect only when its retained size grows consistently across many snapshots.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from memtui.engine.facts.snapshot import AllocationStat
from memtui.probe.tracing import TraceKey, group_by_site, site_frame

K = TypeVar("K", bound=Hashable)

MIB: float = 1024.0 * 1024.0
MIN_SITE_RATE_MB_PER_HOUR: float = 2.0
"""Allocation sites growing slower are never called leaking: a 1 MB/min leak is 60 MB/h, and
below this are garbage awaiting collection and start-up stragglers (seen at 0.01-1 MB/h)."""
SERIES_LEN: int = 64
"""Points kept per site; when full, older points are thinned by half, so the span keeps growing."""


@dataclass(frozen=True, slots=True)
class SiteGrowth(Generic[K]):
    """How one allocation site's (or type's) size has moved across snapshots."""

    key: K
    size_bytes: int
    count: int
    growth_mb_per_hour: float
    r_squared: float
    rising_fraction: float
    """Share of consecutive snapshot pairs in which the site's size went up."""
    snapshots: int
    first_size_bytes: int

    @property
    def growth_bytes(self) -> int:
        """Change since the first snapshot of the series."""
        return self.size_bytes - self.first_size_bytes


def _slope_r2(ts: list[float], ys: list[float]) -> tuple[float, float]:
    n = len(ts)
    if n < 2:
        return 0.0, 0.0
    mt = sum(ts) / n
    my = sum(ys) / n
    stt = sum((t - mt) ** 2 for t in ts)
    syy = sum((y - my) ** 2 for y in ys)
    sty = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True))
    if stt <= 0:
        return 0.0, 0.0
    slope = sty / stt
    r2 = (sty * sty) / (stt * syy) if syy > 0 else 0.0
    return slope, r2


class SiteGrowthTracker(Generic[K]):
    """Follows at most ``max_sites`` sites; the least recently relevant are forgotten first."""

    def __init__(self, max_sites: int = 400) -> None:
        self.max_sites = max_sites
        self._series: dict[K, deque[tuple[float, int, int]]] = {}
        self._prev: tuple[float, dict[K, tuple[int, int]] | None] = (0.0, None)
        """The previous snapshot's totals, to start a new site's series from."""

    def __len__(self) -> int:
        return len(self._series)

    def observe(self, t_s: float, by_site: dict[K, tuple[int, int]], limit: int = 100) -> None:
        """Record one snapshot's per-site totals (bytes, blocks) at ``t_s`` seconds.

        A site that enters the ranking starts from what it had at the previous snapshot (0
        when it had nothing), so a line that appears after the first snapshot of a two-minute
        run still has three points at its end.
        """
        ranked = sorted(by_site.items(), key=lambda kv: -kv[1][0])[:limit]
        prev_t, prev = self._prev
        for key, _ in ranked:
            if key not in self._series:
                self._series[key] = deque(maxlen=SERIES_LEN)
                if prev is not None:
                    size, count = prev.get(key, (0, 0))
                    self._series[key].append((prev_t, size, count))
        self._prev = (t_s, by_site)
        for key, series in self._series.items():
            size, count = by_site.get(key, (0, 0))
            if len(series) == SERIES_LEN:
                # Keep every other point: the series then spans twice the time at half the detail.
                kept = list(series)[::2]
                series.clear()
                series.extend(kept)
            series.append((t_s, size, count))
        if len(self._series) > self.max_sites:
            # Forget the sites that hold the least memory now.
            order = sorted(self._series, key=lambda k: self._series[k][-1][1])
            for key in order[: len(self._series) - self.max_sites]:
                del self._series[key]

    def growth(self, key: K) -> SiteGrowth[K] | None:
        series = self._series.get(key)
        if not series:
            return None
        ts = [p[0] for p in series]
        ys = [float(p[1]) for p in series]
        slope, r2 = _slope_r2(ts, ys)
        steps = [b[1] - a[1] for a, b in zip(series, list(series)[1:], strict=False)]
        rising = sum(1 for s in steps if s > 0) / len(steps) if steps else 0.0
        last = series[-1]
        return SiteGrowth(
            key=key,
            size_bytes=last[1],
            count=last[2],
            growth_mb_per_hour=slope * 3600.0 / MIB,
            r_squared=r2,
            rising_fraction=rising,
            snapshots=len(series),
            first_size_bytes=series[0][1],
        )

    def leaking(
        self, min_growth_mb_per_hour: float = 0.0, min_snapshots: int = 3
    ) -> list[SiteGrowth[K]]:
        """Sites growing consistently (rising in most intervals, good linear fit), fastest first."""
        found = []
        for key in self._series:
            g = self.growth(key)
            if g is None or g.snapshots < min_snapshots:
                continue
            if g.growth_mb_per_hour <= min_growth_mb_per_hour or g.size_bytes <= g.first_size_bytes:
                continue
            if g.rising_fraction >= 0.6 and g.r_squared >= 0.6:
                found.append(g)
        found.sort(key=lambda g: -g.growth_mb_per_hour)
        return found


class AllocationSiteTracker(SiteGrowthTracker[TraceKey]):
    """Sites keyed by the program's own line (memtui.probe.tracing.site_index), not by whole
    tracebacks: one line reached along several call paths is one site. Each growth's ``key``
    is the full traceback that allocated most at that site (most recent call first)."""

    def __init__(self, max_sites: int = 400) -> None:
        super().__init__(max_sites)
        self._stacks: dict[TraceKey, TraceKey] = {}

    def observe(
        self, t_s: float, by_site: dict[TraceKey, tuple[int, int]], limit: int = 100
    ) -> None:
        """Record per-traceback totals at ``t_s``, summed per site."""
        grouped, stacks = group_by_site(by_site)
        super().observe(t_s, grouped, limit)
        for key in grouped.keys() & self._series.keys():
            self._stacks[key] = stacks[key]
        if len(self._stacks) > len(self._series):
            self._stacks = {k: v for k, v in self._stacks.items() if k in self._series}

    def leaking(
        self,
        min_growth_mb_per_hour: float = MIN_SITE_RATE_MB_PER_HOUR,
        min_snapshots: int = 3,
    ) -> list[SiteGrowth[TraceKey]]:
        """Sites growing consistently and at least ``min_growth_mb_per_hour``, fastest first."""
        return super().leaking(min_growth_mb_per_hour, min_snapshots)

    def growth(self, key: TraceKey) -> SiteGrowth[TraceKey] | None:
        """Growth of the site ``key`` (a ``(frame,)`` key or any traceback ending there)."""
        site = key if key in self._series else (site_frame(key),)
        g = super().growth(site)
        return None if g is None else dataclasses.replace(g, key=self._stacks.get(site, site))

    def with_growth(self, stats: Sequence[AllocationStat]) -> list[AllocationStat]:
        """``stats`` with each site's growth since the first snapshot and its rate, once the
        site has been seen in two snapshots."""
        out = []
        for stat in stats:
            g = self.growth((stat.traceback.site_frame,))
            if g is None or g.snapshots < 2:
                out.append(stat)
                continue
            out.append(
                dataclasses.replace(
                    stat, growth_bytes=g.growth_bytes, growth_mb_per_hour=g.growth_mb_per_hour
                )
            )
        return out
