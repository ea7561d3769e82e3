"""Provides garbage-collector activity: counts from gc.get_stats(), pause times from a hook."""

from __future__ import annotations

import gc
from collections.abc import Callable
from time import perf_counter
from typing import Any, NamedTuple


class GcReading(NamedTuple):
    """Cumulative GC activity since the monitor was installed (per generation 0, 1, 2)."""

    collections: tuple[int, int, int]
    collected: tuple[int, int, int]
    uncollectable: tuple[int, int, int]
    time_s: tuple[float, float, float]
    """Seconds spent in collections of each generation while the timing hook was installed."""
    max_pause_s: float
    thresholds: tuple[int, int, int]
    garbage_count: int
    """len(gc.garbage): objects the collector found unreachable but could not free."""
    timed: bool
    """True when time_s comes from the gc.callbacks hook; False when timing is off."""
    timed_collections: tuple[int, int, int] = (0, 0, 0)
    """Collections of each generation the hook saw (time_s / this = mean pause)."""
    max_pause_by_gen_s: tuple[float, float, float] = (0.0, 0.0, 0.0)


_GcHook = Callable[[str, dict[str, Any]], None]


def _make_hook(totals: list[float], counts: list[int], maxima: list[float]) -> _GcHook:
    """Build the gc.callbacks hook: a closure over preallocated lists, nothing else.

    It runs inside every collection of the target, in whichever thread triggered it, so:
    everything it touches is a local or a default argument (no global or attribute
    lookups), 'start' only stores one float, it allocates no gc-tracked object (which
    would itself feed the collector), and it never raises. Measured: 0.2-0.3 µs per
    collection on top of the ~0.55 µs CPython spends calling any hook at all.
    """
    start = [0.0]

    def hook(
        phase: str,
        info: dict[str, Any],
        _now: Callable[[], float] = perf_counter,
        _start: list[float] = start,
        _totals: list[float] = totals,
        _counts: list[int] = counts,
        _maxima: list[float] = maxima,
    ) -> None:
        try:
            if phase == "start":
                _start[0] = _now()
                return
            elapsed = _now() - _start[0]
            generation = info["generation"]
            _totals[generation] += elapsed
            _counts[generation] += 1
            if elapsed > _maxima[generation]:
                _maxima[generation] = elapsed
        except Exception:
            # Never disturb the target's collection (KeyboardInterrupt is left alone).
            pass

    return hook


def _stats() -> tuple[tuple[int, int, int], tuple[int, int, int], tuple[int, int, int]]:
    """(collections, collected, uncollectable) per generation, cumulative since start-up."""
    stats = gc.get_stats()[:3]
    while len(stats) < 3:
        stats.append({})
    return (
        (
            stats[0].get("collections", 0),
            stats[1].get("collections", 0),
            stats[2].get("collections", 0),
        ),
        (
            stats[0].get("collected", 0),
            stats[1].get("collected", 0),
            stats[2].get("collected", 0),
        ),
        (
            stats[0].get("uncollectable", 0),
            stats[1].get("uncollectable", 0),
            stats[2].get("uncollectable", 0),
        ),
    )


def _minus(a: tuple[int, int, int], b: tuple[int, int, int]) -> tuple[int, int, int]:
    return (a[0] - b[0], a[1] - b[1], a[2] - b[2])


class GcMonitor:
    """Polls gc.get_stats() (nearly free) and, when asked, times collections with a cheap hook."""

    def __init__(self, time_collections: bool = True) -> None:
        self.time_collections = time_collections
        self._totals: list[float] = [0.0, 0.0, 0.0]
        self._counts: list[int] = [0, 0, 0]
        self._maxima: list[float] = [0.0, 0.0, 0.0]
        self._hook: _GcHook = _make_hook(self._totals, self._counts, self._maxima)
        self._installed = False
        self._baseline = _stats()

    @property
    def installed(self) -> bool:
        """True while the monitor counts (and, if timing, its hook sits in gc.callbacks)."""
        return self._installed

    def install(self) -> None:
        """Start counting from now and hook collections when timing; a no-op if installed."""
        if self._installed:
            return
        self._baseline = _stats()
        if self.time_collections and not any(cb is self._hook for cb in gc.callbacks):
            gc.callbacks.append(self._hook)
        self._installed = True

    def uninstall(self) -> None:
        """Remove our hook (by identity, leaving others' hooks alone); a no-op if not installed."""
        callbacks = gc.callbacks
        for i in range(len(callbacks) - 1, -1, -1):
            if callbacks[i] is self._hook:
                del callbacks[i]
        self._installed = False

    def read(self) -> GcReading:
        """Activity since install (since construction if never installed)."""
        collections, collected, uncollectable = _stats()
        base_collections, base_collected, base_uncollectable = self._baseline
        totals = self._totals
        counts = self._counts
        maxima = self._maxima
        threshold = gc.get_threshold()
        thresholds = (
            int(threshold[0]) if len(threshold) > 0 else 0,
            int(threshold[1]) if len(threshold) > 1 else 0,
            int(threshold[2]) if len(threshold) > 2 else 0,
        )
        return GcReading(
            collections=_minus(collections, base_collections),
            collected=_minus(collected, base_collected),
            uncollectable=_minus(uncollectable, base_uncollectable),
            time_s=(totals[0], totals[1], totals[2]),
            max_pause_s=max(maxima),
            thresholds=thresholds,
            garbage_count=len(gc.garbage),
            timed=self.time_collections,
            timed_collections=(counts[0], counts[1], counts[2]),
            max_pause_by_gen_s=(maxima[0], maxima[1], maxima[2]),
        )
