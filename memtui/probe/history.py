"""Provides bounded multi-resolution history: fine samples recently, coarser ones further back."""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterator
from operator import add


class HistoryPoint:
    """One bucket of samples: time span and per-field min/max/mean/last.

    A plain slotted class (its ``count`` would shadow ``tuple.count`` in a NamedTuple; a
    dataclass costs every target ~2 ms to define at import).
    """

    __slots__ = ("count", "last", "maximum", "mean", "minimum", "t_end", "t_start")

    def __init__(
        self,
        t_start: float,
        t_end: float,
        count: int,
        minimum: tuple[float, ...],
        maximum: tuple[float, ...],
        mean: tuple[float, ...],
        last: tuple[float, ...],
    ) -> None:
        self.t_start = t_start
        self.t_end = t_end
        self.count = count
        self.minimum = minimum
        self.maximum = maximum
        self.mean = mean
        self.last = last

    def __repr__(self) -> str:
        return f"HistoryPoint(t_start={self.t_start!r}, t_end={self.t_end!r}, count={self.count!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, HistoryPoint):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)


DEFAULT_TIERS: tuple[tuple[float, int], ...] = ((1.0, 3600), (10.0, 8640), (60.0, 10080))
"""(bucket width in seconds, buckets kept): 1 s for an hour, 10 s for a day, 1 min for a week."""

# A closed bucket, kept as a plain tuple (cheaper than a dataclass per second of history):
# (bucket key, t_start, t_end, count, minima, maxima, sums, last)
_Bucket = tuple[
    int,
    float,
    float,
    int,
    tuple[float, ...],
    tuple[float, ...],
    tuple[float, ...],
    tuple[float, ...],
]


class _PackedRing:
    """Closed buckets packed as doubles in one array, oldest overwritten once ``maxlen`` are
    held: 8 bytes a value instead of a float object and a slot in a tuple (160 bytes a bucket
    of four fields instead of about 630), so a week at 1 Hz is 3.6 MB, not 14 MB. Grows as
    buckets close; never holds more than ``maxlen``."""

    __slots__ = ("_data", "_head", "_len", "maxlen", "nfields", "width")

    def __init__(self, maxlen: int, nfields: int) -> None:
        self.maxlen = maxlen
        self.nfields = nfields
        self.width = 4 + 4 * nfields
        self._data: array[float] = array("d")
        self._head = 0  # index of the oldest bucket once the ring is full
        self._len = 0

    def append(self, bucket: _Bucket) -> None:
        if not self.maxlen:
            return
        row = array("d", (bucket[0], bucket[1], bucket[2], bucket[3]))
        for part in bucket[4:]:
            row.extend(part)
        if self._len < self.maxlen:
            self._data.extend(row)
            self._len += 1
            return
        i = self._head * self.width
        self._data[i : i + self.width] = row
        self._head = (self._head + 1) % self.maxlen

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[_Bucket]:
        d, w, n = self._data, self.width, self.nfields
        for j in range(self._len):
            i = ((self._head + j) % self._len) * w
            v = 4 + i
            yield (
                int(d[i]),
                d[i + 1],
                d[i + 2],
                int(d[i + 3]),
                tuple(d[v : v + n]),
                tuple(d[v + n : v + 2 * n]),
                tuple(d[v + 2 * n : v + 3 * n]),
                tuple(d[v + 3 * n : v + 4 * n]),
            )


class _Tier:
    """One resolution: closed buckets in a bounded packed ring plus the bucket being filled."""

    __slots__ = (
        "closed",
        "count",
        "key",
        "last",
        "maxima",
        "minima",
        "sums",
        "t_end",
        "t_start",
        "width",
    )

    def __init__(self, width: float, kept: int, nfields: int) -> None:
        self.width = width
        # The open bucket counts against ``kept`` too, so at most ``kept`` buckets exist.
        self.closed = _PackedRing(max(0, kept - 1), nfields)
        self.key: int | None = None
        self.t_start = 0.0
        self.t_end = 0.0
        self.count = 0
        self.minima: list[float] = []
        self.maxima: list[float] = []
        self.sums: list[float] = []
        self.last: tuple[float, ...] = ()

    def close(self) -> None:
        """Move the open bucket into the closed ring (the oldest is overwritten when full)."""
        if self.key is not None and self.closed.maxlen:
            self.closed.append(self._open_bucket())

    def _open_bucket(self) -> _Bucket:
        """The bucket being filled, as a closed bucket tuple (key must be set)."""
        assert self.key is not None
        return (
            self.key,
            self.t_start,
            self.t_end,
            self.count,
            tuple(self.minima),
            tuple(self.maxima),
            tuple(self.sums),
            self.last,
        )

    def buckets(self) -> list[_Bucket]:
        """All buckets, oldest first, the open one included."""
        out = list(self.closed)
        if self.key is not None:
            out.append(self._open_bucket())
        return out

    def __len__(self) -> int:
        return len(self.closed) + (self.key is not None)


class History:
    """Keeps samples of ``fields`` numeric values in tiers of growing bucket width.

    Memory is bounded by the tiers whatever the run length; every tier sees every sample.
    """

    def __init__(
        self, fields: tuple[str, ...], tiers: tuple[tuple[float, int], ...] = DEFAULT_TIERS
    ) -> None:
        if not tiers:
            raise ValueError("History needs at least one tier")
        ordered = sorted(tiers, key=lambda tier: tier[0])
        for width, kept in ordered:
            if not width > 0 or kept < 1:
                raise ValueError(f"bad tier (width={width!r}, kept={kept!r})")
        self.fields = tuple(fields)
        self.tiers: tuple[_Tier, ...] = tuple(
            _Tier(float(w), int(k), len(self.fields)) for w, k in ordered
        )

    def append(self, t: float, values: tuple[float, ...]) -> None:
        """Add one sample to every tier (a few µs; C-level per-field updates)."""
        if len(values) != len(self.fields):
            raise ValueError(f"expected {len(self.fields)} values, got {len(values)}")
        values = tuple(values)
        for tier in self.tiers:
            key = math.floor(t / tier.width)
            current = tier.key
            if current is not None and key <= current:
                # Same bucket (or a clock step backwards: never reorder, fold it in).
                tier.minima = list(map(min, tier.minima, values))
                tier.maxima = list(map(max, tier.maxima, values))
                tier.sums = list(map(add, tier.sums, values))
                tier.count += 1
                if t > tier.t_end:
                    tier.t_end = t
                tier.last = values
            else:
                tier.close()
                tier.key = key
                tier.t_start = t
                tier.t_end = t
                tier.count = 1
                tier.minima = list(values)
                tier.maxima = list(values)
                tier.sums = list(values)
                tier.last = values

    def _merged(self) -> list[_Bucket]:
        """Buckets covering the whole history once, finest tier first, oldest first.

        A coarse bucket that straddles the start of finer coverage replaces the finer
        buckets inside its span (it holds those samples too, since every tier sees every
        sample), so spans neither overlap nor leave gaps.
        """
        merged: list[_Bucket] = []
        cover_start = math.inf  # time of the oldest sample already covered by finer tiers
        for tier in self.tiers:
            if not len(tier):
                continue
            if cover_start == math.inf:
                merged = tier.buckets()
                cover_start = merged[0][1]
                continue
            # Only coarse buckets holding samples older than the finer coverage add anything
            # (compare real sample times: a run that starts mid-bucket must not look older).
            older = [b for b in tier.buckets() if b[1] < cover_start]
            if not older:
                continue
            span_end = older[-1][2]
            if span_end >= cover_start:
                # The newest coarse bucket straddles: drop the finer buckets it covers.
                merged = [b for b in merged if b[1] > span_end]
            merged = older + merged
            cover_start = older[0][1]
        return merged

    def points(
        self, since: float | None = None, max_points: int | None = None
    ) -> list[HistoryPoint]:
        """Points from ``since`` on, each span at the finest resolution still held."""
        buckets = self._merged()
        if since is not None:
            buckets = [b for b in buckets if b[2] >= since]
        if max_points is not None and max_points >= 1 and len(buckets) > max_points:
            buckets = _downsample(buckets, max_points)
        return [
            HistoryPoint(
                t_start=b[1],
                t_end=b[2],
                count=b[3],
                minimum=b[4],
                maximum=b[5],
                mean=tuple(s / b[3] for s in b[6]),
                last=b[7],
            )
            for b in buckets
        ]

    def __len__(self) -> int:
        return len(self._merged())


def _downsample(buckets: list[_Bucket], max_points: int) -> list[_Bucket]:
    """Merge runs of adjacent buckets into ``max_points`` evenly sized groups."""
    n = len(buckets)
    out: list[_Bucket] = []
    for i in range(max_points):
        group = buckets[i * n // max_points : (i + 1) * n // max_points]
        if not group:
            continue
        first = group[0]
        if len(group) == 1:
            out.append(first)
            continue
        minima = list(first[4])
        maxima = list(first[5])
        sums = list(first[6])
        count = first[3]
        for b in group[1:]:
            minima = list(map(min, minima, b[4]))
            maxima = list(map(max, maxima, b[5]))
            sums = list(map(add, sums, b[6]))
            count += b[3]
        out.append(
            (
                first[0],
                first[1],
                group[-1][2],
                count,
                tuple(minima),
                tuple(maxima),
                tuple(sums),
                group[-1][7],
            )
        )
    return out
