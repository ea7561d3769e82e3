"""Provides DetailActions: the monitor's ways into details (suspect, stack, dumps, markers).

A mixin of MemtuiApp, kept apart so the app module stays about panes and polling.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memtui.engine.monitor.frame import CommandResult, Source
from memtui.tui.dumps.screen import DumpScreen
from memtui.tui.dumps.tables import DumpRecord
from memtui.tui.screens.mark_screen import MarkScreen
from memtui.tui.screens.suspect_screen import SuspectScreen
from memtui.tui.screens.traceback_screen import TracebackScreen
from memtui.tui.widgets.allocators_table import AllocatorsTable
from memtui.tui.widgets.leak_panel import SuspectsTable

if TYPE_CHECKING:
    from textual.app import App

    _Base = App[Any]
else:
    _Base = object


class DetailActions(_Base):
    """Enter on a row, the dump explorer, the marker prompt."""

    source: Source
    dumps: list[DumpRecord]

    def _command(self, name: str, call: Callable[[], CommandResult], start: str = "") -> None:
        raise NotImplementedError  # MemtuiApp's

    def _open_dump(self, index: int) -> None:
        screen = DumpScreen(self.dumps, index)
        if isinstance(self.screen, DumpScreen):
            self.switch_screen(screen)
        else:
            self.push_screen(screen)

    def action_dumps(self) -> None:
        if not self.dumps:
            self.notify("No heap dump in this session yet: d writes one", title="Heap dumps")
        elif not isinstance(self.screen, DumpScreen):
            self._open_dump(len(self.dumps) - 1)

    def action_mark(self) -> None:
        if not isinstance(self.screen, MarkScreen):
            self.push_screen(MarkScreen(), self._mark_answered)

    def _mark_answered(self, label: str | None) -> None:
        if label:
            self._command("mark", lambda: self.source.mark(label))

    def on_allocators_table_traceback_requested(
        self, message: AllocatorsTable.TracebackRequested
    ) -> None:
        self.push_screen(TracebackScreen(message.row))

    def on_suspects_table_suspect_requested(self, message: SuspectsTable.SuspectRequested) -> None:
        self.push_screen(SuspectScreen(message.suspect))
