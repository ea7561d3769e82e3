"""Pilot tests of the live monitor, driven by FakeSource; unit tests of its formatters."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from typing import Any

import pytest
from fake_source import MIB, FakeSource, demo_frames
from textual.widgets import Input
from textual.worker import WorkerFailed

from memtui.engine.monitor.frame import CommandResult, SeriesPoint
from memtui.tui.app import MemtuiApp, MonitorOutcome, save_report
from memtui.tui.messages import CommandFinished, FrameReceived
from memtui.tui.screens.help_screen import HelpScreen
from memtui.tui.screens.quit_screen import QuitScreen
from memtui.tui.screens.traceback_screen import TracebackScreen
from memtui.tui.units import (
    format_bytes,
    format_bytes_delta,
    format_count,
    format_count_delta,
    format_count_rate,
    format_duration,
    format_elapsed_tick,
    format_percent,
    format_rate_mib_per_hour,
    format_uptime,
)
from memtui.tui.widgets.allocators_table import AllocatorsTable
from memtui.tui.widgets.gc_panel import GcPanel
from memtui.tui.widgets.header_bar import HeaderBar
from memtui.tui.widgets.leak_panel import LeakPanel
from memtui.tui.widgets.object_counts import ObjectCounts
from memtui.tui.widgets.rss_chart import RssChart, chart_view

WIDE = (160, 45)
NARROW = (80, 24)


# -- formatters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        pytest.param(0, "0 B", id="zero"),
        pytest.param(1023, "1023 B", id="bytes"),
        pytest.param(1536, "1.5 KiB", id="kib"),
        pytest.param(1024 * 1024 - 1, "1 MiB", id="rounds-up-a-unit"),
        pytest.param(123.456 * MIB, "123.5 MiB", id="4-significant-digits"),
        pytest.param(1.5 * 1024 * MIB, "1.5 GiB", id="gib"),
        pytest.param(-2048, "-2 KiB", id="negative"),
        pytest.param(None, "-", id="missing"),
    ],
)
def test_format_bytes(value: float | None, text: str) -> None:
    assert format_bytes(value) == text


def test_signed_and_rate_formats() -> None:
    assert format_bytes_delta(3 * MIB) == "+3 MiB"
    assert format_bytes_delta(0) == "0 B"
    assert format_rate_mib_per_hour(12.345) == "+12.35 MiB/h"
    assert format_rate_mib_per_hour(None) == "-"
    assert format_count(1234567) == "1,234,567"
    assert format_count_delta(-5) == "-5"
    assert format_count_delta(52000.0) == "+52,000"
    # Rates fit the object table's 11-cell column: the demo's dicts grow ~5.8M/h.
    assert format_count_rate(52000.0) == "+52,000/h"
    assert format_count_rate(5_847_318) == "+5.85M/h"
    assert format_count_rate(-585_318) == "-585.3k/h"
    assert format_count_rate(None) == "-"
    assert all(len(format_count_rate(10.0**k)) <= 11 for k in range(13))
    assert format_percent(0.94) == "94%"
    assert format_percent(0.005) == "0.5%"


@pytest.mark.parametrize(
    ("seconds", "duration", "uptime", "tick"),
    [
        pytest.param(42, "42 s", "42s", "42s", id="seconds"),
        pytest.param(307, "5 min", "5m 07s", "5m07", id="minutes"),
        pytest.param(3723, "62 min", "1h 02m 03s", "1h02", id="hours"),
        pytest.param(3 * 86400 + 4 * 3600, "3.2 d", "3d 04h 00m", "3d04h", id="days"),
    ],
)
def test_time_formats(seconds: float, duration: str, uptime: str, tick: str) -> None:
    assert format_duration(seconds) == duration
    assert format_uptime(seconds) == uptime
    assert format_elapsed_tick(seconds) == tick


# -- helpers ---------------------------------------------------------------------------------


def make_app(source: FakeSource, **kwargs: Any) -> MemtuiApp:
    kwargs.setdefault("refresh_s", 3600.0)  # tests poll by hand unless they say otherwise
    return MemtuiApp(source, clock_format=lambda _: "12:00:00", wall_clock=lambda: 0.0, **kwargs)


class Notes(list[tuple[str, str]]):
    """Records (severity, message) of every notification."""

    def __init__(self, app: MemtuiApp) -> None:
        super().__init__()
        real = app.notify

        def notify(message: str, **kwargs: Any) -> None:
            self.append((kwargs.get("severity", "information"), message))
            real(message, **kwargs)

        app.notify = notify  # type: ignore[method-assign]


async def settle(app: MemtuiApp, pilot: Any) -> None:
    with contextlib.suppress(WorkerFailed):  # failures are the app's to report, not ours
        await app.workers.wait_for_complete()
    await pilot.pause()


async def poll_once(app: MemtuiApp, pilot: Any) -> None:
    app._tick()
    await settle(app, pilot)


# -- panes -----------------------------------------------------------------------------------


async def test_first_frame_fills_every_pane() -> None:
    source = FakeSource(demo_frames(1, start_s=3 * 3600.0))
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        header = app.query_one(HeaderBar)
        assert header.status == "LIVE"
        rendered = str(header.render())
        assert "pid 4242" in rendered and "Python 3.11.7" in rendered and "agent" in rendered
        assert "every 1 s" in rendered and "LEAK" in rendered
        assert len(app.query_one(AllocatorsTable).shown_rows) == 10
        assert app.query_one(ObjectCounts).shown_rows[0].type_name == "dict"
        assert app.query_one(GcPanel).gc is not None
        assert app.query_one(LeakPanel).has_class("-leak")
        chart = app.query_one(RssChart)
        assert chart.view is not None and chart.view.trend is not None
        assert chart.view.threshold == 512.0 and chart.view.unit == "MiB"
        assert [name for name, _, _ in chart.view.lines] == ["RSS", "USS", "traced"]
        assert app.first_frame_at is not None


async def test_alert_line_far_above_the_data_is_named_in_the_title() -> None:
    app = make_app(FakeSource(demo_frames(1, start_s=600.0)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        chart = app.query_one(RssChart)
        assert chart.view is not None and chart.view.threshold is None
        assert "alert at 512 MiB (off scale)" in str(chart.border_title)


async def test_outside_only_source_says_what_is_missing_and_hides_agent_keys() -> None:
    source = FakeSource(demo_frames(1, kind="outside"))
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        assert "not a CPython process" in str(app.query_one(HeaderBar).render())
        assert app.query_one("#allocators-pane").has_class("-unavailable")
        assert "Not available" in str(app.query_one(GcPanel).render())
        active = set(app.active_bindings)
        assert {"d", "s", "b", "g", "t"}.isdisjoint(active)
        assert {"e", "q", "p"} <= active


async def test_a_newer_frame_replaces_a_queued_one() -> None:
    old, new = (FrameReceived(f) for f in demo_frames(2))
    assert new.can_replace(old)
    assert not new.can_replace(CommandFinished("x", CommandResult(True, "")))


async def test_unchanged_frame_does_not_redraw_the_chart() -> None:
    source = FakeSource(demo_frames(1))
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        chart = app.query_one(RssChart)
        before = chart.redraws
        await poll_once(app, pilot)
        await poll_once(app, pilot)
        assert source.polls == 3
        assert chart.redraws == before


def test_chart_view_is_stable_for_a_sub_pixel_change() -> None:
    (a,) = demo_frames(1, start_s=86400.0 + 500.0)
    last = a.series[-1]
    grown = SeriesPoint(last.t_s + 1.0, last.rss_bytes + 1024, last.uss_bytes, last.traced_bytes)
    b = dataclasses.replace(a, series=(*a.series, grown))
    assert chart_view(a, None, 100, 20) == chart_view(b, None, 100, 20)
    assert chart_view(a, 300.0, 100, 20) != chart_view(a, None, 100, 20)


# -- tables ----------------------------------------------------------------------------------


async def test_sorting_cycles_and_reverses_and_keeps_the_cursor_row() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        table = app.query_one(AllocatorsTable)
        sizes = [r.size_bytes for r in table.shown_rows]
        assert sizes == sorted(sizes, reverse=True)
        await pilot.press("down", "down")
        under_cursor = table.cursor_item
        await pilot.press("o")  # size -> growth
        assert table.sort_key == "growth"
        growth = [r.growth_bytes for r in table.shown_rows]
        assert growth == sorted(growth, reverse=True)
        assert table.cursor_item == under_cursor
        await pilot.press("O")  # smallest first
        assert [r.growth_bytes for r in table.shown_rows] == sorted(growth)
        await pilot.press("o")  # growth -> rate (largest first again)
        assert table.shown_rows[0].growth_mb_per_hour == 40.0
        await pilot.press("o")  # rate -> count
        counts = [r.count for r in table.shown_rows]
        assert counts == sorted(counts, reverse=True)


async def test_enter_opens_the_traceback_and_esc_closes_it() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("down", "enter")
        assert isinstance(app.screen, TracebackScreen)
        assert app.screen.row.file == "app/audit.py"
        text = str(app.screen.query_one("#traceback-text").render())
        assert "app/handlers.py:41 in handle_request" in text
        await pilot.press("escape")
        assert not isinstance(app.screen, TracebackScreen)
        assert app.is_running


async def test_slash_filters_by_file_or_function_and_esc_clears() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        table = app.query_one(AllocatorsTable)
        await pilot.press("slash")
        assert app.focused is app.query_one("#filter", Input)
        await pilot.press(*"audit")
        assert [r.function for r in table.shown_rows] == ["record_event"]
        await pilot.press("enter")
        assert app.focused is table
        await poll_once(app, pilot)  # a new frame keeps the filter
        assert len(table.shown_rows) == 1
        await pilot.press("slash")
        await pilot.press("ctrl+a")  # select all (harmless), then clear with esc
        await pilot.press("escape")
        assert len(table.shown_rows) == 10
        assert app.is_running
        await pilot.press("slash", *"fetch_rows", "enter")
        assert [r.file for r in table.shown_rows] == ["app/db.py"]


async def test_object_counts_show_delta_rate_and_tracked() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ObjectCounts)
        assert table.get_row_at(0)[0].plain == "dict"
        assert table.get_row_at(0)[-1].plain == "LEAK, tracked"
        assert table.get_row_at(0)[2].plain.startswith("+")


# -- keys ------------------------------------------------------------------------------------


async def test_pause_stops_polling_and_resume_restarts_it() -> None:
    source = FakeSource(demo_frames(3))
    app = make_app(source, refresh_s=0.05)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.2)
        assert source.polls >= 2
        await pilot.press("p")
        assert app.paused and app.query_one(HeaderBar).status == "PAUSED at 12:00:00"
        await settle(app, pilot)
        polls = source.polls
        await pilot.pause(0.3)
        assert source.polls == polls
        assert "p" in app.active_bindings and app.active_bindings["p"].binding.action == "resume"
        await pilot.press("space")
        await pilot.pause(0.2)
        assert not app.paused and source.polls > polls
        assert app.query_one(HeaderBar).status == "LIVE"


async def test_number_keys_change_the_chart_window() -> None:
    app = make_app(FakeSource(demo_frames(1, start_s=2 * 86400.0)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        chart = app.query_one(RssChart)
        spans = {}
        for key in "1234":
            await pilot.press(key)
            assert chart.view is not None
            lo, hi = chart.view.x_lim
            spans[key] = hi - lo
        assert spans["1"] == 300 and spans["2"] == 3600 and spans["3"] == 86400
        assert spans["4"] >= 86400
        assert "5 min" not in str(chart.border_title)


@pytest.mark.parametrize(
    ("key", "method"),
    [
        pytest.param("d", "dump_heap", id="dump"),
        pytest.param("e", "export_report", id="export"),
        pytest.param("s", "take_snapshot", id="snapshot"),
        pytest.param("b", "set_baseline", id="baseline"),
        pytest.param("g", "collect_garbage", id="gc"),
        pytest.param("t", "set_tracing", id="tracing"),
    ],
)
async def test_command_keys_call_the_source_and_notify(
    key: str, method: str, tmp_path: Any
) -> None:
    source = FakeSource(demo_frames(1))
    app = make_app(source, out_dir=str(tmp_path))
    notes = Notes(app)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press(key)
        await settle(app, pilot)
        assert source.commands == [method]
        assert notes and notes[-1][0] == "information"
    if method == "export_report":
        assert app.last_report_path == str(tmp_path / "memtui-report-4242.json")
        assert str(tmp_path) in notes[-1][1]


async def test_failed_and_crashing_commands_notify_errors_and_the_app_keeps_running() -> None:
    source = FakeSource(demo_frames(1), fail=["dump_heap"])
    app = make_app(source)
    notes = Notes(app)

    def boom() -> CommandResult:
        raise ConnectionResetError("agent went away")

    source.take_snapshot = boom  # type: ignore[method-assign]
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("d")
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        errors = [m for sev, m in notes if sev == "error"]
        assert any("dump_heap failed" in m for m in errors)
        assert any("agent went away" in m for m in errors)
        assert app.is_running and app.query_one(HeaderBar).busy == ""


async def test_slow_dump_runs_in_a_worker_and_hides_d_meanwhile() -> None:
    source = FakeSource(demo_frames(1), command_delay_s=0.4)
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("d")
        await pilot.pause()
        assert app.dumping and "d" not in app.active_bindings
        assert "heap dump" in app.query_one(HeaderBar).busy
        await pilot.press("p")  # the UI still answers while the dump runs
        assert app.paused
        await settle(app, pilot)
        assert not app.dumping and "d" in app.active_bindings


async def test_target_exit_freezes_panes_and_export_still_works(tmp_path: Any) -> None:
    source = FakeSource(demo_frames(3), command_delay_s=0.0)
    app = make_app(source, out_dir=str(tmp_path), refresh_s=0.05)
    async with app.run_test(size=WIDE) as pilot:
        await pilot.pause(0.15)
        source.exit(code=3, at=1_700_000_000.0)
        await pilot.pause(0.2)
        await settle(app, pilot)
        header = app.query_one(HeaderBar)
        assert header.status == "TARGET EXITED at 12:00:00 (exit code 3)"
        assert header.has_class("-exited") and app.state == "exited"
        polls = source.polls
        await pilot.pause(0.3)
        assert source.polls == polls  # polling stopped, the clock stopped
        assert {"d", "s", "b", "g", "t", "p"}.isdisjoint(app.active_bindings)
        await pilot.press("e")
        await settle(app, pilot)
        assert source.commands == ["export_report"]
        assert (tmp_path / "memtui-report-4242.json").exists()


async def test_unreachable_source_shows_disconnected_not_a_crash() -> None:
    source = FakeSource(demo_frames(1), fail=["poll"])
    app = make_app(source)
    notes = Notes(app)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        assert app.state == "disconnected"
        assert app.query_one(HeaderBar).status.startswith("DISCONNECTED: agent socket closed")
        await poll_once(app, pilot)
        assert [sev for sev, _ in notes] == ["error"]  # told once, not every second
        source.fail.clear()
        await poll_once(app, pilot)
        assert app.state == "live" and app.query_one(HeaderBar).status == "LIVE"


async def test_help_lists_every_binding() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=NARROW) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = " ".join(k for k, _ in app.screen.rows)
        for key in ["q", "?", "F1", "p", "space", "d", "e", "s", "b", "g", "t", "/", "n"]:
            assert key in keys.split(", ") or key in keys
        for key in "1234":
            assert key in keys
        assert "enter" in keys and "o, O" in keys and "escape" in keys
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("f1")
        assert isinstance(app.screen, HelpScreen)


async def test_escape_never_quits() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("escape", "escape")
        assert app.is_running


async def test_q_on_an_attached_target_quits_at_once() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
    assert app.return_value is not None and app.return_value.stop_target is False
    assert app.return_value.summary.startswith("pid 4242: LEAK at +40 MiB/h")


@pytest.mark.parametrize(
    ("answer", "stop"),
    [
        pytest.param("y", True, id="yes-stops"),
        pytest.param("n", False, id="no-leaves-running"),
        pytest.param("enter", False, id="enter-is-no"),
    ],
)
async def test_q_on_a_launched_target_asks_y_n(answer: str, stop: bool) -> None:
    app = make_app(FakeSource(demo_frames(1)), launched=True)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("q")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press(answer)
        await pilot.pause()
    assert app.return_value is not None and app.return_value.stop_target is stop


async def test_escape_cancels_the_quit_question() -> None:
    app = make_app(FakeSource(demo_frames(1)), launched=True)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+c")
        assert isinstance(app.screen, QuitScreen)
        await pilot.press("escape")
        assert not isinstance(app.screen, QuitScreen) and app.is_running


def test_save_report_adds_the_absolute_path_or_the_reason(tmp_path: Any) -> None:
    outcome = MonitorOutcome(report_path=None, summary="pid 4242: LEAK", stop_target=False)
    saved = save_report(outcome, FakeSource(demo_frames(1)), str(tmp_path))
    assert saved.report_path == str((tmp_path / "memtui-report-4242.json").resolve())
    failed = save_report(outcome, FakeSource(demo_frames(1), fail=["export_report"]), ".")
    assert failed.report_path is None and "report not saved" in failed.summary


# -- layout ----------------------------------------------------------------------------------


async def test_resize_to_80x24_keeps_every_pane_reachable() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        assert not app.narrow
        panes = ["#memory-pane", "#leak-pane", "#allocators-pane", "#objects-pane", "#gc-pane"]
        assert all(app.query_one(p).region.area for p in panes)
        await pilot.resize_terminal(*NARROW)
        await pilot.pause()
        assert app.narrow and app.has_class("-narrow")
        seen = []
        for _ in panes:
            await pilot.pause()
            visible = [p for p in panes if app.query_one(p).region.area]
            assert len(visible) == 1
            seen.append(visible[0])
            region = app.query_one(visible[0]).region
            assert region.right <= 80 and region.bottom <= 23
            await pilot.press("n")
        assert sorted(seen) == sorted(panes)
        assert app.query_one(HeaderBar).region.area  # header (with the verdict) always shown
        await pilot.press("slash")  # the filter jumps to the allocators pane
        assert app.active_pane == "allocators"
        await pilot.resize_terminal(*WIDE)
        await pilot.pause()
        assert not app.narrow


async def test_paused_frames_are_not_drawn() -> None:
    source = FakeSource(demo_frames(2))
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        shown = app.frame
        await pilot.press("p")
        app.post_message(FrameReceived(dataclasses.replace(demo_frames(2)[1], seq=99)))
        await asyncio.sleep(0.05)
        await pilot.pause()
        assert app.frame is shown
