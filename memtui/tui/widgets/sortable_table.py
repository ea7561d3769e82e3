"""Provides SortableTable: a DataTable of frame rows with stable keys, sorting and a filter."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import ColumnKey, RowKey

RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Column(Generic[RowT]):
    """One column: how to show a row's value, and how to sort by it."""

    key: str
    label: str
    cell: Callable[[RowT], str]
    sort_value: Callable[[RowT], Any]
    numeric: bool = True
    """Right-aligned, and sorted largest first."""
    width: int | None = None
    """A fixed width (cells): values that change length then never re-layout the table."""


class SortableTable(DataTable[Text], Generic[RowT]):
    """A row-cursor table over frame rows; `o` cycles the sort column, `O` reverses it.

    Rows keep stable keys, so the cursor stays on the same site while values change.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("o", "cycle_sort", "Sort", show=False),
        Binding("O", "reverse_sort", "Reverse sort", show=False),
        Binding("r", "sort_growth", "Sort by growth", show=False),
    ]

    COLUMNS: ClassVar[Sequence[Column[Any]]] = ()
    DEFAULT_SORT: ClassVar[str] = ""
    GROWTH_SORT: ClassVar[str] = ""
    """The column `r` sorts by, largest growth first ('' : none)."""

    sort_key: reactive[str] = reactive("", init=False)
    """The key of the column rows are sorted by."""
    sort_reverse: reactive[bool] = reactive(True, init=False)
    """True: largest first (the default for sizes and counts)."""
    filter_text: reactive[str] = reactive("", init=False)
    """Only rows whose ``matches`` accepts this text are shown (empty: all rows)."""

    class SortChanged(Message):
        """The user picked another sort column or order."""

        def __init__(self, table: SortableTable[Any], sort_key: str, reverse: bool) -> None:
            super().__init__()
            self.table = table
            self.sort_key = sort_key
            self.reverse = reverse

        @property
        def control(self) -> SortableTable[Any]:
            return self.table

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes, cursor_type="row", zebra_stripes=False)
        self._all_rows: tuple[RowT, ...] = ()
        self._shown_rows: list[tuple[str, RowT]] = []
        self._shown_cells: list[tuple[str, ...]] = []
        self._labels: dict[str, str] = {}
        self.set_reactive(SortableTable.sort_key, self.DEFAULT_SORT)

    def on_mount(self) -> None:
        for column in self.COLUMNS:
            self.add_column(self._header(column), key=column.key, width=column.width)

    def _header(self, column: Column[Any]) -> Text:
        arrow = ""
        if column.key == self.sort_key:
            arrow = " v" if self.sort_reverse else " ^"
        label = self._labels.get(column.key, column.label)
        return Text(label + arrow, justify="right" if column.numeric else "left")

    def set_label(self, key: str, label: str) -> None:
        """Rename a column (what its values mean can change with the source's mode)."""
        if self._labels.get(key) == label:
            return
        self._labels[key] = label
        if self.is_mounted:
            column = next(c for c in self.COLUMNS if c.key == key)
            self.columns[ColumnKey(key)].label = self._header(column)
            self._require_update_dimensions = True
            self.refresh()

    def label(self, key: str) -> str:
        """The column's label as shown (without the sort arrow)."""
        return self._labels.get(key, next(c.label for c in self.COLUMNS if c.key == key))

    def pinned(self, row: RowT) -> bool:
        """Rows that stay on top whatever the sort (the leaking type)."""
        return False

    def row_key(self, row: RowT) -> str:
        """A key that stays the same for the same site or type across frames."""
        raise NotImplementedError

    def matches(self, row: RowT, text: str) -> bool:
        """Whether ``row`` passes the filter ``text`` (lower case, not empty)."""
        return True

    @property
    def all_rows(self) -> tuple[RowT, ...]:
        """All rows of the last frame, before filtering."""
        return self._all_rows

    @property
    def shown_rows(self) -> list[RowT]:
        """The rows on screen, in screen order."""
        return [row for _, row in self._shown_rows]

    @property
    def cursor_item(self) -> RowT | None:
        """The row under the cursor, if any."""
        if not self._shown_rows or not 0 <= self.cursor_row < len(self._shown_rows):
            return None
        return self._shown_rows[self.cursor_row][1]

    def set_rows(self, rows: Sequence[RowT]) -> None:
        """Show ``rows`` (a new frame's); updates cells in place when the order is unchanged."""
        self._all_rows = tuple(rows)
        self._populate()

    def watch_sort_key(self) -> None:
        self._sort_changed()

    def watch_sort_reverse(self) -> None:
        self._sort_changed()

    def watch_filter_text(self) -> None:
        self._populate()

    def _sort_changed(self) -> None:
        for column in self.COLUMNS:
            self.columns[ColumnKey(column.key)].label = self._header(column)
        self._require_update_dimensions = True
        self._populate()
        self.post_message(self.SortChanged(self, self.sort_key, self.sort_reverse))

    def action_cycle_sort(self) -> None:
        keys = [column.key for column in self.COLUMNS]
        next_key = keys[(keys.index(self.sort_key) + 1) % len(keys)]
        column = next(c for c in self.COLUMNS if c.key == next_key)
        self.set_reactive(SortableTable.sort_reverse, column.numeric)
        self.sort_key = next_key

    def action_sort_growth(self) -> None:
        if self.GROWTH_SORT:
            self.set_reactive(SortableTable.sort_reverse, True)
            if self.sort_key == self.GROWTH_SORT:
                self._sort_changed()  # already the column: the order resets to largest first
            else:
                self.sort_key = self.GROWTH_SORT

    def action_reverse_sort(self) -> None:
        self.sort_reverse = not self.sort_reverse

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        event.stop()
        key = str(event.column_key.value)
        if key == self.sort_key:
            self.sort_reverse = not self.sort_reverse
        else:
            column = next(c for c in self.COLUMNS if c.key == key)
            self.set_reactive(SortableTable.sort_reverse, column.numeric)
            self.sort_key = key

    def _ordered(self) -> list[tuple[str, RowT]]:
        text = self.filter_text.strip().lower()
        rows = [r for r in self._all_rows if not text or self.matches(r, text)]
        column = next((c for c in self.COLUMNS if c.key == self.sort_key), None)
        if column is not None:
            # None (not measured) sorts last whichever way the order goes.
            present = [r for r in rows if column.sort_value(r) is not None]
            absent = [r for r in rows if column.sort_value(r) is None]
            present.sort(key=column.sort_value, reverse=self.sort_reverse)
            rows = present + absent
        rows = [r for r in rows if self.pinned(r)] + [r for r in rows if not self.pinned(r)]
        return [(self.row_key(r), r) for r in rows]

    def _populate(self) -> None:
        """Show the ordered rows, writing only the cells that changed.

        Table rows are positions, not sites: when the order changes, the rows whose content
        moved are rewritten in place, and only those reach the terminal (a full table redraw
        costs kilobytes over SSH). The cursor follows its site.
        """
        if not self.is_mounted:
            return
        ordered = self._ordered()
        cells = [tuple(c.cell(row) for c in self.COLUMNS) for _, row in ordered]
        cursor_key = None
        if self._shown_rows and 0 <= self.cursor_row < len(self._shown_rows):
            cursor_key = self._shown_rows[self.cursor_row][0]
        previous = self._shown_cells
        self._shown_rows = ordered
        self._shown_cells = cells
        if len(cells) != len(previous) or self.row_count != len(cells):
            self.clear()
            for i, row_cells in enumerate(cells):
                self.add_row(
                    *(self._cell(c, v) for c, v in zip(self.COLUMNS, row_cells, strict=True)),
                    key=str(i),
                )
        else:
            for i, (new, old) in enumerate(zip(cells, previous, strict=True)):
                if new != old:
                    self._write_row(i, new, old)
        keys = [k for k, _ in ordered]
        if cursor_key in keys and keys.index(cursor_key) != self.cursor_row:
            self.move_cursor(row=keys.index(cursor_key), animate=False, scroll=False)

    def _write_row(self, index: int, new: tuple[str, ...], old: tuple[str, ...]) -> None:
        row_key = RowKey(str(index))
        wider = False
        for column, value, was in zip(self.COLUMNS, new, old, strict=True):
            if value == was:
                continue
            column_key = ColumnKey(column.key)
            cell = self._cell(column, value)
            if column.width is None and cell.cell_len > self.columns[column_key].content_width:
                self.update_cell(row_key, column_key, cell, update_width=True)
                wider = True
            else:
                self._data[row_key][column_key] = cell
        if not wider:
            # What update_cell does, without repainting the whole table.
            self._update_count += 1
            self.refresh_row(index)

    @staticmethod
    def _cell(column: Column[Any], value: str) -> Text:
        return Text(value, justify="right" if column.numeric else "left", no_wrap=True)
