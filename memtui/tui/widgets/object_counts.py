"""Provides ObjectCounts: live objects per type, change since watching began, rate, marks.

Delta and Rate count from the first census the monitor saw (``b`` re-bases); the type a
suspected leak is made of stays on top, whatever the sort.
"""

from __future__ import annotations

from typing import Any, ClassVar

from memtui.engine.monitor.frame import ObjectRow
from memtui.tui.units import format_count, format_count_delta, format_count_rate
from memtui.tui.widgets.sortable_table import Column, SortableTable


def _per_hour(row: ObjectRow) -> str:
    return "-" if row.per_hour is None else format_count_rate(row.per_hour)


TYPE_WIDTH = 26


def short_type(name: str, width: int = TYPE_WIDTH) -> str:
    """The type's name, keeping its end (the class) when a long module path would not fit."""
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def note(row: ObjectRow) -> str:
    """'LEAK' for the leaking type, 'tracked' for types the target asked to follow."""
    return ", ".join(w for w, on in (("LEAK", row.leaking), ("tracked", row.tracked)) if on)


class ObjectCounts(SortableTable[ObjectRow]):
    """Object counts by type; the Tracked column says which types the target asked to follow."""

    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        Column(
            "type", "Type", lambda r: short_type(r.type_name), lambda r: r.type_name, numeric=False
        ),
        Column("count", "Count", lambda r: format_count(r.count), lambda r: r.count, width=10),
        Column("delta", "Delta", lambda r: format_count_delta(r.delta), lambda r: r.delta, width=9),
        Column("rate", "Rate", _per_hour, lambda r: r.per_hour, width=11),
        Column("note", "Note", note, lambda r: (r.leaking, r.tracked), numeric=False),
    )
    DEFAULT_SORT: ClassVar[str] = "count"
    GROWTH_SORT: ClassVar[str] = "delta"

    def row_key(self, row: ObjectRow) -> str:
        return row.type_name

    def matches(self, row: ObjectRow, text: str) -> bool:
        return text in row.type_name.lower()

    def pinned(self, row: ObjectRow) -> bool:
        return row.leaking
