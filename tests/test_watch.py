"""Provides tests of watch mode: the window ranking, and tracemalloc ownership in-process."""

from __future__ import annotations

import collections
import contextlib
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator

import pytest

from memtui.probe.tracing import TraceKey
from memtui.probe.watch import TraceController
from memtui.probe.window_rank import Window, rank_windows, window_sites

LEAK: TraceKey = (("app.py", 10),)
BUFFER: TraceKey = (("app.py", 20),)
CHURN: TraceKey = (("app.py", 30),)


def _window(sites: dict[TraceKey, tuple[int, int, int, int]]) -> Window:
    return Window(t_end=0.0, traced_s=0.25, half_s=0.125, cost_s=0.001, sites=sites)


def test_window_sites_takes_growth_between_mid_and_end() -> None:
    mid = {LEAK: (1000, 10), CHURN: (500, 5)}
    end = {LEAK: (2000, 20), CHURN: (400, 4), BUFFER: (10_000, 1)}
    rows = window_sites(mid, end)
    assert rows[LEAK] == (2000, 20, 1000, 10)
    assert rows[CHURN] == (400, 4, -100, -1)
    assert rows[BUFFER] == (10_000, 1, 10_000, 1)


def test_window_sites_is_bounded() -> None:
    end: dict[TraceKey, tuple[int, int]] = {((f"f{i}.py", i),): (i, 1) for i in range(1000)}
    assert len(window_sites({}, end, keep=50)) == 50


def test_steady_leak_outranks_a_big_temporary_buffer() -> None:
    """A 10 MB buffer alive at random instants swamps one window, never the median."""
    windows = []
    for i in range(9):
        buffer_growth = (10_000_000, -10_000_000, 0)[i % 3]
        windows.append(
            _window(
                {
                    LEAK: (250_000, 250, 125_000, 125),
                    BUFFER: (max(0, buffer_growth), 1, buffer_growth, 0),
                    CHURN: (3_000, 30, (2_000, -2_000, 0)[i % 3], 0),
                }
            )
        )
    ranked = rank_windows(windows)
    assert ranked[0]["frames"] == [["app.py", 10]] and ranked[0]["suspect"]
    # Size is the window figure (what a window saw survive), labelled as such.
    assert ranked[0]["size_bytes"] == 250_000 and ranked[0]["size_kind"] == "window"
    assert ranked[0]["windows"] == 9
    assert ranked[0]["growth_bytes_per_s"] == 1_000_000.0
    assert ranked[0]["rate_mb_per_hour"] == round(1_000_000 * 3600 / 2**20, 4)
    others = {r["line"]: r for r in ranked[1:]}
    assert others[20]["size_bytes"] == 0 and not others[20]["suspect"]
    assert others[20]["rate_mb_per_hour"] == 0 and others[20]["growth_bytes"] == 0
    assert others[30]["size_bytes"] == 3_000 and not others[30]["suspect"]


def test_rank_of_no_windows_is_empty() -> None:
    assert rank_windows([]) == []


@contextlib.contextmanager
def _watching(work: Callable[[], None], stop: threading.Event) -> Iterator[TraceController]:
    """``work`` in a thread of this process (until ``stop``) under a watch-mode controller whose
    windows the test runs itself."""
    thread = threading.Thread(target=work)
    thread.start()
    try:
        controller = TraceController("watch", window_s=0.2, period_s=60.0, first_window_s=60.0)
        controller.start()
        try:
            yield controller
        finally:
            controller.stop()
    finally:
        stop.set()
        thread.join()


def test_a_window_finds_a_leak_in_this_process(no_tracing: None) -> None:
    kept: list[bytearray] = []
    stop = threading.Event()

    def leak() -> None:
        while not stop.is_set():
            kept.append(bytearray(2000))  # the leaking line
            time.sleep(0.0005)

    leak_line = leak.__code__.co_firstlineno + 2
    with _watching(leak, stop) as controller:
        window = controller.run_window()
        assert window is not None and not tracemalloc.is_tracing()
        top = controller.sites()
        assert top and (top[0]["file"], top[0]["line"]) == (__file__, leak_line)
        assert controller.state()["windows"] == 1


@pytest.mark.parametrize("bounded", [False, True], ids=["kept", "deque"])
def test_a_window_measures_what_the_process_keeps(no_tracing: None, bounded: bool) -> None:
    """A list that keeps its items and a full deque(maxlen) both grow in every window; only the
    list's blocks add up in the process (the deque frees its oldest, made before the window)."""
    kept: collections.deque[bytes] = collections.deque(maxlen=20_000 if bounded else None)
    kept.extend(b"%d-x" % i * 4 for i in range(20_000))  # the deque is full before the windows
    stop = threading.Event()

    def fill() -> None:
        i = 0
        while not stop.is_set():
            for _ in range(50):
                kept.append(b"%d-x" % i * 4)  # the line
                i += 1
            time.sleep(0.001)

    with _watching(fill, stop) as controller:
        for _ in range(5):
            assert controller.run_window() is not None
        top = controller.sites()
        assert top and top[0]["growth_blocks_per_s"] > 5000  # the line grows either way
        line_rate = float(top[0]["growth_blocks_per_s"])
        process_rate = controller.state()["process_blocks_per_s"]
        assert isinstance(process_rate, float)
        if bounded:
            assert abs(process_rate) < 0.2 * line_rate, (process_rate, line_rate)
        else:
            assert process_rate > 0.7 * line_rate, (process_rate, line_rate)


def test_program_tracing_is_left_alone(no_tracing: None) -> None:
    tracemalloc.start(3)
    controller = TraceController("watch", first_window_s=60.0)
    controller.start()
    try:
        assert controller.mode == "external" and controller.run_window() is None
        with pytest.raises(ValueError, match="started by the program"):
            controller.set_continuous(True, 1)
        controller.refresh_full()
        assert controller.sites() is not None
    finally:
        controller.stop()
    assert tracemalloc.is_tracing() and tracemalloc.get_traceback_limit() == 3


def test_continuous_on_and_off(no_tracing: None) -> None:
    controller = TraceController("watch", first_window_s=60.0)
    controller.start()
    try:
        controller.set_continuous(True, 2)
        state = controller.state()
        assert state["mode"] == "continuous" and state["frames"] == 2
        assert state["started_by_agent"] and tracemalloc.is_tracing()
        controller.set_continuous(False)
        assert controller.mode == "watch" and not tracemalloc.is_tracing()
        controller.set_continuous(True, 1)
    finally:
        controller.stop()
    assert not tracemalloc.is_tracing()


def test_windows_stop_once_the_leak_budget_is_spent(no_tracing: None) -> None:
    """CPython < 3.13 leaks each window's tracebacks in tracemalloc: windows are budgeted."""
    kept: list[bytearray] = []
    controller = TraceController("watch", window_s=0.05, period_s=60.0, first_window_s=60.0)
    controller.start()
    try:
        controller.leak_budget_bytes = 1  # any window spends it (0 would mean no budget)
        stop = threading.Event()

        def alloc() -> None:
            while not stop.is_set():
                kept.append(bytearray(100))
                time.sleep(0.0005)

        thread = threading.Thread(target=alloc)
        thread.start()
        try:
            assert controller.run_window() is not None
            assert controller.leaked_bytes > 0
            state = controller.state()
            assert "CPython" in state["windows_stopped"] and state["leaked_bytes"] > 0
            assert controller.run_window() is None  # no more windows
            assert controller.sites()  # the ranking of the windows kept stays
            assert not tracemalloc.is_tracing()
        finally:
            stop.set()
            thread.join()
    finally:
        controller.stop()
