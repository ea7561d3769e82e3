"""Provides the explorer's tables: types by retained size, retainers, diff rows, the dump list.

Rows are the analysis' JSON dicts (memtui.engine.heap.dumps / dump_diff), shown as they come.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from textual.message import Message
from textual.widgets import DataTable

from memtui.tui.units import format_bytes, format_bytes_delta, format_count, format_count_delta
from memtui.tui.widgets.sortable_table import Column, SortableTable

Row = dict[str, Any]


@dataclass
class DumpRecord:
    """One heap dump of this session, with its analysis once done."""

    path: str
    written_at: float
    pending: bool = False
    """The target was still writing it when the command returned."""
    state: str = "waiting"
    """waiting (for the file), analyzing, ready, failed."""
    error: str = ""
    analysis: Row | None = None
    diff: Row | None = None
    """Against the previous dump of the session, once asked for."""
    chains: dict[str, Row] = field(default_factory=dict)
    """Chains to a type, by type name, once asked for."""

    @property
    def name(self) -> str:
        return os.path.basename(self.path)


def chain_tail(chain: str, width: int = 70) -> str:
    """A chain keeping its start (the root) and its end (the holder) when too long."""
    if len(chain) <= width:
        return chain
    half = (width - 3) // 2
    return f"{chain[:half]}...{chain[-half:]}"


def num(key: str, label: str, field: str, fmt: Callable[[Any], str]) -> Column[Row]:
    """A numeric column over one field of the analysis' rows."""
    return Column(key, label, lambda r: fmt(r[field]), lambda r: r[field])


class RowTable(SortableTable[Row]):
    """A table of analysis rows; Enter asks the screen to explain the row under the cursor."""

    class Explain(Message):
        def __init__(self, table: RowTable, row: Row) -> None:
            super().__init__()
            self.table = table
            self.row = row

        @property
        def control(self) -> RowTable:
            return self.table

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.cursor_item
        if row is not None:
            self.post_message(self.Explain(self, row))


class TypesTable(RowTable):
    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        Column("type", "Type", lambda r: str(r["type"]), lambda r: r["type"], numeric=False),
        num("retained", "Retained", "retained_size", format_bytes),
        num("shallow", "Shallow", "shallow_size", format_bytes),
        num("count", "Count", "count", format_count),
    )
    DEFAULT_SORT: ClassVar[str] = "retained"

    def row_key(self, row: Row) -> str:
        return str(row["type"])


class RetainersTable(RowTable):
    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        num("retained", "Retained", "retained_size", format_bytes),
        num("objects", "Objects", "retained_objects", format_count),
        Column(
            "chain",
            "Path from a root",
            lambda r: chain_tail(r["chain"]),
            lambda r: r["chain"],
            numeric=False,
        ),
    )
    DEFAULT_SORT: ClassVar[str] = "retained"

    def row_key(self, row: Row) -> str:
        return str(row["address"])


class DiffTypesTable(RowTable):
    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        Column("type", "Type", lambda r: str(r["type"]), lambda r: r["type"], numeric=False),
        num("retained", "Retained Δ", "retained_delta", format_bytes_delta),
        num("count", "Count Δ", "count_delta", format_count_delta),
        num("after", "Count now", "count_after", format_count),
    )
    DEFAULT_SORT: ClassVar[str] = "retained"

    def row_key(self, row: Row) -> str:
        return str(row["type"])


class DiffRetainersTable(RowTable):
    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        num("retained", "Retained Δ", "retained_delta", format_bytes_delta),
        num("after", "Now", "retained_after", format_bytes),
        Column(
            "chain",
            "Retainer that grew",
            lambda r: chain_tail(r["chain"]) + (" (new)" if r.get("new") else ""),
            lambda r: r["chain"],
            numeric=False,
        ),
    )
    DEFAULT_SORT: ClassVar[str] = "retained"

    def row_key(self, row: Row) -> str:
        return str(row["chain"])


def _dump_cell(r: Row, key: str) -> str:
    record: DumpRecord = r["record"]
    summary = (record.analysis or {}).get("summary", {})
    if key == "when":
        return time.strftime("%H:%M:%S", time.localtime(record.written_at))
    if key == "objects":
        return format_count(summary.get("objects")) if summary else "-"
    if key == "size":
        return format_bytes(summary.get("total_size")) if summary else "-"
    return record.state if not record.error else f"failed: {record.error}"


class DumpsTable(RowTable):
    """This session's dumps, oldest first; Enter opens one."""

    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        num("n", "#", "n", str),
        Column("when", "Written", lambda r: _dump_cell(r, "when"), lambda r: 0, numeric=False),
        Column("objects", "Objects", lambda r: _dump_cell(r, "objects"), lambda r: 0),
        Column("size", "Heap", lambda r: _dump_cell(r, "size"), lambda r: 0),
        Column("file", "File", lambda r: r["record"].name, lambda r: 0, numeric=False),
        Column("state", "Analysis", lambda r: _dump_cell(r, "state"), lambda r: 0, numeric=False),
    )
    DEFAULT_SORT: ClassVar[str] = "n"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.set_reactive(SortableTable.sort_reverse, False)

    def row_key(self, row: Row) -> str:
        return str(row["record"].path)
