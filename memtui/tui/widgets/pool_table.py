"""Provides PoolTable: the processes of a pool, sortable, one row per process."""

from __future__ import annotations

from typing import Any, ClassVar

from textual.message import Message
from textual.widgets import DataTable

from memtui.remote.fleet import PoolRow
from memtui.tui.units import format_bytes, format_rate_mib_per_hour
from memtui.tui.widgets.sortable_table import Column, SortableTable

SEVERITY: dict[str, int] = {"leak": 3, "suspected": 2, "ok": 1, "exited": 0}


def process_label(row: PoolRow, width: int = 22) -> str:
    """'worker · gunicorn -w 2 app:app', cut to ``width`` (the role says what it is first)."""
    words = row.command.split()
    if words:  # the program's name, not its directory
        words[0] = words[0].rsplit("/", 1)[-1]
    text = f"{row.role} · {' '.join(words)}"
    return text if len(text) <= width else text[: width - 1] + "…"


def suspect_label(row: PoolRow, width: int = 40) -> str:
    text = row.suspect or "-"
    return text if len(text) <= width else text[: width - 1] + "…"


class PoolTable(SortableTable[PoolRow]):
    """pid, process (role and command), RSS, verdict, rate, top suspect; Enter opens one."""

    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        Column("pid", "PID", lambda r: str(r.pid), lambda r: r.pid),
        Column("process", "Process", process_label, lambda r: (r.role, r.command), numeric=False),
        Column("rss", "RSS", lambda r: format_bytes(r.rss_bytes), lambda r: r.rss_bytes),
        Column("verdict", "Verdict", lambda r: r.state, lambda r: SEVERITY.get(r.state, 0)),
        Column(
            "rate",
            "Rate",
            lambda r: format_rate_mib_per_hour(r.rate_mb_per_hour) if r.alive else "-",
            lambda r: r.rate_mb_per_hour if r.alive else None,
        ),
        Column("suspect", "Top suspect", suspect_label, lambda r: r.suspect, numeric=False),
    )
    DEFAULT_SORT: ClassVar[str] = "rss"

    class ProcessChosen(Message):
        """Enter was pressed on a row: show that process with the monitor's panes."""

        def __init__(self, row: PoolRow) -> None:
            super().__init__()
            self.row = row

    def row_key(self, row: PoolRow) -> str:
        return str(row.pid)

    def matches(self, row: PoolRow, text: str) -> bool:
        return text in row.command.lower() or text in row.role or text == str(row.pid)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.cursor_item
        if row is not None:
            self.post_message(self.ProcessChosen(row))
