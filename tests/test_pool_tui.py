"""The monitor over a real gunicorn pool at 80x24: the process list, sorting, Enter, back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from pool_harness import APP, GUNICORN, free_port, get, wait_until_serving

from memtui.remote.fleet import Fleet
from memtui.remote.launcher import LaunchedProgram, launch
from memtui.remote.pool_source import PoolSource
from memtui.remote.session import AgentSession
from memtui.tui.pool_app import PoolApp
from memtui.tui.screens.pool_screen import PoolScreen
from memtui.tui.widgets.header_bar import HeaderBar
from memtui.tui.widgets.pool_table import PoolTable

pytest.importorskip("flask")
pytestmark = pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")


@pytest.fixture
def pool(tmp_path: Path) -> Iterator[tuple[LaunchedProgram, int]]:
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    program = launch(
        [str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(tmp_path), "app:app"],
        options={"MEMTUI_CHILDREN": "1", "MEMTUI_SAMPLE_INTERVAL": "0.5"},
        log_path=str(tmp_path / "pool.log"),
    )
    try:
        yield program, port
    finally:
        procs = [program.process.pid]
        with contextlib.suppress(psutil.Error):
            procs += [c.pid for c in psutil.Process(program.pid).children(recursive=True)]
        for pid in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        program.process.wait(10)
        program.cleanup()


async def _until(pilot: object, check: object, timeout_s: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while not check():  # type: ignore[operator]
        assert loop.time() < deadline, "timed out"
        await pilot.pause(0.2)  # type: ignore[attr-defined]


async def test_process_list_sort_enter_and_back_at_80x24(
    pool: tuple[LaunchedProgram, int],
) -> None:
    program, port = pool
    assert program.client is not None
    wait_until_serving(port, program.process)
    worker = get(port)
    source = PoolSource(Fleet(AgentSession(program.client)), 0.5, program.process)
    app = PoolApp(source, refresh_s=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        await _until(
            pilot, lambda: isinstance(app.screen, PoolScreen) and app.screen.query(PoolTable)
        )
        table = app.screen.query_one(PoolTable)
        await _until(pilot, lambda: len(table.shown_rows) == 3)
        roles = sorted(r.role for r in table.shown_rows)
        assert roles == ["root", "worker", "worker"]
        assert table.sort_key == "rss"
        summary = str(app.screen.query_one("#pool-summary").render())
        assert "pool: 3 live" in summary
        assert all(r.rss_bytes > 1e6 for r in table.shown_rows)  # the shown one too
        await pilot.press("o")  # next column: verdict
        assert table.sort_key == "verdict"
        await pilot.press("o", "o", "o")  # rate, suspect, then round to pid
        assert table.sort_key == "pid"
        rows = table.shown_rows
        assert [r.pid for r in rows] == sorted((r.pid for r in rows), reverse=True)
        target = next(i for i, r in enumerate(rows) if r.pid == worker)
        table.move_cursor(row=target)
        await pilot.press("enter")
        await _until(pilot, lambda: not isinstance(app.screen, PoolScreen))
        assert source.selected_pid == worker
        await _until(pilot, lambda: app.frame is not None and app.frame.header.pid == worker)
        assert app.query_one(HeaderBar).frame is not None
        bar = str(app.query_one("#pool-bar").render())
        assert f"showing pid {worker}" in bar and "pool: 3 live" in bar
        await pilot.press("w")
        assert isinstance(app.screen, PoolScreen)
        await pilot.press("escape")  # back to the worker's panes, never quits
        assert not isinstance(app.screen, PoolScreen) and app.is_running
        assert source.selected_pid == worker
    source.close()
