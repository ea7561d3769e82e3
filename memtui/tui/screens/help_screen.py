"""Provides HelpScreen: an overlay listing every key binding of the monitor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.table import Table
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static


def help_table(rows: Sequence[tuple[str, str]]) -> Table:
    """Keys and what they do, two columns."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for keys, description in rows:
        table.add_row(keys, description)
    return table


class HelpScreen(ModalScreen[None]):
    """Every binding, with a longer description than the footer's. Any of esc, ?, F1, q closes."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,question_mark,f1,q", "dismiss", "Close", show=True),
    ]

    def __init__(self, rows: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.rows = tuple(rows)
        """(keys, description) pairs, in the order shown."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-body") as body:
            body.border_title = "memtui keys"
            body.border_subtitle = "esc closes"
            yield Static(help_table(self.rows), id="help-table")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
