"""Provides tests of GcMonitor: counting deltas, timing hook, idempotent install/uninstall."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from memtui.probe.gcstats import GcMonitor, GcReading


@pytest.fixture
def monitor() -> Iterator[GcMonitor]:
    m = GcMonitor(time_collections=True)
    m.install()
    yield m
    m.uninstall()


def test_collection_increments_counts_and_time(monitor: GcMonitor) -> None:
    before = monitor.read()
    gc.collect(1)
    gc.collect()
    after = monitor.read()
    assert isinstance(after, GcReading)
    assert after.collections[1] >= before.collections[1] + 1
    assert after.collections[2] >= before.collections[2] + 1
    assert after.timed
    assert after.time_s[2] > 0.0
    assert after.time_s[1] > 0.0
    assert after.timed_collections[2] >= 1
    assert after.max_pause_s > 0.0
    assert after.max_pause_s >= after.max_pause_by_gen_s[2]
    assert after.thresholds == tuple(gc.get_threshold()[:3])
    assert after.garbage_count == len(gc.garbage)


def test_collected_counts_cycles(monitor: GcMonitor) -> None:
    class Node:
        def __init__(self) -> None:
            self.other: Any = self

    gc.collect()
    before = monitor.read()
    for _ in range(1000):
        Node()
    gc.collect()
    after = monitor.read()
    assert sum(after.collected) - sum(before.collected) >= 1000


def test_counts_are_deltas_since_install() -> None:
    gc.collect()
    m = GcMonitor(time_collections=False)
    m.install()
    try:
        reading = m.read()
        assert reading.collections[2] == 0
        assert reading.time_s == (0.0, 0.0, 0.0)
        assert not reading.timed
        gc.collect()
        reading = m.read()
        assert reading.collections[2] == 1
        assert reading.time_s == (0.0, 0.0, 0.0)
        assert m._hook not in gc.callbacks
    finally:
        m.uninstall()


def test_install_uninstall_idempotent_and_leaves_other_hooks() -> None:
    seen: list[str] = []

    def other(phase: str, info: dict[str, Any]) -> None:
        seen.append(phase)

    gc.callbacks.append(other)
    try:
        m = GcMonitor()
        m.install()
        m.install()
        assert sum(cb is m._hook for cb in gc.callbacks) == 1
        m.uninstall()
        m.uninstall()
        assert all(cb is not m._hook for cb in gc.callbacks)
        assert other in gc.callbacks
        gc.collect()
        assert "stop" in seen
    finally:
        gc.callbacks.remove(other)


def test_hook_never_raises() -> None:
    m = GcMonitor()
    hook = m._hook
    hook("start", {"generation": 0})
    hook("stop", {})  # missing key
    hook("stop", {"generation": 7})  # out of range
    hook("stop", None)  # type: ignore[arg-type]
    hook("stop", {"generation": 1, "collected": 0, "uncollectable": 0})
    assert m.read().timed_collections[1] == 1


def test_collections_in_other_threads_are_timed(monitor: GcMonitor) -> None:
    before = monitor.read().timed_collections[2]
    for _ in range(4):
        # One after another: CPython skips a collection requested while one is running.
        t = threading.Thread(target=gc.collect)
        t.start()
        t.join()
    assert monitor.read().timed_collections[2] >= before + 4


def test_time_kept_after_uninstall() -> None:
    m = GcMonitor()
    m.install()
    gc.collect()
    m.uninstall()
    spent = m.read().time_s[2]
    gc.collect()
    assert m.read().time_s[2] == spent > 0.0
