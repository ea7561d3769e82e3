"""Provides AllocatorsTable: the top allocation sites, sortable, filterable, with a cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from textual.message import Message
from textual.widgets import DataTable

from memtui.engine.monitor.frame import AllocatorRow
from memtui.tui.units import (
    format_bytes,
    format_bytes_delta,
    format_count,
    format_rate_mib_per_hour,
)
from memtui.tui.widgets.sortable_table import Column, SortableTable


def location(row: AllocatorRow, width: int = 28) -> str:
    """``file:line``, keeping the end of a long path (the part that names the module)."""
    text = f"{row.file}:{row.line}"
    return text if len(text) <= width else "..." + text[-(width - 3) :]


class AllocatorsTable(SortableTable[AllocatorRow]):
    """Allocation sites: location, function, size, count, growth since baseline, growth rate."""

    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        Column("location", "Location", location, lambda r: (r.file, r.line), numeric=False),
        Column("function", "Function", lambda r: r.function, lambda r: r.function, numeric=False),
        Column(
            "size", "Size", lambda r: format_bytes(r.size_bytes), lambda r: r.size_bytes, width=10
        ),
        Column(
            "growth",
            "Growth",
            lambda r: format_bytes_delta(r.growth_bytes),
            lambda r: r.growth_bytes,
            width=11,
        ),
        Column(
            "rate",
            "Rate",
            lambda r: format_rate_mib_per_hour(r.growth_mb_per_hour),
            lambda r: r.growth_mb_per_hour,
            width=13,
        ),
        Column("count", "Count", lambda r: format_count(r.count), lambda r: r.count, width=9),
    )
    DEFAULT_SORT: ClassVar[str] = "size"
    GROWTH_SORT: ClassVar[str] = "growth"
    SIZE_LABELS: ClassVar[dict[str, str]] = {"held": "Held", "window": "Window"}
    """What Size means: bytes held now (continuous tracing), or bytes that survived the last
    tracing window (watch mode: a sample of what the site allocates, not what it holds)."""

    class TracebackRequested(Message):
        """Enter was pressed on a row: show its full traceback."""

        def __init__(self, row: AllocatorRow) -> None:
            super().__init__()
            self.row = row

    def set_rows(self, rows: Sequence[AllocatorRow]) -> None:
        if rows:
            self.set_label("size", self.SIZE_LABELS.get(rows[0].size_kind, "Size"))
        super().set_rows(rows)

    def row_key(self, row: AllocatorRow) -> str:
        return f"{row.file}:{row.line}:{row.function}"

    def matches(self, row: AllocatorRow, text: str) -> bool:
        return text in row.file.lower() or text in row.function.lower()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.cursor_item
        if row is not None:
            self.post_message(self.TracebackRequested(row))
