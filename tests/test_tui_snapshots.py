"""SVG snapshot tests of the monitor at 160x45 and 80x24 (fixed frames, frozen clock)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import pytest
from fake_source import FakeSource, demo_frames
from textual.pilot import Pilot
from textual.worker import WorkerFailed

from memtui.tui.app import MemtuiApp

WIDE = (160, 45)
NARROW = (80, 24)

Compare = Callable[..., bool]


def monitor(**frame_kwargs: Any) -> MemtuiApp:
    """The app on one fixed demo frame; no timer fires during a snapshot, times are frozen."""
    frames = demo_frames(1, start_s=3 * 3600.0, **frame_kwargs)
    return MemtuiApp(
        FakeSource(frames),
        refresh_s=3600.0,
        wall_clock=lambda: 0.0,
        clock_format=lambda _: "12:00:00",
    )


async def first_frame(pilot: Pilot[Any]) -> None:
    with contextlib.suppress(WorkerFailed):
        await pilot.app.workers.wait_for_complete()
    await pilot.pause()
    # No cursor blink in the filter input, whatever has focus.
    for widget in pilot.app.query("Input"):
        widget.cursor_blink = False  # type: ignore[attr-defined]
    await pilot.pause()


@pytest.mark.parametrize(
    "size", [pytest.param(WIDE, id="160x45"), pytest.param(NARROW, id="80x24")]
)
def test_monitor(snap_compare: Compare, size: tuple[int, int]) -> None:
    """Every pane side by side when wide; tabs and the memory chart at 80x24."""
    assert snap_compare(monitor(), terminal_size=size, run_before=first_frame)


def test_allocators_tab_at_80x24(snap_compare: Compare) -> None:
    """At 80x24 `n` `n` reaches the allocators pane: cursor, sort arrow, footer."""
    assert snap_compare(monitor(), press=["n", "n"], terminal_size=NARROW, run_before=first_frame)


def test_filter_and_sort_at_160x45(snap_compare: Compare) -> None:
    """`/` filter "app/" then enter; `o` sorts by count."""
    assert snap_compare(
        monitor(),
        press=["slash", *"app/", "enter", "o"],
        terminal_size=WIDE,
        run_before=first_frame,
    )


def test_traceback_screen(snap_compare: Compare) -> None:
    """Enter on the top allocator opens its traceback."""
    assert snap_compare(monitor(), press=["enter"], terminal_size=WIDE, run_before=first_frame)


def test_help_at_80x24(snap_compare: Compare) -> None:
    """`?` lists every binding, even at 80x24."""
    assert snap_compare(
        monitor(), press=["question_mark"], terminal_size=NARROW, run_before=first_frame
    )


def test_paused(snap_compare: Compare) -> None:
    """`p` pauses: the status says so and Resume replaces Pause in the footer."""
    assert snap_compare(monitor(), press=["p"], terminal_size=NARROW, run_before=first_frame)


def test_outside_only_source(snap_compare: Compare) -> None:
    """No agent: the header says why; panes say what is missing; agent keys are hidden."""
    assert snap_compare(monitor(kind="outside"), terminal_size=WIDE, run_before=first_frame)


def test_target_exited(snap_compare: Compare) -> None:
    """The target exited: status, exit code and time; the commands that need it are hidden."""
    app = monitor()
    app.source.exit(code=1)  # type: ignore[attr-defined]
    assert snap_compare(app, terminal_size=WIDE, run_before=first_frame)


def test_leak_tab_at_80x24(snap_compare: Compare) -> None:
    """At 80x24 `n` reaches the verdict: the reason and the suspects by path."""
    assert snap_compare(monitor(), press=["n"], terminal_size=NARROW, run_before=first_frame)


def test_suspect_detail(snap_compare: Compare) -> None:
    """Enter on the top suspect: path, what it holds, growth chart, sample items."""
    assert snap_compare(monitor(), press=["enter"], terminal_size=WIDE, run_before=focus_suspects)


def test_marker_prompt(snap_compare: Compare) -> None:
    """`m` asks for a label."""
    assert snap_compare(
        monitor(), press=["m", *"deploy 42"], terminal_size=NARROW, run_before=first_frame
    )


async def focus_suspects(pilot: Pilot[Any]) -> None:
    await first_frame(pilot)
    pilot.app.query_one("#suspects").focus()
