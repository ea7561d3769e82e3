"""Pilot tests of the monitor's answer: suspects, object growth, markers, the dump explorer."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fake_source import FakeSource, demo_frames, write_real_dump
from textual.widgets import Input, Static
from textual.worker import WorkerFailed

from memtui.engine.monitor.frame import AllocatorRow, MonitorFrame
from memtui.engine.monitor.view import leaking_types, object_rows
from memtui.probe.census import CensusResult
from memtui.tui.app import MemtuiApp
from memtui.tui.dumps.jobs import AnalysisFailed, run_analysis
from memtui.tui.dumps.screen import ChainsScreen, DumpScreen
from memtui.tui.dumps.tables import (
    DiffRetainersTable,
    DiffTypesTable,
    DumpsTable,
    RetainersTable,
    TypesTable,
)
from memtui.tui.screens.mark_screen import MarkScreen
from memtui.tui.screens.suspect_screen import SuspectScreen
from memtui.tui.widgets.allocators_table import AllocatorsTable
from memtui.tui.widgets.leak_panel import LeakPanel, SuspectsTable, VerdictText
from memtui.tui.widgets.object_counts import ObjectCounts
from memtui.tui.widgets.rss_chart import RssChart

WIDE = (160, 45)
NARROW = (80, 24)
HOURS_3 = 3 * 3600.0


def make_app(source: FakeSource, **kwargs: Any) -> MemtuiApp:
    kwargs.setdefault("refresh_s", 3600.0)
    return MemtuiApp(source, clock_format=lambda _: "12:00:00", wall_clock=lambda: 0.0, **kwargs)


async def settle(app: MemtuiApp, pilot: Any) -> None:
    with contextlib.suppress(WorkerFailed):
        await app.workers.wait_for_complete()
    await pilot.pause()


async def until(pilot: Any, predicate: Any, timeout_s: float = 60.0) -> None:
    """Wait (real time: the analysis runs in a real child process) until ``predicate()``."""
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)
        await pilot.pause()


def frame_with(**verdict_changes: Any) -> MonitorFrame:
    (frame,) = demo_frames(1, start_s=HOURS_3)
    return dataclasses.replace(frame, verdict=dataclasses.replace(frame.verdict, **verdict_changes))


def cells(table: Any) -> list[list[str]]:
    return [[c.plain for c in table.get_row_at(i)] for i in range(table.row_count)]


# -- the verdict pane ----------------------------------------------------------------------


LONG_REASON = (
    "RSS floor +2078.6 MB/h, steady for 1.2 min, not levelling off; the growth is Python "
    "objects (tracemalloc follows RSS within 4%), mostly dicts appended to one list, and it "
    "survived three full collections in a row"
)


async def test_verdict_shows_the_whole_reason_and_the_suspects_by_path_at_160x45() -> None:
    app = make_app(FakeSource([frame_with(reason=LONG_REASON)]))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        pane = app.query_one(LeakPanel)
        assert LONG_REASON in pane.text
        text = app.query_one(VerdictText)
        # Wrapped, never cut: it has at least the rows the reason needs at this width.
        assert text.region.height >= 3 + math.ceil(len(LONG_REASON) / text.region.width)
        table = app.query_one(SuspectsTable)
        assert table.shown_rows[0].path == "app.orders.ORDER_LOG"
        first = cells(table)[0]
        assert first[0] == "app.orders.ORDER_LOG" and first[1] == "+900/min"
        assert first[2] == "+0.45" and first[3].endswith("MiB")
        # Every suspect row is on screen, inside the pane, without scrolling.
        assert table.region.height >= len(table.shown_rows) + 1
        assert pane.region.contains_region(table.region)
        assert table.region.bottom <= app.query_one("#objects-pane").region.y


async def test_without_named_rows_the_suspect_lines_are_listed() -> None:
    app = make_app(FakeSource([frame_with(suspect_rows=())]))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        assert "1. app/orders.py:57 cache_order: +40 MiB/h" in app.query_one(LeakPanel).text
        assert app.query_one(SuspectsTable).has_class("-empty")
        assert not app.query_one(SuspectsTable).region.area


async def test_leak_tab_at_80x24_names_the_container_and_enter_opens_its_detail() -> None:
    app = make_app(FakeSource(demo_frames(1, start_s=HOURS_3)))
    async with app.run_test(size=NARROW) as pilot:
        await settle(app, pilot)
        await pilot.press("n")
        assert app.active_pane == "leak"
        table = app.query_one(SuspectsTable)
        assert app.focused is table and table.region.area
        assert table.region.right <= 80 and table.region.bottom <= 23
        assert cells(table)[0][0] == "app.orders.ORDER_LOG"
        await pilot.press("down", "up", "enter")
        assert isinstance(app.screen, SuspectScreen)
        assert app.screen.suspect.path == "app.orders.ORDER_LOG"
        body = str(app.screen.query_one("#suspect-text", Static).render())
        assert "mostly dict" in body and "module app.orders → global ORDER_LOG → list" in body
        samples = str(app.screen.query_one("#suspect-samples", Static).render())
        assert "{'id': 1041" in samples
        assert app.screen.query_one("#suspect-growth").region.height >= 8
        await pilot.press("escape")
        assert not isinstance(app.screen, SuspectScreen)
        await pilot.press("down", "enter")
        assert isinstance(app.screen, SuspectScreen)
        assert app.screen.suspect.path == "app.events.BUS.handlers"


# -- object counts --------------------------------------------------------------------------


async def test_leaking_type_stays_on_top_and_r_sorts_by_growth() -> None:
    app = make_app(FakeSource(demo_frames(1, start_s=HOURS_3)))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        table = app.query_one(ObjectCounts)
        rows = cells(table)
        assert rows[0][0] == "dict" and rows[0][-1] == "LEAK, tracked"
        assert rows[0][2].startswith("+") and rows[0][3].endswith("/h")  # no `b` pressed
        table.focus()
        await pilot.press("O")  # smallest count first: the leaking type is still first
        assert cells(table)[0][0] == "dict" and cells(table)[1][0] == "set"
        await pilot.press("r")
        assert table.sort_key == "delta" and table.sort_reverse
        names = [r.type_name for r in table.shown_rows]
        assert names[:3] == ["dict", "app.orders.Order", "str"]
        assert [r[-1] for r in cells(table)][1] == "tracked"


def test_object_rows_count_from_the_base_and_mark_the_leaking_type() -> None:
    base = CensusResult({"dict": 100, "str": 50}, 150, 0.01, 0.001)
    now = CensusResult({"dict": 1100, "str": 40, "Order": 5}, 1145, 0.01, 0.001)
    rows = object_rows(now, base, 1800.0, tracked=["str"], limit=2, leaking=["Order"])
    by = {r.type_name: r for r in rows}
    assert by["dict"].delta == 1000 and by["dict"].per_hour == 2000.0
    assert by["str"].delta == -10 and by["str"].tracked
    assert by["Order"].leaking and by["Order"].delta == 5  # beyond the limit, still shown
    assert object_rows(now)[0].delta is None
    assert leaking_types(demo_frames(1, start_s=HOURS_3)[0].verdict) == ("dict",)
    assert leaking_types(demo_frames(1, start_s=60.0)[0].verdict) == ()


# -- allocators -----------------------------------------------------------------------------


async def test_size_column_says_held_or_window() -> None:
    (frame,) = demo_frames(1, start_s=HOURS_3)
    held = dataclasses.replace(
        frame,
        allocators=tuple(dataclasses.replace(a, size_kind="held") for a in frame.allocators),
    )
    source = FakeSource([frame, held])
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        table = app.query_one(AllocatorsTable)
        assert table.label("size") == "Window"
        assert str(table.columns[next(iter(table.columns))].label) == "Location"
        app._tick()
        await settle(app, pilot)
        assert table.label("size") == "Held"
        assert table.shown_rows[0].growth_mb_per_hour == 40.0
        await pilot.press("enter")
        text = str(app.screen.query_one("#traceback-text").render())
        assert "held 158.2 MiB" in text and "app/server.py:88 in serve_forever" in text


async def test_changed_cells_are_rewritten_in_place_and_the_cursor_follows_its_row() -> None:
    (frame,) = demo_frames(1, start_s=HOURS_3)
    rows = list(frame.allocators)
    rows[2] = dataclasses.replace(rows[2], size_bytes=10**9)  # Order.__init__ jumps to the top
    grown = dataclasses.replace(frame, allocators=tuple(rows))
    app = make_app(FakeSource([frame, grown]))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        table = app.query_one(AllocatorsTable)
        await pilot.press("down")
        assert isinstance(table.cursor_item, AllocatorRow)
        assert table.cursor_item.function == "record_event"
        app._tick()
        await settle(app, pilot)
        assert table.shown_rows[0].function == "Order.__init__"
        assert cells(table)[0][2] == "953.7 MiB"
        assert table.cursor_item is not None and table.cursor_item.function == "record_event"
        assert table.cursor_row == 2


# -- markers --------------------------------------------------------------------------------


async def test_m_asks_for_a_label_and_records_a_marker() -> None:
    source = FakeSource(demo_frames(1, start_s=HOURS_3))
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        assert (1500.0, "deploy 42") in app.query_one(RssChart).view.markers  # type: ignore[union-attr]
        await pilot.press("m")
        assert isinstance(app.screen, MarkScreen)
        assert app.focused is app.screen.query_one(Input)
        await pilot.press(*"canary  43", "enter")
        await settle(app, pilot)
        assert source.marks == ["canary 43"]
        await pilot.press("m")
        await pilot.press(*"nope", "escape")
        await settle(app, pilot)
        assert source.marks == ["canary 43"] and not isinstance(app.screen, MarkScreen)


def test_chart_repaints_data_changes_once_per_dot_column() -> None:
    from memtui.tui.widgets.rss_chart import _same_frame, chart_view, repaint_interval

    a, b = demo_frames(2, start_s=90000.0, step_s=5.0)
    va, vb = chart_view(a, None, 94, 24), chart_view(b, None, 94, 24)
    assert va is not None and vb is not None
    assert repaint_interval(va, 94) == 30.0  # 24 h over 168 dot columns: 8.6 min, capped
    assert _same_frame(va, vb) and va != vb  # only dots moved: may wait
    marked = dataclasses.replace(b, markers=((89000.0, "x"),))
    vm = chart_view(marked, None, 94, 24)
    assert vm is not None and not _same_frame(va, vm)  # a new marker: drawn at once


async def test_the_chart_waits_for_data_only_changes_and_not_for_a_window_change() -> None:
    source = FakeSource(demo_frames(3, start_s=90000.0, step_s=5.0))
    app = make_app(source)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        chart = app.query_one(RssChart)
        now = [1000.0]
        chart.clock = lambda: now[0]
        await pilot.press("1", "4")  # a window change draws at once (on the test's clock)
        drawn = chart.redraws
        app._tick()
        await settle(app, pilot)
        assert chart.redraws == drawn  # 1 s later: the same axes, not yet
        now[0] += 31.0
        app._tick()
        await settle(app, pilot)
        assert chart.redraws == drawn + 1
        await pilot.press("2")
        assert chart.redraws == drawn + 2


# -- the heap-dump explorer -----------------------------------------------------------------


async def test_d_dumps_then_the_explorer_shows_retainers_chains_diff_and_the_list(
    tmp_path: Path,
) -> None:
    source = FakeSource(demo_frames(1, start_s=HOURS_3), real_dumps=True)
    app = make_app(source, out_dir=str(tmp_path))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("D")  # nothing yet: says so
        assert not isinstance(app.screen, DumpScreen)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DumpScreen))
        screen = app.screen
        assert isinstance(screen, DumpScreen)
        title = screen.query_one("#dump-title")
        # Ready is set in the analysis thread; the screen shows it at its next message.
        await until(pilot, lambda: "not reachable from a root" in str(title.render()))
        assert screen.record.state == "ready"
        types = screen.query_one(TypesTable)
        assert types.shown_rows[0]["type"] == "dict"
        retainers = screen.query_one(RetainersTable)
        top = retainers.shown_rows[0]
        assert top["chain"] == "module __main__ → global ORDER_LOG → list"
        assert cells(retainers)[0][0].endswith("KiB")
        assert types.region.area and retainers.region.area  # side by side, both on screen
        # Enter on a type: chains from roots, and sample objects.
        types.focus()
        await pilot.press("enter")
        chains = app.screen
        assert isinstance(chains, ChainsScreen) and chains.type_name == "dict"
        await until(pilot, lambda: "dict" in screen.record.chains)
        text = str(chains.query_one("#chains-text", Static).render())
        assert "module __main__ → global ORDER_LOG → list[*] → dict" in text
        assert "Sample objects" in text and "0x" in text
        await pilot.press("escape")
        assert app.screen is screen
        # A second dump: the diff against the first names what grew.
        await pilot.press("d")
        await until(pilot, lambda: app.screen is not screen and isinstance(app.screen, DumpScreen))
        second = app.screen
        assert isinstance(second, DumpScreen) and second.index == 1
        await until(pilot, lambda: second.record.state == "ready")
        await pilot.press("2")
        await until(pilot, lambda: second.record.diff is not None)
        await pilot.pause()
        diff_types = second.query_one(DiffTypesTable).shown_rows
        assert diff_types[0]["type"] == "dict" and diff_types[0]["count_delta"] >= 2000
        grown = second.query_one(DiffRetainersTable).shown_rows
        assert grown[0]["chain"] == "module __main__ → global ORDER_LOG → list"
        await pilot.press("3")
        listed = second.query_one(DumpsTable)
        assert [r["n"] for r in listed.shown_rows] == [1, 2]
        assert all(c[-1] == "ready" for c in cells(listed))
        await pilot.press("escape")
        assert not isinstance(app.screen, DumpScreen)
        await pilot.press("D")  # back to the latest dump, analysis kept
        assert isinstance(app.screen, DumpScreen) and app.screen.index == 1


async def test_the_analysis_bound_is_a_clear_message_on_the_screen(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEMTUI_ANALYZE_LIMIT_MB", "100")
    source = FakeSource(demo_frames(1, start_s=HOURS_3), real_dumps=True)
    app = make_app(source, out_dir=str(tmp_path))
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DumpScreen))
        screen = app.screen
        assert isinstance(screen, DumpScreen)
        await until(pilot, lambda: screen.record.state == "failed")
        status = str(screen.query_one("#dump-status", Static).render())
        assert "needs more than 100 MiB" in status and "MEMTUI_ANALYZE_LIMIT_MB" in status
        assert app.is_running


def test_run_analysis_fails_in_one_line_and_can_be_cancelled(tmp_path: Path) -> None:
    bad = tmp_path / "bad.mtdump"
    bad.write_bytes(b"not a dump")
    with pytest.raises(AnalysisFailed, match="not a memtui heap dump"):
        run_analysis(["analyze", str(bad)], threading.Event())
    dump = tmp_path / "ok.mtdump"
    write_real_dump(str(dump), orders=100)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(AnalysisFailed, match="cancelled"):
        run_analysis(["analyze", str(dump)], cancel)
    result = run_analysis(["analyze", str(dump)], threading.Event())
    assert result["summary"]["objects"] > 0


def test_help_names_the_new_keys() -> None:
    app = make_app(FakeSource(demo_frames(1)))
    rows = dict(app.help_rows())
    assert "marker" in rows["m"] and "explorer" in rows["D"]
    assert "growth" in rows["r"] and "Re-base" in rows["b"]
    assert any("explorer" in k for k in rows)


# -- a real agent: counts from the first census, markers ------------------------------------

GROWER = """\
import time
HOLD = []
while True:
    HOLD.extend({"i": i} for i in range(2000))
    time.sleep(0.2)
"""


def test_agent_source_counts_from_the_first_census_and_records_markers(tmp_path: Path) -> None:
    from memtui.remote.launcher import launch, stop_program
    from memtui.remote.session import AgentSession
    from memtui.remote.sources import AgentSource

    script = tmp_path / "grower.py"
    script.write_text(GROWER)
    program = launch(
        [sys.executable, str(script)],
        options={"MEMTUI_CENSUS_INTERVAL": "1", "MEMTUI_SAMPLE_INTERVAL": "0.5"},
        log_path=str(tmp_path / "grower.log"),
    )
    try:
        assert program.client is not None, program.agent_error
        source = AgentSource(AgentSession(program.client), 0.5, program.process)
        deadline = time.monotonic() + 60
        frame = source.poll()
        while not (frame.objects and any((r.delta or 0) > 0 for r in frame.objects)):
            assert time.monotonic() < deadline, "no growth counted"
            time.sleep(0.5)
            frame = source.poll()
        assert frame.objects_base_s is not None  # nobody pressed b
        result = source.mark("deploy 7")
        assert result.ok, result.message
        while not frame.markers:
            assert time.monotonic() < deadline, "marker not seen"
            time.sleep(0.5)
            frame = source.poll()
        assert frame.markers[-1][1] == "deploy 7" and frame.markers[-1][0] >= 0
    finally:
        stop_program(program)
        program.cleanup()
