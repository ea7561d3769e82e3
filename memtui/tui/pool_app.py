"""Provides PoolApp: the monitor over a whole pool (memtui run/attach of a worker pool).

Why a subclass: the panes stay today's (one process at a time); the pool adds a process list
(PoolScreen, shown first and on ``w``), a pool summary line above the header, and the
choice of which process the panes show.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.widgets import Static

from memtui.remote.pool_source import PoolSource
from memtui.tui.app import MemtuiApp, MonitorOutcome, save_report
from memtui.tui.messages import FrameReceived
from memtui.tui.screens.pool_screen import PoolScreen


class PoolApp(MemtuiApp):
    """MemtuiApp plus the pool: ``w`` lists the processes, Enter on one shows it."""

    DEFAULT_CSS = """
    #pool-bar { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        *MemtuiApp.BINDINGS,
        Binding("w", "pool", "Processes"),
    ]

    def __init__(
        self,
        source: PoolSource,
        *,
        out_dir: str = ".",
        launched: bool = False,
        refresh_s: float = 1.0,
    ) -> None:
        super().__init__(source, out_dir=out_dir, launched=launched, refresh_s=refresh_s)
        self.pool = source

    def compose(self) -> ComposeResult:
        yield Static("", id="pool-bar")
        yield from super().compose()

    def on_mount(self) -> None:  # Textual runs MemtuiApp.on_mount too
        self._pool_shown = False
        self.query_one("#pool-bar").display = False

    def on_frame_received(self, message: FrameReceived) -> None:  # and MemtuiApp's after
        self._update_pool_bar()
        if not self._pool_shown and len(self.pool.pool_rows()) > 1:
            # A pool after all (workers forked): the process list first, once; a program
            # that never starts another process keeps today's monitor as it was.
            self._pool_shown = True
            self.action_pool()

    def _update_pool_bar(self) -> None:
        bar = self.query_one("#pool-bar", Static)
        if len(self.pool.pool_rows()) > 1:
            bar.display = True
        line = f"{self.pool.pool_summary().line()} · showing pid {self.pool.selected_pid}"
        bar.update(line + " · w: processes")

    def action_pool(self) -> None:
        self._pool_shown = True
        if not isinstance(self.screen, PoolScreen):
            screen = PoolScreen(self.pool.pool_rows, self.pool.pool_summary, self.refresh_s)
            self.push_screen(screen, self._pool_chosen)

    def _pool_chosen(self, pid: int | None) -> None:
        if pid is None or pid == self.pool.selected_pid:
            return
        if self.pool.select(pid):
            self.frame = None
            self._update_pool_bar()
            self._start_poll()  # show it now, not at the next tick
        else:
            self.notify(f"pid {pid} is no longer watched", severity="warning")


def run_pool_monitor(
    source: PoolSource, *, out_dir: str = ".", launched: bool = False, refresh_s: float = 1.0
) -> MonitorOutcome:
    """run_monitor for a pool: the process list first; the pool report is saved on quit."""
    app = PoolApp(source, out_dir=out_dir, launched=launched, refresh_s=refresh_s)
    outcome = app.run()
    return save_report(outcome or app.outcome(stop_target=False), source, out_dir)
