"""Provides tests of History: tiered aggregation, merged points, downsampling and bounds."""

from __future__ import annotations

import itertools
import time

import pytest

from memtui.probe.history import History, HistoryPoint


def test_single_tier_buckets_aggregate() -> None:
    h = History(("a", "b"), tiers=((10.0, 100),))
    for t, a in [(0.0, 1.0), (3.0, 5.0), (9.5, 3.0), (10.0, 7.0)]:
        h.append(t, (a, -a))
    points = h.points()
    assert len(points) == 2 == len(h)
    first = points[0]
    assert isinstance(first, HistoryPoint)
    assert (first.t_start, first.t_end, first.count) == (0.0, 9.5, 3)
    assert first.minimum == (1.0, -5.0)
    assert first.maximum == (5.0, -1.0)
    assert first.mean == (3.0, -3.0)
    assert first.last == (3.0, -3.0)
    assert points[1].count == 1 and points[1].last == (7.0, -7.0)


def test_every_sample_in_every_tier() -> None:
    h = History(("x",), tiers=((1.0, 10), (10.0, 10)))
    for i in range(25):
        h.append(float(i), (float(i),))
    assert sum(b[3] for b in h.tiers[1].buckets()) == 25
    assert sum(b[3] for b in h.tiers[0].buckets()) == 10  # only the last 10 s kept finely


def test_merged_points_cover_each_span_once() -> None:
    h = History(("x",), tiers=((1.0, 30), (10.0, 30), (100.0, 30)))
    n = 1000
    for i in range(n):
        h.append(float(i), (float(i),))
    points = h.points()
    # Every sample counted exactly once, in order, without overlaps.
    assert sum(p.count for p in points) == n
    for a, b in itertools.pairwise(points):
        assert a.t_end < b.t_start
    # Finest resolution for the most recent span, coarser further back.
    assert points[-1].count == 1
    assert points[0].count == 100
    assert points[-1].last == (float(n - 1),)
    assert len(h) == len(points)


def test_since_and_max_points() -> None:
    h = History(("x", "y"), tiers=((1.0, 100), (10.0, 1000)))
    for i in range(2000):
        h.append(float(i), (float(i % 7), 1.0))
    recent = h.points(since=1950.0)
    assert recent[0].t_end >= 1950.0
    assert all(p.t_start >= 1940.0 for p in recent)
    drawn = h.points(max_points=80)
    assert len(drawn) == 80
    assert sum(p.count for p in drawn) == 2000
    assert drawn[0].t_start == 0.0 and drawn[-1].t_end == 1999.0
    assert min(p.minimum[0] for p in drawn) == 0.0
    assert max(p.maximum[0] for p in drawn) == 6.0
    assert all(p.mean[1] == pytest.approx(1.0) for p in drawn)
    weighted = sum(p.mean[0] * p.count for p in drawn) / 2000
    assert weighted == pytest.approx(sum(i % 7 for i in range(2000)) / 2000)


def test_empty_and_bad_input() -> None:
    h = History(("x",))
    assert h.points() == [] and len(h) == 0
    with pytest.raises(ValueError):
        h.append(0.0, (1.0, 2.0))
    with pytest.raises(ValueError):
        History(("x",), tiers=())
    with pytest.raises(ValueError):
        History(("x",), tiers=((0.0, 10),))


def test_clock_stepping_back_is_folded_in() -> None:
    h = History(("x",), tiers=((1.0, 10),))
    h.append(5.0, (1.0,))
    h.append(3.0, (2.0,))
    points = h.points()
    assert len(points) == 1 and points[0].count == 2


def test_seven_days_at_one_hertz_is_bounded_and_fast() -> None:
    h = History(("rss", "uss", "gc"))
    sizes = []
    start = time.perf_counter()
    for i in range(604_800):
        h.append(float(i), (float(i), 2.0, 3.0))
        if i % 86_400 == 86_399:
            sizes.append(tuple(len(t) for t in h.tiers))
    elapsed = time.perf_counter() - start
    limits = (3600, 8640, 10080)
    assert all(all(n <= k for n, k in zip(s, limits, strict=True)) for s in sizes)
    # Flat once each tier is full: the two finer tiers stop growing after a day.
    assert len({s[:2] for s in sizes}) == 1
    assert sizes[-1] == limits
    per_append_us = elapsed / 604_800 * 1e6
    assert per_append_us < 25, per_append_us  # ~3.5 µs measured; generous for noisy CI
    points = h.points(max_points=80)
    assert len(points) == 80
    assert sum(p.count for p in h.points()) == 604_800


def test_a_run_starting_mid_bucket_keeps_its_fine_points() -> None:
    """Wall-clock timestamps start inside coarse buckets; they must not swallow the fine ones."""
    h = History(("rss",))
    for i in range(10):
        h.append(1_700_000_000.5 + i, (float(i),))
    points = h.points()
    assert len(points) == 10
    assert sum(p.count for p in points) == 10


def test_coarse_buckets_add_only_older_samples() -> None:
    h = History(("rss",), tiers=((1.0, 5), (10.0, 100)))
    for i in range(30):
        h.append(1_700_000_003.0 + i, (float(i),))
    points = h.points()
    assert sum(p.count for p in points) == 30
    assert [p.count for p in points[-3:]] == [1, 1, 1]
    assert all(a.t_end < b.t_start for a, b in itertools.pairwise(points))


def test_closed_buckets_are_packed_not_objects() -> None:
    """A bucket of four fields costs its 20 doubles (160 bytes), not ~630 bytes of tuples and
    floats: a week at 1 Hz is 3.6 MB, in the agent and in the monitor."""
    import tracemalloc

    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        h = History(("a", "b", "c", "d"), tiers=((1.0, 5000),))
        for i in range(6000):
            h.append(float(i), (float(i), 2.0, 3.0, 4.0 + i))
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(h) == 5000
    assert held < 5000 * 200, held
    points = h.points()
    assert points[0].t_start == 1000.0 and points[-1].last == (5999.0, 2.0, 3.0, 6003.0)
    assert sum(p.count for p in points) == 5000
