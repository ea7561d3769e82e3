"""Provides PoolScreen: the list of a pool's processes; Enter shows one with today's panes."""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, Static

from memtui.remote.fleet import PoolRow, PoolSummary
from memtui.tui.widgets.pool_table import PoolTable


class PoolScreen(Screen[int | None]):
    """Full screen (80x24 included): a summary line, the process table, the keys.

    Dismissed with the chosen pid (Enter) or None (esc: back to the process shown before).
    """

    DEFAULT_CSS = """
    PoolScreen { layout: vertical; }
    #pool-summary { height: 1; padding: 0 1; background: $panel; }
    #pool-table { height: 1fr; }
    #pool-hint { height: 1; padding: 0 1; color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("q", "app.request_quit", "Quit"),
    ]

    def __init__(
        self,
        rows: Callable[[], tuple[PoolRow, ...]],
        summary: Callable[[], PoolSummary],
        refresh_s: float = 1.0,
    ) -> None:
        super().__init__()
        self._rows = rows
        self._summary = summary
        self._refresh_s = refresh_s

    def compose(self) -> ComposeResult:
        yield Static("", id="pool-summary")
        yield PoolTable(id="pool-table")
        yield Static("enter: show process  o/O: sort  esc: back  q: quit", id="pool-hint")
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self.refresh_rows()
        self.set_interval(self._refresh_s, self.refresh_rows)
        self.query_one(PoolTable).focus()

    def refresh_rows(self) -> None:
        self.query_one("#pool-summary", Static).update(self._summary().line())
        self.query_one(PoolTable).set_rows(self._rows())

    def on_pool_table_process_chosen(self, message: PoolTable.ProcessChosen) -> None:
        self.dismiss(message.row.pid)

    def action_back(self) -> None:
        self.dismiss(None)
