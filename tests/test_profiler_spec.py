"""Runs the spec's examples (import path changed, durations compressed) against MemoryProfiler."""

from __future__ import annotations

import asyncio
import gc
import json
from collections.abc import Callable
from typing import Any

import pytest
from conftest import SyntheticMemory

from memtui import MemoryProfiler, analyze_snapshot_growth, validate_consistency
from memtui.errors import HeapDumpError, TracingError, UsageError
from memtui.probe.clock import FakeClock

LEAKED: list[bytes] = []


def leak_step(n: int) -> None:
    for _ in range(n):
        LEAKED.append(bytes(1024))  # THE LEAKING LINE


LEAK_LINE = leak_step.__code__.co_firstlineno + 2


async def run_leaky_system(seconds: float, kib_per_tick: int = 200) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    while loop.time() < end:
        leak_step(kib_per_tick)
        await asyncio.sleep(0.02)


@pytest.fixture(autouse=True)
def _clear_leak() -> Any:
    LEAKED.clear()
    yield
    LEAKED.clear()


SPEC_REPORT_KEYS = {"summary", "leak_detection", "top_allocators", "gc_statistics", "snapshots"}


async def test_basic_profiling_names_the_leaking_line() -> None:
    """Spec 'Basic Memory Profiling': start, run the app, stop, report."""
    profiler = MemoryProfiler(snapshot_interval=0.5, sample_interval=0.05, overhead_budget=1.0)
    await profiler.start()
    await run_leaky_system(3.0)  # ~30 MB of 1 KiB blocks
    await profiler.stop()
    report = profiler.generate_report()

    assert report.keys() >= SPEC_REPORT_KEYS
    assert {"memory_leak_detected", "leak_rate_mb_per_hour", "schema_version"} <= report.keys()
    json.dumps(report, allow_nan=False)
    top = report["top_allocators"][0]
    assert top["file"] == __file__ and top["line"] == LEAK_LINE
    assert top["function"] == "leak_step"
    assert top["size_mb"] > 5 and top["count"] > 5_000  # the work is timed: less when slow
    summary = report["summary"]
    # RSS may grow less than the leak when freed memory of earlier tests is reused.
    assert summary["peak_traced_memory_mb"] > 5
    assert summary["peak_memory_mb"] >= summary["end_memory_mb"]
    assert len(report["snapshots"]) >= 3
    assert report["gc_statistics"]["gen0_collections"] >= 0
    leaking = profiler.get_leaking_tracebacks()
    assert leaking and leaking[0].traceback.frames[0] == (__file__, LEAK_LINE)


async def test_advanced_configuration_applies_and_restores_gc_threshold(tmp_path: Any) -> None:
    """Spec 'Advanced Configuration': every argument accepted; gc thresholds restored on stop."""
    before = gc.get_threshold()
    profiler = MemoryProfiler(
        snapshot_interval=30,
        trace_limit=200,
        alert_threshold_mb=1000,
        growth_threshold_mb_per_hour=10,
        enable_tracemalloc=True,
        tracemalloc_frames=25,
        gc_threshold=(901, 11, 12),
        output_dir=str(tmp_path / "memory_profiles"),
    )
    await profiler.start()
    assert gc.get_threshold() == (901, 11, 12)
    snap = profiler.take_snapshot()
    await profiler.stop()
    assert gc.get_threshold() == before
    assert snap.traces is not None and snap.traces.frames == 25
    report = profiler.generate_report()
    saved = list((tmp_path / "memory_profiles").glob("memory_report_*.json"))
    assert len(saved) == 1 and json.loads(saved[0].read_text()) == report


async def test_seven_day_monitoring_alerts_once_per_episode(
    fake_clock: FakeClock, synthetic: Callable[..., SyntheticMemory]
) -> None:
    """Spec '7-Day Continuous Monitoring', simulated: a leak from day 3 raises one async alert."""
    memory = synthetic(
        base_mb=400, leak_mb_per_hour=20, onset_s=3 * 86400, sawtooth_mb=30, daily_mb=40
    )
    profiler = MemoryProfiler(
        snapshot_interval=300,
        sample_interval=60,
        alert_threshold_mb=2000,
        growth_threshold_mb_per_hour=5,
        clock=fake_clock,
        memory_reader=memory,
    )
    alerts: list[dict[str, Any]] = []

    async def on_leak_detected(leak_info: dict[str, Any]) -> None:
        alerts.append(leak_info)

    profiler.on_leak_detected = on_leak_detected
    await profiler.monitor_continuous(days=7)
    report = profiler.generate_report()
    assert report["summary"]["duration_hours"] == pytest.approx(168, abs=0.1)
    assert report["leak_detection"]["leak_detected"] is True
    assert report["leak_rate_mb_per_hour"] == pytest.approx(20, rel=0.25)
    assert len(alerts) == 1
    assert alerts[0]["at_seconds"] > 3 * 86400
    assert len(report["snapshots"]) <= 500
    json.dumps(report, allow_nan=False)


async def test_stable_service_passes_the_ci_check(
    fake_clock: FakeClock, synthetic: Callable[..., SyntheticMemory]
) -> None:
    """Spec 'Automated Leak Detection': a stable service does not fail the CI assertion."""
    memory = synthetic(base_mb=250, sawtooth_mb=20, sawtooth_period_s=120)
    profiler = MemoryProfiler(
        growth_threshold_mb_per_hour=1, clock=fake_clock, memory_reader=memory, sample_interval=5
    )
    await profiler.monitor_continuous(hours=1)
    report = profiler.generate_report()
    assert not report["leak_detection"]["leak_detected"], report["leak_detection"]
    assert not profiler.confirm_memory_leak(confidence=0.95)


async def test_baseline_and_growth_pattern(
    fake_clock: FakeClock, synthetic: Callable[..., SyntheticMemory]
) -> None:
    """Spec 'Baseline Establishment' and 'Growth Pattern Analysis'."""
    memory = synthetic(base_mb=100, leak_mb_per_hour=50)
    profiler = MemoryProfiler(
        clock=fake_clock, memory_reader=memory, sample_interval=10, snapshot_interval=600
    )
    baseline = await profiler.create_baseline(duration_hours=0.5)
    assert baseline["average_mb"] == pytest.approx(100 + 50 * 0.25, abs=1.0)
    await profiler.monitor_continuous(hours=6)
    growth = profiler.analyze_growth_pattern()
    assert growth["rate_mb_per_hour"] == pytest.approx(50, rel=0.1)
    assert growth["r_squared"] > 0.9
    assert growth["projected_24h_mb"] > growth["current_mb"]
    assert growth["is_leak"] and 0.0 <= growth["confidence"] <= 1.0
    assert profiler.confirm_memory_leak(confidence=0.5)


class OrderBook:
    pass


async def test_object_tracking_counts_exact_types() -> None:
    """Spec 'Object Tracking'."""
    profiler = MemoryProfiler()
    profiler.track_object_type(dict)
    profiler.track_object_type(list)
    profiler.track_object_type(OrderBook)
    books = [OrderBook() for _ in range(1234)]
    stats = profiler.get_object_stats()
    assert stats[OrderBook] == 1234
    assert stats[list] > 0 and dict in stats
    counts = profiler.get_object_counts()
    assert counts[f"{__name__}.OrderBook"] == 1234
    del books
    with pytest.raises(UsageError):
        profiler.track_object_type("dict")  # type: ignore[arg-type]


async def test_snapshot_analysis_and_troubleshooting() -> None:
    """Spec 'Memory Snapshot Analysis' and 'Troubleshooting'."""
    # Snapshots are taken explicitly (a loaded machine may space timed ones out).
    profiler = MemoryProfiler(snapshot_interval=3600, sample_interval=0.05)
    await profiler.start()
    try:
        snapshot1 = profiler.take_snapshot()
        await run_leaky_system(1.5, kib_per_tick=400)
        snapshot2 = profiler.take_snapshot()
        top_stats = snapshot2.get_top_stats(limit=10)
        assert top_stats[0].traceback.frames[0] == (__file__, LEAK_LINE)
        assert str(top_stats[0].traceback).endswith("in leak_step")
        diff = snapshot2.compare_to(snapshot1, "lineno")
        assert diff[0].size_diff > 10 * 1024 * 1024 and diff[0].count_diff > 10_000
        consumers = profiler.get_top_memory_consumers(10)
        assert consumers[0].size_mb > 10 and f"{LEAK_LINE} in leak_step" in consumers[0].location
        obj_counts = profiler.get_object_counts()
        assert obj_counts["list"] > 0
        for _ in range(3):
            await run_leaky_system(0.5, kib_per_tick=400)
            snapshot3 = profiler.take_snapshot()
        patterns = profiler.analyze_allocation_patterns()
        assert any(
            p["kind"] == "growing_allocation_site" and f":{LEAK_LINE} " in p["location"]
            for p in patterns["suspicious"]
        ), patterns
    finally:
        await profiler.stop()
    growth = analyze_snapshot_growth([snapshot1, snapshot2, snapshot3])
    # Traced memory, not RSS: this long-lived test process may reuse memory freed earlier.
    assert growth["traced_rate_mb_per_hour"] > 0


async def test_incremental_profiling_sees_a_change() -> None:
    """Spec 'Incremental Profiling': current_memory_mb moves with real allocations."""
    profiler = MemoryProfiler(enable_tracemalloc=False)
    before = profiler.current_memory_mb
    blob = bytearray(64 * 1024 * 1024)
    blob[::4096] = b"x" * len(blob[::4096])  # touch every page so it is resident
    after = profiler.current_memory_mb
    assert after - before > 50
    del blob


async def test_multiple_runs_are_compared(
    fake_clock: FakeClock, synthetic: Callable[..., SyntheticMemory]
) -> None:
    """Spec 'Multiple Profiling Runs'."""
    results = []
    for _ in range(3):
        profiler = MemoryProfiler(
            clock=fake_clock, memory_reader=synthetic(base_mb=200), sample_interval=30
        )
        await profiler.monitor_continuous(hours=1)
        results.append(profiler.generate_report())
    check = validate_consistency(results)
    assert check["consistent"] and check["runs"] == 3


async def test_state_errors_and_heap_dumps_say_so() -> None:
    profiler = MemoryProfiler(enable_tracemalloc=False)
    with pytest.raises(TracingError, match="not running"):
        await profiler.stop()
    await profiler.start()
    with pytest.raises(TracingError, match="already running"):
        await profiler.start()
    await profiler.stop()
    assert profiler.latest_heap_dump is None
    with pytest.raises(HeapDumpError, match="cannot read"):
        await profiler.analyze_heap_dump("x.dump")


@pytest.mark.parametrize(
    "kwargs",
    [
        pytest.param({"snapshot_interval": 0}, id="zero-interval"),
        pytest.param({"trace_limit": 0}, id="zero-trace-limit"),
        pytest.param({"growth_threshold_mb_per_hour": -1}, id="negative-growth"),
        pytest.param({"gc_threshold": (1, 2, 3, 4)}, id="gc-threshold-too-long"),
    ],
)
def test_bad_arguments_are_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        MemoryProfiler(**kwargs)
