"""Provides SignatureTracker: names a leak's culprit from signals, censuses and GC readings.

A suspect needs growth that is consistent across many snapshots: rising in most intervals
of a coarse grid, a good linear fit, no single jump carrying most of the increase, and still
rising in the later half — so a large cache filled once and then flat is never named.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from memtui.engine.facts.wire import census_from_dict, gc_from_dict
from memtui.probe.census import CensusResult, ContainerInfo
from memtui.probe.gcstats import GcReading
from memtui.probe.signals import LeakSignals, NamedContainer

SuspectKind = Literal[
    "unbounded_collection",
    "event_listeners",
    "lru_cache",
    "logging_handlers",
    "threads",
    "asyncio_tasks",
    "file_descriptors",
    "sys_modules",
    "reference_cycles",
    "uncollectable",
    "growing_type",
]

SERIES_LEN: int = 64
"""Points kept per series; when full every other point is dropped (the span keeps growing)."""
MIN_POINTS: int = 6
MIN_R2: float = 0.7
MIN_RISING: float = 0.75
"""Share of coarse intervals (up to 6 buckets of the series) in which the mean rose."""
MAX_FALLING: float = 0.35
"""Share of single intervals allowed to fall (churn around a growing level)."""
MAX_JUMP: float = 0.5
"""The largest single step may carry at most this share of the increase."""
MIN_LATE: float = 0.25
"""The later half must carry at least this share of the increase (not levelling off)."""
LARGE_HANDLERS: int = 10
"""A logger with this many handlers is named even when the count is not growing."""
CYCLE_FREED: int = 1000
"""A forced gc.collect() freeing this many objects points at reference cycles."""
CYCLE_PER_COLLECTION: int = 200
"""Automatic collections freeing this many cyclic objects each on average (and 10 ×
CYCLE_FREED in all) mean objects keep dying in reference cycles."""
MIN_INCREASE: dict[str, float] = {
    "container": 100,
    "lru": 100,
    "logger": 3,
    "handlers": 3,
    "threads": 3,
    "group": 3,
    "asyncio": 10,
    "fds": 5,
    "fdkind": 5,
    "modules": 10,
    "garbage": 1,
    "pending": 1000,
    "type": 500,
}
"""Smallest absolute increase per series family (containers and types also need +5%)."""


_SIMPLE: dict[str, tuple[SuspectKind, str, str, str]] = {
    "handlers": ("logging_handlers", "handlers of all loggers", "handlers", "addHandler repeated"),
    "asyncio": ("asyncio_tasks", "pending asyncio tasks", "tasks", "tasks that never finish"),
    "modules": ("sys_modules", "sys.modules", "modules", "modules made or imported at run time"),
    "garbage": ("uncollectable", "gc.garbage", "objects", "objects the collector cannot free"),
    "pending": ("reference_cycles", "gc disabled: objects awaiting collection", "objects", ""),
}
"""Series family → (kind, label, unit, reason) for the suspects described the same way."""


@dataclass(frozen=True, slots=True)
class Suspect:
    """One named culprit; ``score`` in [0, 1] grows with fit, consistency and evidence."""

    kind: SuspectKind
    name: str
    detail: str
    first: float
    last: float
    per_hour: float
    score: float
    path: str | None = None
    """Dotted path of the container that holds it ('memtui.demo.ORDER_LOG'), when known."""
    chain: str = ""
    """Reference chain from a root ('module memtui.demo → global ORDER_LOG → list')."""
    holds: str | None = None
    """Type of most of its items."""
    items: int | None = None
    items_per_hour: float | None = None
    bytes_per_hour: float | None = None
    """Growth of the bytes it retains."""
    retained_bytes: int | None = None
    first_seen_s: float | None = None
    """Seconds since watching started when its growth was first seen."""
    samples: tuple[str, ...] = ()
    growth: tuple[tuple[float, float, float], ...] = ()
    """(t_s, items, retained_bytes) per heap summary."""

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["samples"] = list(self.samples)
        d["growth"] = [list(p) for p in self.growth]
        return d


@dataclass(frozen=True, slots=True)
class Growth:
    """Consistent growth found in one series (over its whole span or its later half)."""

    first: float
    last: float
    per_hour: float
    r2: float
    rising: float
    points: int

    @property
    def score(self) -> float:
        return max(0.0, min(1.0, self.r2 * self.rising * min(1.0, self.points / 12)))


def _fit(ts: Sequence[float], ys: Sequence[float]) -> tuple[float, float]:
    n = len(ts)
    mt, my = sum(ts) / n, sum(ys) / n
    stt = sum((t - mt) ** 2 for t in ts)
    syy = sum((y - my) ** 2 for y in ys)
    sty = sum((t - mt) * (y - my) for t, y in zip(ts, ys, strict=False))
    if stt <= 0 or syy <= 0:
        return 0.0, 0.0
    return sty / stt, sty * sty / (stt * syy)


def _check(points: Sequence[tuple[float, float]], min_increase: float) -> Growth | None:
    n = len(points)
    if n < MIN_POINTS:
        return None
    ts = [p[0] for p in points]
    ys = [p[1] for p in points]
    increase = ys[-1] - ys[0]
    if increase < max(min_increase, 1e-12):
        return None
    steps = [b - a for a, b in itertools.pairwise(ys)]
    if sum(1 for s in steps if s < 0) > MAX_FALLING * len(steps):
        return None
    if max(steps) > MAX_JUMP * increase:
        return None
    if ys[-1] - ys[n // 2] < MIN_LATE * increase:
        return None
    k = min(6, n // 2)
    bounds = [round(i * n / k) for i in range(k + 1)]
    means = [sum(ys[a:b]) / (b - a) for a, b in itertools.pairwise(bounds)]
    rising = sum(1 for a, b in itertools.pairwise(means) if b > a) / (k - 1)
    if rising < MIN_RISING:
        return None
    slope, r2 = _fit(ts, ys)
    if slope <= 0 or r2 < MIN_R2:
        return None
    return Growth(ys[0], ys[-1], slope * 3600.0, r2, rising, n)


def consistent_growth(
    points: Sequence[tuple[float, float]], min_increase: float = 1.0
) -> Growth | None:
    """Growth over the whole series, else over its later half (a leak that began late)."""
    found = _check(points, min_increase)
    if found is None and len(points) >= 2 * MIN_POINTS:
        found = _check(points[len(points) // 2 :], min_increase)
    return found


class _Series:
    __slots__ = ("last_t", "points")

    def __init__(self) -> None:
        self.points: deque[tuple[float, float]] = deque(maxlen=SERIES_LEN)
        self.last_t = 0.0

    def add(self, t: float, y: float) -> None:
        if len(self.points) == SERIES_LEN:
            kept = list(self.points)[::2]
            self.points.clear()
            self.points.extend(kept)
        self.points.append((t, y))
        self.last_t = t


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _rate(g: Growth, unit: str) -> str:
    return f"{g.per_hour:+,.0f} {unit}/h"


class SignatureTracker:
    """Follows signal series across snapshots; memory is bounded by ``max_series`` × 64 points."""

    def __init__(self, max_series: int = 400, max_types: int = 100) -> None:
        self.max_series = max_series
        self.max_types = max_types
        self._series: dict[tuple[str, str], _Series] = {}
        self._containers: dict[str, NamedContainer | ContainerInfo] = {}
        self._lru_max: dict[str, int | None] = {}
        self._gc: deque[tuple[float, GcReading]] = deque(maxlen=SERIES_LEN)
        self._collects: deque[tuple[float, int, int | None, str | None]] = deque(maxlen=16)
        self._gc_enabled = True
        self._last_taken: float | None = None

    def __len__(self) -> int:
        return len(self._series)

    def _add(self, family: str, name: str, t: float, y: float) -> None:
        series = self._series.get((family, name))
        if series is None:
            series = self._series[(family, name)] = _Series()
        series.add(t, y)

    def observe(
        self,
        t_s: float,
        signals: LeakSignals | None = None,
        census: CensusResult | None = None,
        gc: GcReading | None = None,
    ) -> None:
        """Record one snapshot at ``t_s`` seconds (any of the three may be missing).

        A signals reading already seen (same ``taken_at``) is ignored, so frames polled more
        often than the probe refreshes its signals can be fed as they come.
        """
        if signals is not None and signals.taken_at != self._last_taken:
            self._last_taken = signals.taken_at
            self._signals(t_s, signals)
        if census is not None:
            self._census(t_s, census)
        if gc is not None:
            self._gc.append((t_s, gc))
        self._evict()

    def observe_dicts(
        self,
        t_s: float,
        signals: Mapping[str, Any] | None = None,
        census: Mapping[str, Any] | None = None,
        gc: Mapping[str, Any] | None = None,
    ) -> None:
        """observe() for JSON forms: LeakSignals.to_dict(), an agent census summary, GC dict."""
        self.observe(
            t_s,
            LeakSignals.from_dict(dict(signals)) if signals is not None else None,
            census_from_dict(census) if census is not None else None,
            gc_from_dict(gc) if gc is not None else None,
        )

    def observe_collect(
        self,
        t_s: float,
        freed: int,
        rss_freed_bytes: int | None = None,
        counts_before: Mapping[str, int] | None = None,
        counts_after: Mapping[str, int] | None = None,
    ) -> None:
        """Record a forced gc.collect(): its return value, RSS it gave back, census around it."""
        top: str | None = None
        if counts_before is not None and counts_after is not None:
            drops = {k: v - counts_after.get(k, 0) for k, v in counts_before.items()}
            if drops:
                name, dropped = max(drops.items(), key=lambda kv: kv[1])
                top = f"`{name}` −{_n(dropped)}" if dropped > 0 else None
        self._collects.append((t_s, int(freed), rss_freed_bytes, top))

    def _signals(self, t: float, s: LeakSignals) -> None:
        for c in s.containers:
            if c.name == "gc.garbage":  # reported as 'uncollectable' instead
                continue
            self._add("container", c.name, t, c.length)
            self._containers[c.name] = c
        for lru in s.lru_caches:
            self._add("lru", lru.name, t, lru.currsize)
            self._lru_max[lru.name] = lru.maxsize
        for name, count in s.logger_handlers:
            self._add("logger", name, t, count)
        self._add("handlers", "", t, s.total_handlers)
        self._add("threads", "", t, s.threads)
        for name, count in s.thread_groups:
            self._add("group", name, t, count)
        if s.asyncio_tasks is not None:
            self._add("asyncio", "", t, s.asyncio_tasks)
        if s.fds is not None:
            self._add("fds", "", t, s.fds)
            for kind, count in s.fd_kinds:
                self._add("fdkind", kind, t, count)
        self._add("modules", "", t, s.modules)
        self._add("garbage", "", t, s.gc_garbage)
        self._gc_enabled = s.gc_enabled
        if not s.gc_enabled:
            self._add("pending", "", t, s.gc_counts[0])
        else:
            self._series.pop(("pending", ""), None)

    def _census(self, t: float, census: CensusResult) -> None:
        followed = {name for family, name in self._series if family == "type"}
        ranked = sorted(census.counts.items(), key=lambda kv: -kv[1])[: self.max_types]
        for name, count in ranked:
            self._add("type", name, t, count)
            followed.discard(name)
        for name in followed:
            self._add("type", name, t, census.counts.get(name, 0))
        named = {
            c.object_id: c.name for c in self._containers.values() if isinstance(c, NamedContainer)
        }
        for info in census.largest_containers:
            if info.object_id not in named:
                key = f"{info.type_name} at {info.object_id:#x}"
                self._add("anon", key, t, info.length)
                self._containers[key] = info

    def _loggers(self) -> set[str]:
        return {name for family, name in self._series if family == "logger"}

    def _evict(self) -> None:
        excess = len(self._series) - self.max_series
        if excess <= 0:
            return
        order = sorted(
            self._series, key=lambda k: (self._series[k].last_t, self._series[k].points[-1][1])
        )
        for key in order[:excess]:
            del self._series[key]
            self._containers.pop(key[1], None)

    def suspects(self) -> list[Suspect]:
        """Named culprits, most convincing first."""
        out: list[Suspect] = []
        for (family, name), series in self._series.items():
            pts = list(series.points)
            base = MIN_INCREASE.get(family if family != "anon" else "container", 1.0)
            if family in ("container", "anon", "type") and pts:
                base = max(base, 0.05 * pts[0][1])
            g = consistent_growth(pts, base)
            suspect = self._describe(family, name, g) if g is not None else None
            if suspect is None and family == "logger" and pts and pts[-1][1] >= LARGE_HANDLERS:
                suspect = Suspect(
                    "logging_handlers", name, f"logger `{name}` has {_n(pts[-1][1])} handlers",
                    pts[0][1], pts[-1][1], 0.0, 0.5,
                )  # fmt: skip
            if suspect is not None:
                out.append(suspect)
        out.extend(self._gc_suspects())
        if any(s.kind == "logging_handlers" and s.name in self._loggers() for s in out):
            out = [s for s in out if s.name != _SIMPLE["handlers"][1]]
        out.sort(key=lambda s: (-s.score, s.kind, s.name))
        return out

    def _describe(self, family: str, name: str, g: Growth) -> Suspect | None:
        grew = f"grew {_n(g.first)} → {_n(g.last)}"
        kind: SuspectKind
        if family in ("container", "anon"):
            info = self._containers.get(name)
            kind, what, score = "unbounded_collection", "", g.score
            if isinstance(info, NamedContainer) and info.sampled:
                if info.callables * 2 >= info.sampled:
                    kind = "event_listeners"
                    share = 100 * info.callables // info.sampled
                    what = f", {share}% bound methods/functions: listeners never removed"
                elif info.item_types:
                    what = f", mostly {info.item_types[0][0]}"
            if family == "anon":
                what += " (no module-level name: follow its referrers)"
                score *= 0.8
            type_name = info.type_name if info is not None else "container"
            detail = f"{type_name} `{name}` {grew} items ({_rate(g, 'items')}){what}"
            return Suspect(kind, name, detail, g.first, g.last, g.per_hour, score)
        if family == "lru":
            if self._lru_max.get(name, 0) is not None:
                return None
            detail = f"unbounded lru_cache `{name}` {grew} entries ({_rate(g, 'entries')})"
            return Suspect("lru_cache", name, detail, g.first, g.last, g.per_hour, g.score)
        if family in ("threads", "fds"):
            sub = "group" if family == "threads" else "fdkind"
            parts = [(k, s.points) for (f, k), s in self._series.items() if f == sub]
            best = max(parts, key=lambda p: p[1][-1][1] - p[1][0][1], default=None)
            what, unit = ("threads", "threads") if family == "threads" else ("open fds", "fds")
            mostly = f", mostly `{best[0]}` ({_n(best[1][-1][1])})" if best else ""
            kind = "threads" if family == "threads" else "file_descriptors"
            detail = f"{what} {grew} ({_rate(g, unit)}){mostly}"
            label = best[0] if best else what
            return Suspect(kind, label, detail, g.first, g.last, g.per_hour, g.score)
        if family in ("logger", "type") or family in _SIMPLE:
            if family == "logger":
                kind, label, unit, tail = _SIMPLE["handlers"]
                label = f"logger `{name}`"
            elif family == "type":
                kind, label, unit, tail = "growing_type", f"`{name}` objects", "objects", ""
            else:
                kind, label, unit, tail = _SIMPLE[family]
            tail = f": {tail}" if tail else ""
            detail = f"{label} {grew} ({_rate(g, unit)}){tail}"
            score = g.score * (0.9 if family in ("type", "handlers") else 1.0)
            if family == "garbage":
                score = max(score, 0.6)
            return Suspect(kind, name or label, detail, g.first, g.last, g.per_hour, score)
        return None

    def _cyclic_garbage_grows(self) -> bool:
        """Objects dying in cycles are churn, not a leak, unless what each collection frees
        keeps growing (the cyclic garbage, and the memory it holds between collections)."""
        if len(self._gc) < 5:
            return False
        readings = list(self._gc)
        mid = len(readings) // 2

        def per_collection(a: GcReading, b: GcReading) -> float:
            n = sum(b.collections) - sum(a.collections)
            return (sum(b.collected) - sum(a.collected)) / n if n > 0 else 0.0

        if readings[-1][1].garbage_count - readings[0][1].garbage_count >= CYCLE_FREED:
            return True  # gc.DEBUG_SAVEALL: every freed cycle is kept in gc.garbage
        early = per_collection(readings[0][1], readings[mid][1])
        late = per_collection(readings[mid][1], readings[-1][1])
        return late >= CYCLE_PER_COLLECTION and late >= 1.5 * max(early, 1.0)

    def _gc_suspects(self) -> list[Suspect]:
        out: list[Suspect] = []
        if self._collects:
            freed = [c[1] for c in self._collects]
            mean = sum(freed) / len(freed)
            _t, last, rss, top = self._collects[-1]
            if mean >= CYCLE_FREED or (rss is not None and rss >= 1 << 20):
                mostly = f", mostly {top}" if top else ""
                gave = f", RSS −{rss / (1 << 20):,.1f} MiB" if rss else ""
                detail = (
                    f"gc.collect() freed {_n(last)} objects{mostly}{gave}: "
                    "memory held by reference cycles until a full collection"
                )
                score = min(1.0, 0.5 + 0.1 * len(freed) + (0.2 if not self._gc_enabled else 0.0))
                out.append(
                    Suspect(
                        "reference_cycles",
                        "gc.collect()",
                        detail,
                        float(freed[0]),
                        float(last),
                        0.0,
                        score,
                    )
                )
        if len(self._gc) >= 2:
            (t0, a), (t1, b) = self._gc[0], self._gc[-1]
            collections = sum(b.collections) - sum(a.collections)
            collected = sum(b.collected) - sum(a.collected)
            hours = max(t1 - t0, 1e-9) / 3600.0
            if (
                collections >= 3
                and collected >= 10 * CYCLE_FREED
                and collected >= CYCLE_PER_COLLECTION * collections
                and self._cyclic_garbage_grows()
            ):
                per = collected / collections
                detail = (
                    f"collections free {_n(per)} cyclic objects each "
                    f"({_n(collected / hours)}/h): objects die in reference cycles"
                )
                out.append(
                    Suspect(
                        "reference_cycles",
                        "gc collections",
                        detail,
                        0.0,
                        per,
                        collected / hours,
                        min(0.6, 0.2 + 0.05 * collections),
                    )
                )
            lost = sum(b.uncollectable) - sum(a.uncollectable)
            if lost > 0 and not any(s.kind == "uncollectable" for s in out):
                detail = (
                    f"collections found {_n(lost)} uncollectable objects ({_n(lost / hours)}/h)"
                )
                out.append(
                    Suspect("uncollectable", "gc", detail, 0.0, float(lost), lost / hours, 0.6)
                )
        return out
