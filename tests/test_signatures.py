"""Provides tests of SignatureTracker on real leaking programs and on synthetic series."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from memtui.engine.culprits.signatures import (
    SERIES_LEN,
    SignatureTracker,
    Suspect,
    consistent_growth,
)
from memtui.probe.signals import LeakSignals

LEAKERS = Path(__file__).resolve().parent / "leakers"
PROGRAMS: dict[str, list[str]] = {
    "list": ["leaker_list.py"],
    "handlers": ["leaker_handlers.py"],
    "lru": ["leaker_lru.py"],
    "cycles": ["leaker_cycles.py"],
    "saveall": ["leaker_cycles.py", "--saveall"],
    "threads": ["leaker_threads.py"],
    "stable": ["stable.py"],
}


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict[str, Any]]]:
    """Every program's JSON lines; the programs run side by side (~3 s in all)."""
    procs = {
        name: subprocess.Popen(
            [sys.executable, *args],
            cwd=LEAKERS,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, args in PROGRAMS.items()
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{name}: {stderr}"
        out[name] = [json.loads(line) for line in stdout.splitlines() if line.strip()]
    return out


def _suspects(lines: list[dict[str, Any]]) -> list[Suspect]:
    tracker = SignatureTracker()
    for rec in lines:
        if "collect" in rec:
            c = rec["collect"]
            tracker.observe_collect(rec["t"], c["freed"], None, c["before"], c["after"])
        else:
            tracker.observe_dicts(rec["t"], rec["signals"], rec.get("census"), rec.get("gc"))
    return tracker.suspects()


def _kinds(suspects: list[Suspect]) -> dict[str, list[Suspect]]:
    found: dict[str, list[Suspect]] = {}
    for s in suspects:
        found.setdefault(s.kind, []).append(s)
    return found


def test_programs_ran_long_enough(records: dict[str, list[dict[str, Any]]]) -> None:
    for name, lines in records.items():
        assert len(lines) >= 8, name


def test_unbounded_module_list_is_named(records: dict[str, list[dict[str, Any]]]) -> None:
    suspects = _suspects(records["list"])
    top = suspects[0]
    assert (top.kind, top.name) == ("unbounded_collection", "leaker_list.ORDERS")
    assert top.last > top.first > 0 and top.per_hour > 0
    assert "list `leaker_list.ORDERS` grew" in top.detail and "mostly dict" in top.detail
    names = {s.name for s in suspects}
    assert "leaker_list.ORDERS" in names
    assert not [s for s in suspects if s.kind not in ("unbounded_collection", "growing_type")]


def test_event_listeners_and_logging_handlers(records: dict[str, list[dict[str, Any]]]) -> None:
    kinds = _kinds(_suspects(records["handlers"]))
    listeners = kinds["event_listeners"]
    assert [s.name for s in listeners] == ["leaker_handlers.EVENT_BUS.handlers"]
    assert "100% bound methods" in listeners[0].detail
    assert "unbounded_collection" not in kinds
    assert "leaker.requests" in {s.name for s in kinds["logging_handlers"]}


def test_unbounded_lru_cache_named_bounded_one_not(
    records: dict[str, list[dict[str, Any]]],
) -> None:
    kinds = _kinds(_suspects(records["lru"]))
    assert [s.name for s in kinds["lru_cache"]] == ["leaker_lru.price"]
    assert "unbounded lru_cache `leaker_lru.price`" in kinds["lru_cache"][0].detail


def test_cycles_with_gc_disabled(records: dict[str, list[dict[str, Any]]]) -> None:
    suspects = _suspects(records["cycles"])
    kinds = _kinds(suspects)
    cycles = kinds["reference_cycles"]
    names = {s.name for s in cycles}
    assert {"gc.collect()", "gc disabled: objects awaiting collection"} <= names
    collect = next(s for s in cycles if s.name == "gc.collect()")
    assert "Node" in collect.detail
    assert any(s.name.endswith(".Node") for s in kinds["growing_type"])


def test_cycles_saved_as_uncollectable_garbage(records: dict[str, list[dict[str, Any]]]) -> None:
    kinds = _kinds(_suspects(records["saveall"]))
    assert "gc.garbage" in {s.name for s in kinds["uncollectable"]}
    assert "reference_cycles" in kinds  # collections keep freeing thousands of cyclic objects


def test_thread_leak_names_the_group(records: dict[str, list[dict[str, Any]]]) -> None:
    kinds = _kinds(_suspects(records["threads"]))
    threads = kinds["threads"]
    assert threads[0].name == "worker-N"
    assert "mostly `worker-N`" in threads[0].detail


def test_stable_program_with_big_cache_has_no_suspect(
    records: dict[str, list[dict[str, Any]]],
) -> None:
    assert _suspects(records["stable"]) == []


def test_signals_round_trip_from_real_program(records: dict[str, list[dict[str, Any]]]) -> None:
    raw = records["stable"][-1]["signals"]
    signals = LeakSignals.from_dict(raw)
    assert json.loads(json.dumps(signals.to_dict())) == json.loads(json.dumps(raw))
    assert signals.containers[0].name == "stable.CACHE"
    assert dict(signals.thread_groups)["pool-N"] == 4


# ----------------------------------------------------------------- synthetic series
def _series(values: Sequence[float], dt: float = 60.0) -> list[tuple[float, float]]:
    return [(i * dt, v) for i, v in enumerate(values)]


def test_one_time_fill_then_flat_is_not_growth() -> None:
    assert consistent_growth(_series([0] + [50_000] * 30), 100) is None
    fill = [i * 10_000 for i in range(6)] + [50_000] * 12
    assert consistent_growth(_series(fill), 100) is None


def test_warm_up_levelling_off_is_not_growth() -> None:
    approach = [50_000 * (1 - 0.6**i) for i in range(20)]
    assert consistent_growth(_series(approach), 100) is None


def test_linear_and_staircase_growth_are_found() -> None:
    g = consistent_growth(_series([1000 + 10 * i for i in range(20)]), 100)
    assert g is not None and g.per_hour == pytest.approx(600.0) and g.r2 > 0.99
    stairs = [1000 + 500 * (i // 3) for i in range(24)]
    assert consistent_growth(_series(stairs), 100) is not None


def test_single_jump_is_not_growth() -> None:
    assert consistent_growth(_series([100] * 10 + [9000] * 10), 100) is None


def test_leak_starting_late_is_found_in_later_half() -> None:
    values = [5000.0] * 20 + [5000.0 + 300 * i for i in range(20)]
    assert consistent_growth(_series(values), 100) is not None


def test_memory_is_bounded_over_a_long_run() -> None:
    tracker = SignatureTracker(max_series=50)
    for i in range(5000):
        signals = LeakSignals(
            taken_at=float(i),
            duration_s=0.0,
            thread_groups=((f"job-{i % 200}-", 1),),  # ever new names
            threads=3,
        )
        tracker.observe(i * 10.0, signals)
    assert len(tracker) <= 50
    assert all(len(s.points) <= SERIES_LEN for s in tracker._series.values())
    assert tracker.suspects() == []


def test_repeated_signals_reading_is_ignored() -> None:
    tracker = SignatureTracker()
    signals = LeakSignals(taken_at=1.0, duration_s=0.0, threads=5)
    for i in range(20):
        tracker.observe(float(i), signals)
    assert len(tracker._series[("threads", "")].points) == 1


def test_unnamed_growing_container_from_census() -> None:
    from memtui.probe.census import CensusResult, ContainerInfo

    tracker = SignatureTracker()
    for i in range(12):
        census = CensusResult(
            counts={"dict": 500 + i},
            total_objects=10_000,
            duration_s=0.01,
            max_hold_s=0.01,
            largest_containers=(ContainerInfo("list", 1000 + 800 * i, 0xABC),),
        )
        tracker.observe(i * 30.0, LeakSignals(taken_at=float(i), duration_s=0.0), census)
    (suspect,) = [s for s in tracker.suspects() if s.kind == "unbounded_collection"]
    assert suspect.name == "list at 0xabc"
    assert "no module-level name" in suspect.detail
    assert suspect.per_hour == pytest.approx(800 * 120)
