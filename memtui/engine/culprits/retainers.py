"""Provides RetainerGrowth: names the containers that keep growing across heap summaries.

Each heap summary (memtui.probe.heap.summary) lists the largest containers by their path from a
root with their entry count and the bytes they keep alive. Consecutive summaries are matched by
container (path and address: a container replaced by a new one is not growth), and a container
is named when it grows consistently (Cork, POPL 2007: growth across collections; Eclipse MAT:
the accumulation point): in most steps, by a real amount, still in the latest summaries, and not
by one jump (a cache filled once). A bounded lru_cache or a deque(maxlen) that filled and stays
flat is therefore never named once flat. Bounded: at most MAX_TRACKED containers × SERIES_LEN
points, whatever the run's length.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memtui.engine.culprits.signatures import Suspect, SuspectKind
from memtui.engine.facts.frames import HeapSummary

SERIES_LEN: int = 48
"""Points kept per container; when full every other one goes (the span keeps growing)."""
MAX_TRACKED: int = 256
MIN_POINTS: int = 3
MIN_ITEMS_GROWTH: float = 50.0
MIN_BYTES_GROWTH: float = 512 * 1024.0
MIN_RELATIVE: float = 0.05
"""Growth of at least 5% of the first size (a huge table adding a few rows is not a leak)."""
MIN_RISING: float = 0.6
MAX_JUMP: float = 0.6
"""With four points or more, no single step may carry more than this share of the growth."""
MIN_LATE: float = 0.2
"""The later half must carry at least this share of the growth (not levelling off)."""
_HINT_KIND: dict[str, SuspectKind] = {
    "event_listeners": "event_listeners",
    "lru_cache": "lru_cache",
    "logging_handlers": "logging_handlers",
    "threads": "threads",
    "asyncio_tasks": "asyncio_tasks",
}


@dataclass
class _Tracked:
    path: str
    chain: str
    type_name: str
    first_t: float
    last_t: float
    holds: str | None = None
    hint: str | None = None
    samples: tuple[str, ...] = ()
    points: list[tuple[float, float, float]] = field(default_factory=list)
    """(t, items, bytes), evenly spread over the run; the last one is always the latest."""
    stride: int = 1
    pending: int = 0
    """Summaries since the last kept point; the last point is provisional while > 0."""

    def add(self, t: float, items: float, size: float) -> None:
        """Keep one summary in ``stride`` (doubled each time the series fills), so the kept
        points stay evenly spaced however long the run; the newest is always the last point,
        replacing the previous one until a kept point comes."""
        point = (t, items, size)
        self.last_t = t
        if self.pending and self.points:
            self.points[-1] = point
        else:
            self.points.append(point)
        self.pending = (self.pending + 1) % self.stride
        if len(self.points) > SERIES_LEN:
            last = self.points[-1]
            self.points = self.points[::2]
            if self.points[-1] is not last:
                self.points.append(last)
            self.stride *= 2
            self.pending = 0


@dataclass(frozen=True, slots=True)
class Trend:
    """Consistent growth of one series: per hour, and its share of rising steps."""

    first: float
    last: float
    per_hour: float
    rising: float


def trend(ts: Sequence[float], ys: Sequence[float], min_growth: float) -> Trend | None:
    """Consistent growth of ``ys`` over ``ts``, or None (see the module docstring)."""
    n = len(ys)
    if n < MIN_POINTS:
        return None
    growth = ys[-1] - ys[0]
    if growth < max(min_growth, MIN_RELATIVE * abs(ys[0]), 1e-9):
        return None
    steps = [b - a for a, b in itertools.pairwise(ys)]
    rising = sum(1 for s in steps if s > 0) / len(steps)
    if rising < MIN_RISING:
        return None
    if n >= 4 and max(steps) > MAX_JUMP * growth:
        return None
    if ys[-1] - ys[n // 2] < MIN_LATE * growth:
        return None
    recent = max(1, (n - 1) // 3)
    if ys[-1] <= ys[-1 - recent]:
        return None  # flat in the latest summaries: filled, not growing
    span = ts[-1] - ts[0]
    if span <= 0:
        return None
    mt, my = sum(ts) / n, sum(ys) / n
    stt = sum((t - mt) ** 2 for t in ts)
    slope = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=True)) / stt if stt else 0.0
    if slope <= 0:
        return None
    return Trend(ys[0], ys[-1], slope * 3600.0, rising)


class RetainerGrowth:
    """Containers across heap summaries, and the full-heap census of the latest one."""

    def __init__(self) -> None:
        self._tracked: dict[tuple[str, int], _Tracked] = {}
        self.summaries = 0
        self.first_t: float | None = None
        self.last_t: float | None = None
        self.census: list[tuple[str, int, int]] = []
        """(type, count, bytes) of every live object in the latest summary, largest first."""
        self.first_census: list[tuple[str, int, int]] = []
        self.totals: dict[str, Any] = {}
        self.last_meta: dict[str, Any] = {}
        self.by_type_series: dict[str, list[tuple[float, int]]] = {}

    def observe(self, t: float, summary: HeapSummary) -> None:
        """One summary (decoded from the child's JSON document) taken at ``t`` seconds."""
        if summary.empty:
            return
        census = list(summary.census)
        self.summaries += 1
        if self.first_t is None:
            self.first_t = t
            self.first_census = census
        self.last_t = t
        self.census = census
        self.totals = dict(summary.totals or {})
        self.last_meta = {
            "pause_s": summary.pause_s,
            "child_s": summary.child_s,
            "child_cpu_s": summary.child_cpu_s,
            "walk_s": summary.walk_s,
            "edges": summary.edges,
        }
        for c in summary.containers:
            key = (c.path, c.address)
            tracked = self._tracked.get(key)
            if tracked is None:
                tracked = self._tracked[key] = _Tracked(key[0], c.chain, c.type_name, t, t)
            tracked.holds = c.holds or tracked.holds
            tracked.hint = c.hint
            tracked.samples = c.samples
            tracked.chain = c.chain or tracked.chain
            tracked.add(t, float(c.items), float(c.bytes))
        self._evict()

    def _evict(self) -> None:
        excess = len(self._tracked) - MAX_TRACKED
        if excess <= 0:
            return
        order = sorted(self._tracked.items(), key=lambda kv: (kv[1].last_t, kv[1].points[-1][2]))
        for key, _ in order[:excess]:
            del self._tracked[key]

    def suspects(self, start_t: float = 0.0, limit: int = 10) -> list[Suspect]:
        """Growing containers, most retained growth first (ancestors explained by a growing
        descendant are left out: the descendant is the accumulation point)."""
        found: list[tuple[_Tracked, Trend | None, Trend | None]] = []
        for tr in self._tracked.values():
            if self.last_t is None or tr.last_t < self.last_t or len(tr.points) < MIN_POINTS:
                continue  # not in the latest summary: no longer among the largest
            ts = [p[0] for p in tr.points]
            items = trend(ts, [p[1] for p in tr.points], MIN_ITEMS_GROWTH)
            size = trend(ts, [p[2] for p in tr.points], MIN_BYTES_GROWTH)
            if items is None and size is None:
                continue
            found.append((tr, items, size))
        paths = [tr.path for tr, _, _ in found]
        out: list[Suspect] = []
        for tr, items, size in found:
            if items is None and any(
                p != tr.path and p.startswith(tr.path) and p[len(tr.path)] in ".[" for p in paths
            ):
                continue
            out.append(self._suspect(tr, items, size, start_t))
        out.sort(key=lambda s: (-(s.bytes_per_hour or 0.0), -(s.items_per_hour or 0.0), s.name))
        return out[:limit]

    def _suspect(
        self, tr: _Tracked, items: Trend | None, size: Trend | None, start_t: float
    ) -> Suspect:
        kind: SuspectKind = _HINT_KIND.get(tr.hint or "", "unbounded_collection")
        _, n_items, n_bytes = tr.points[-1]
        first_items = tr.points[0][1]
        holds = f" of {tr.holds}" if tr.holds else ""
        grew = f"grew {first_items:,.0f} → {n_items:,.0f} items{holds}"
        rate = []
        if items is not None:
            rate.append(f"{items.per_hour / 60.0:+,.0f} items/min")
        if size is not None:
            rate.append(f"{size.per_hour / 60.0 / (1 << 20):+,.2f} MiB/min")
        what = {
            "event_listeners": "listeners added and never removed",
            "lru_cache": "an unbounded lru_cache",
            "logging_handlers": "logging handlers added again and again",
            "threads": "threads kept after they finished",
            "asyncio_tasks": "asyncio tasks kept",
        }.get(tr.hint or "", "")
        detail = (
            f"{tr.type_name} `{tr.path}` {grew} ({', '.join(rate)}), holds "
            f"{n_bytes / (1 << 20):,.1f} MiB" + (f": {what}" if what else "")
        )
        score = max(items.rising if items else 0.0, size.rising if size else 0.0)
        score = min(1.0, 0.5 + 0.5 * score * min(1.0, len(tr.points) / 6))
        return Suspect(
            kind=kind,
            name=tr.path,
            detail=detail,
            first=first_items,
            last=n_items,
            per_hour=items.per_hour if items else 0.0,
            score=score,
            path=tr.path,
            chain=tr.chain,
            holds=tr.holds,
            items=int(n_items),
            items_per_hour=items.per_hour if items else 0.0,
            bytes_per_hour=size.per_hour if size else 0.0,
            retained_bytes=int(n_bytes),
            first_seen_s=max(0.0, tr.first_t - start_t),
            samples=tr.samples,
            growth=tuple((t - start_t, i, b) for t, i, b in tr.points),
        )

    def census_counts(self) -> dict[str, int]:
        return {name: count for name, count, _ in self.census}

    def to_report(self, start_t: float = 0.0, top: int = 50) -> dict[str, Any]:
        """The report's ``heap`` section: the full-heap census and the largest containers."""
        first = {name: count for name, count, _ in self.first_census}
        return {
            "summaries": self.summaries,
            "taken_at_seconds": None if self.last_t is None else round(self.last_t - start_t, 1),
            "totals": self.totals,
            "last": self.last_meta,
            "census": [
                {"type": name, "count": count, "bytes": size, "delta": count - first.get(name, 0)}
                for name, count, size in self.census[:top]
            ],
            "largest_containers": [
                {
                    "path": tr.path,
                    "type": tr.type_name,
                    "items": int(tr.points[-1][1]),
                    "retained_bytes": int(tr.points[-1][2]),
                    "holds": tr.holds,
                }
                for tr in sorted(
                    (x for x in self._tracked.values() if x.last_t == self.last_t),
                    key=lambda x: -x.points[-1][2],
                )[:20]
            ],
        }
