"""The run budgets: tracing windows and heap summaries spend a share of the time watched, so a
short program never pays for them and a long one pays at most the share."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from memtui.probe.clock import FakeClock
from memtui.probe.collector import CensusBudget, Collector
from memtui.probe.heap.summary import SUMMARY_SHARE, SUSPECT_SHARE, HeapSummaries
from memtui.probe.overhead import MIN_CPU_WEIGHT, RunBudget, cpu_weight
from memtui.probe.watch import (
    SUSPECT_WINDOW_SHARE,
    TRACED_LOSS,
    WINDOW_SHARE,
    TraceController,
)

MEMTUI = Path(sys.executable).with_name("memtui")


def test_a_run_budget_lets_a_use_start_once_the_total_fits_its_share() -> None:
    budget = RunBudget(0.02, started_s=100.0)
    assert budget.earliest_s(0.2) == pytest.approx(110.0)  # 0.2 s is 2% of 10 s
    budget.charge(0.3)
    assert budget.earliest_s(0.2) == pytest.approx(125.0)  # 0.5 s is 2% of 25 s
    assert budget.earliest_s(0.2, share=0.05) == pytest.approx(110.0)
    with pytest.raises(ValueError):
        RunBudget(0.0, 0.0)
    assert MIN_CPU_WEIGHT <= cpu_weight() <= 1.0


def _first_window_at(
    controller: TraceController, clock: FakeClock, until_s: float, suspect_at: float = -1.0
) -> float:
    """Drive the fake clock in 0.5-s steps; the fake time the first window had ended by
    (``suspect_at``: when the leak_suspected() call comes, if ever)."""
    controller.start()
    try:
        while clock.monotonic() < until_s:
            if 0 <= suspect_at <= clock.monotonic():
                controller.leak_suspected()
                suspect_at = -1.0
                time.sleep(0.02)
            clock.advance(0.5)
            deadline = time.monotonic() + 2.0
            time.sleep(0.005)
            while controller.state()["tracing"] and time.monotonic() < deadline:
                time.sleep(0.005)  # a window under way: let it end before time moves on
            if controller.state()["windows"]:
                return clock.monotonic()
    finally:
        controller.stop()
    return float("inf")


def test_the_first_window_waits_for_its_budget(no_tracing: None) -> None:
    asked = FakeClock()
    at = _first_window_at(TraceController("watch", period_s=15.0, clock=asked), asked, 30.0)
    assert at <= 3.0  # an asked-for period: the first window after FIRST_WINDOW_S (2 s)

    budgeted = FakeClock()
    controller = TraceController("watch", clock=budgeted, budget_share=WINDOW_SHARE)
    expected = controller.expected_cost_s()
    assert expected >= controller.window_s * TRACED_LOSS
    at = _first_window_at(controller, budgeted, 60.0)
    # Not before its expected cost fits the share (about 13 s with the defaults): a 3-s
    # program is never traced.
    assert expected / WINDOW_SHARE - 0.5 <= at <= expected / WINDOW_SHARE + 2.0


def test_a_suspected_leak_brings_the_first_window_sooner(no_tracing: None) -> None:
    clock = FakeClock()
    controller = TraceController("watch", clock=clock, budget_share=WINDOW_SHARE)
    expected = controller.expected_cost_s()
    # What the monitor's heap_summary request does when its detector starts to suspect.
    at = _first_window_at(controller, clock, 60.0, suspect_at=1.0)
    # Within the suspect share (about 8 s), not the usual one (about 13 s).
    assert at <= expected / SUSPECT_WINDOW_SHARE + 1.0 < expected / WINDOW_SHARE


def test_windows_stay_within_their_share_of_the_run(no_tracing: None) -> None:
    clock = FakeClock()
    controller = TraceController("watch", period_s=1.0, clock=clock, budget_share=WINDOW_SHARE)
    kept: list[bytes] = []
    stop = threading.Event()

    def allocate() -> None:  # something for the windows to see
        while not stop.is_set():
            kept.append(os.urandom(64))
            time.sleep(0.001)

    worker = threading.Thread(target=allocate, daemon=True)
    worker.start()
    controller.start()
    try:
        while clock.monotonic() < 300.0:
            clock.advance(1.0)
            time.sleep(0.003)
            while controller.state()["tracing"]:
                time.sleep(0.005)
    finally:
        controller.stop()
        stop.set()
        worker.join()
    budget = controller.budget
    assert budget is not None
    windows = controller.state()["windows"]
    # A 1-s period alone would run ~300 windows; the budget allows ~300 s x 2% / 0.22 s.
    assert 5 <= windows <= 60, windows
    assert budget.uses == windows
    assert budget.spent_s <= WINDOW_SHARE * clock.monotonic() + controller.expected_cost_s()


def test_heap_summaries_wait_for_their_budget_and_charge_what_they_cost() -> None:
    summaries = HeapSummaries(first_after_s=0.0)
    assert summaries.budget.started_s < time.monotonic() - 1.0  # pytest's run so far counts
    summaries.budget.started_s = time.monotonic()  # as if this process had just started
    expected = summaries.expected_cost_s()
    assert expected > 0
    started = summaries.budget.started_s
    assert summaries.due_s() == pytest.approx(started + expected / SUMMARY_SHARE, rel=0.2)
    assert summaries.tick() is None and summaries.job is None  # not yet: nothing forked

    summaries.budget.started_s -= 3600.0  # as if watched for an hour: one is due now
    deadline = time.monotonic() + 120.0
    result = None
    while result is None and time.monotonic() < deadline:
        result = summaries.tick()
        time.sleep(0.05)
    assert result is not None and result.get("ok"), summaries.state()
    charged = summaries.budget.spent_s
    assert charged >= result["pause_s"] and summaries.budget.uses == 1
    assert summaries.expected_cost_s() == pytest.approx(charged)
    state = summaries.state()
    assert state["budget_share"] == SUMMARY_SHARE and state["charged_s_total"] > 0


def test_a_three_second_program_pays_for_no_window_and_little_heap_summary(tmp_path: Path) -> None:
    program = tmp_path / "short.py"
    program.write_text(
        "import time\nkept = []\nend = time.monotonic() + 3.0\n"
        "while time.monotonic() < end:\n    kept.append([0] * 10)\n    time.sleep(0.0005)\n"
    )
    report = tmp_path / "r.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTUI_")}
    subprocess.run(
        [str(MEMTUI), "run", "--headless", "--quiet", "--output", str(report), "--",
         sys.executable, str(program)],
        env=env, check=True, timeout=120, capture_output=True,
    )  # fmt: skip
    data = json.loads(report.read_text())
    tracing = data["agent"]["tracing"]
    assert tracing["windows"] == 0 and tracing["budget_share"] == WINDOW_SHARE
    # A heap summary of so small a heap is cheap, and may come when the leak is suspected,
    # within the suspect share of the ~3.5 s watched.
    collection = data["leak_detection"]["heap"]["collection"]
    assert collection["budget_share"] == SUMMARY_SHARE
    assert collection["charged_s_total"] <= SUSPECT_SHARE * 4.0


def test_one_slow_census_does_not_put_off_the_next_ones() -> None:
    """A census slowed once (a loaded machine, a fork, a collection in the program) spaces the
    next by the median of the last costs; censuses that stay costly space them out."""
    burns = iter([0.0, 1.0, 0.0, 0.0, 1.0, 1.0])

    def extra() -> None:
        end = time.thread_time() + next(burns)
        while time.thread_time() < end:
            pass

    collector = Collector(census=CensusBudget(0.01, 0.05, by_cpu=True))
    collector.census_extra = extra
    gaps = []
    for _ in range(6):
        collector.census()
        gaps.append(collector.census_gap_s)
    # (A census here walks the test process's own heap: its usual cost is not small.)
    assert gaps[5] >= 19.9, gaps  # two of the last three costly: 1 s at 5%
    assert max(gaps[:5]) < 0.5 * gaps[5], gaps  # one slow census among the last two or three
