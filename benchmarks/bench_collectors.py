"""Provides one command measuring the probe collectors against their baselines in the same run.

Run: /work/venv/bin/python benchmarks/bench_collectors.py [--quick] [--only memory,gc,census]

Sections: ProcMemoryReader vs psutil; read_full at the current RSS and at ~600 MB; the GC
timing hook's slowdown of allocation-heavy workloads (paired, alternating, medians); the
census at 1M and 5M live objects vs gc.get_objects() and Counter(map(type, ...)). Any
CPython 3.10+ runs it; psutil is only needed for the psutil comparison.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memtui.probe.census import CensusResult, take_census
from memtui.probe.gcstats import GcMonitor
from memtui.probe.memory import ProcMemoryReader

MB = 1024 * 1024


def per_call_us(func: Callable[[], object], seconds: float = 0.3, repeats: int = 5) -> float:
    """Best-of-``repeats`` mean cost of one call, in microseconds."""
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            func()
        if time.perf_counter() - start > seconds / repeats:
            break
        number *= 2
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best * 1e6


def bench_memory(quick: bool) -> None:
    print("== ProcMemoryReader (per call, best of 5)")
    reader = ProcMemoryReader()
    ours = per_call_us(reader.read)
    try:
        import psutil

        process = psutil.Process()
        theirs = per_call_us(process.memory_info)
        print(f"read()                       {ours:8.2f} µs")
        print(
            f"psutil memory_info()         {theirs:8.2f} µs   (ours is {theirs / ours:.1f}x faster)"
        )
    except ImportError:
        print(f"read()                       {ours:8.2f} µs   (psutil not installed)")
    rss = reader.read().rss_bytes / MB
    full = per_call_us(reader.read_full, seconds=0.3)
    print(f"read_full() at {rss:6.0f} MB RSS {full:8.1f} µs")
    target = 600 * MB
    ballast = b"\1" * max(0, target - reader.read().rss_bytes)  # every page touched
    rss = reader.read().rss_bytes / MB
    full_big = per_call_us(reader.read_full, seconds=0.3)
    print(f"read_full() at {rss:6.0f} MB RSS {full_big:8.1f} µs")
    del ballast
    reader.close()


# -- GC hook -------------------------------------------------------------------------------


def _leaf(i: int) -> dict[str, Any]:
    return {"id": i, "name": "leaf", "tags": ["a", "b"], "pos": [1.0, 2.0], "ok": True}


def _tree(depth: int, width: int) -> dict[str, Any]:
    if depth == 0:
        return _leaf(depth)
    return {
        "kids": [_tree(depth - 1, width) for _ in range(width)],
        "meta": {"depth": depth, "path": [depth, width]},
    }


def workload_trees(scale: int) -> None:
    """Builds JSON-like trees and drops them after a while, next to a big live heap of them
    (``_BALLAST``): about 80% of the time goes to the collector, mostly full collections."""
    keep: list[dict[str, Any]] = []
    for _ in range(scale):
        keep.append(_tree(4, 4))
        if len(keep) > 100:
            del keep[:20]


_BALLAST: list[dict[str, Any]] = []


def workload_churn(scale: int) -> None:
    """Short-lived containers, collected mostly young: as many collections per second as
    Python code can trigger (the worst case for a per-collection hook)."""
    for _ in range(scale * 10):
        batch = [[i, [i]] for i in range(5_000)]
        del batch


def _noop(phase: str, info: dict[str, Any]) -> None:
    pass


def _per_collection_ns() -> dict[str, float]:
    """Each hook's own cost per collection, isolated: empty young-generation collections."""
    n = 50_000
    collect = gc.collect
    costs: dict[str, list[float]] = {"bare": [], "noop hook": [], "GcMonitor": []}
    monitor = GcMonitor()
    for _ in range(5):
        for cond in costs:
            if cond == "noop hook":
                gc.callbacks.append(_noop)
            elif cond == "GcMonitor":
                monitor.install()
            start = time.perf_counter()
            for _ in range(n):
                collect(0)
            costs[cond].append((time.perf_counter() - start) / n * 1e9)
            if cond == "noop hook":
                gc.callbacks.remove(_noop)
            elif cond == "GcMonitor":
                monitor.uninstall()
    base = statistics.median(costs["bare"])
    return {cond: statistics.median(v) - base for cond, v in costs.items()}


def bench_gc(quick: bool) -> None:
    print(f"== GC timing hook on allocation-heavy workloads (Python {sys.version.split()[0]})")
    per_collection = _per_collection_ns()
    print(
        "-- cost per collection (isolated, gc.collect(0) loop): "
        + ", ".join(f"{c} +{ns:.0f} ns" for c, ns in per_collection.items() if c != "bare")
    )
    reps = 7 if quick else 21
    clock = time.process_time  # CPU time: other tenants of a noisy machine do not count
    _BALLAST[:] = [_tree(4, 4) for _ in range(500)]
    for name, work, scale in (("trees", workload_trees, 200), ("churn", workload_churn, 15)):
        gc.collect()
        gc.disable()
        start = clock()
        work(scale)
        no_gc = clock() - start
        gc.enable()
        gc.collect()
        before = [s["collections"] for s in gc.get_stats()]
        start = clock()
        work(scale)
        with_gc = clock() - start
        ncoll = sum(s["collections"] for s in gc.get_stats()) - sum(before)
        print(
            f"-- {name}: {with_gc:.3f} s CPU a run, {max(0.0, 1 - no_gc / with_gc):.0%} of it"
            f" in GC, {ncoll} collections ({with_gc / max(ncoll, 1) * 1e6:.0f} µs apart)"
        )
        monitor = GcMonitor(time_collections=True)
        times: dict[str, list[float]] = {"bare": [], "noop hook": [], "GcMonitor": []}
        for rep in range(reps):
            # Alternate the order so drift and warm-up do not favour one condition.
            order = list(times) if rep % 2 == 0 else list(reversed(times))
            for cond in order:
                gc.collect()
                if cond == "noop hook":
                    gc.callbacks.append(_noop)
                elif cond == "GcMonitor":
                    monitor.install()
                start = clock()
                work(scale)
                times[cond].append(clock() - start)
                if cond == "noop hook":
                    gc.callbacks.remove(_noop)
                elif cond == "GcMonitor":
                    monitor.uninstall()
        # Paired ratios: each run against the bare run of the same round.
        for cond in ("noop hook", "GcMonitor"):
            ratios = [a / b for a, b in zip(times[cond], times["bare"], strict=True)]
            expected = 1 + per_collection[cond] * 1e-9 * ncoll / with_gc
            print(
                f"   {cond:10s} ratio to bare: median {statistics.median(ratios):.3f}"
                f" (min {min(ratios):.3f}, max {max(ratios):.3f}, {reps} paired runs);"
                f" from per-collection cost: {expected:.4f}"
            )
        if name == "trees":
            _BALLAST.clear()
        reading = monitor.read()
        print(
            f"   hook saw {sum(reading.timed_collections)} collections, "
            f"{sum(reading.time_s):.3f} s in GC, max pause {reading.max_pause_s * 1e3:.2f} ms"
        )


# -- census --------------------------------------------------------------------------------


class _Slot:
    __slots__ = ("a",)

    def __init__(self, a: object) -> None:
        self.a = a


class _Plain:
    pass


def _population(n: int) -> list[object]:
    """About ``n`` gc-tracked objects of a few kinds (slotted and plain instances, lists, dicts)."""
    out: list[object] = []
    quarter = n // 4
    out.extend(_Slot(None) for _ in range(quarter))
    out.extend(_Plain() for _ in range(quarter))
    out.extend([i] for i in range(quarter))
    out.extend({"k": [i]} for i in range(quarter // 2))  # dict and list both tracked
    return out


def _ticker_gap(action: Callable[[], CensusResult]) -> tuple[float, CensusResult]:
    """Run ``action`` while another thread spins; return that thread's longest stall."""
    stamps: list[float] = []
    stop = threading.Event()

    def spin() -> None:
        now = time.perf_counter
        while not stop.is_set():
            stamps.append(now())

    thread = threading.Thread(target=spin)
    thread.start()
    time.sleep(0.02)
    start = time.perf_counter()
    result = action()
    end = time.perf_counter()
    stop.set()
    thread.join()
    inside = [start] + [s for s in stamps if start <= s <= end] + [end]
    return max(b - a for a, b in itertools.pairwise(inside)), result


def bench_census(quick: bool) -> None:
    print("== census (median of runs; ratios to baselines measured in the same run)")
    sizes = (1_000_000,) if quick else (1_000_000, 5_000_000)
    for size in sizes:
        population = _population(size)
        gc.collect()
        live = len(gc.get_objects())
        runs = 5 if size <= 1_000_000 else 3
        t_get: list[float] = []
        t_counter: list[float] = []
        t_census0: list[float] = []
        t_census: list[float] = []
        holds: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            objs = gc.get_objects()
            t_get.append(time.perf_counter() - start)
            del objs
            start = time.perf_counter()
            counts = Counter(map(type, gc.get_objects()))
            t_counter.append(time.perf_counter() - start)
            del counts
            t_census0.append(take_census(largest=0).duration_s)
            result = take_census(largest=10)
            t_census.append(result.duration_s)
            holds.append(result.max_hold_s)
        get_s = statistics.median(t_get)
        counter_s = statistics.median(t_counter)
        c0 = statistics.median(t_census0)
        c10 = statistics.median(t_census)
        print(f"-- {live / 1e6:.2f}M gc-tracked objects")
        print(f"   gc.get_objects()                    {get_s * 1e3:7.1f} ms")
        print(f"   Counter(map(type, get_objects()))   {counter_s * 1e3:7.1f} ms")
        print(
            f"   take_census(largest=0)              {c0 * 1e3:7.1f} ms"
            f"  = {c0 / get_s:.1f}x get_objects, {c0 / counter_s:.2f}x Counter"
        )
        print(
            f"   take_census(largest=10)             {c10 * 1e3:7.1f} ms"
            f"  = {c10 / get_s:.1f}x get_objects, {c10 / counter_s:.2f}x Counter,"
            f" {c10 / c0:.2f}x largest=0"
        )
        print(
            f"   max_hold_s {statistics.median(holds) * 1e3:.1f} ms median,"
            f" {max(holds) * 1e3:.1f} ms worst (includes the get_objects call)"
        )
        gap, res = _ticker_gap(take_census)
        print(
            f"   with a busy thread: its longest stall {gap * 1e3:.1f} ms,"
            f" census max_hold_s {res.max_hold_s * 1e3:.1f} ms,"
            f" duration {res.duration_s * 1e3:.0f} ms"
        )
        del population, res
        gc.collect()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer/smaller runs")
    parser.add_argument("--only", default="memory,gc,census", help="comma-separated sections")
    args = parser.parse_args()
    sections = set(args.only.split(","))
    started = time.perf_counter()
    if "memory" in sections:
        bench_memory(args.quick)
    if "gc" in sections:
        bench_gc(args.quick)
    if "census" in sections:
        bench_census(args.quick)
    print(f"(total {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
