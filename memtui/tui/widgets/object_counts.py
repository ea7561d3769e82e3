"""Provides ObjectCounts: live objects per type, change since baseline, rate, tracked types."""

from __future__ import annotations

from typing import Any, ClassVar

from memtui.engine.frame import ObjectRow
from memtui.tui.units import format_count, format_count_delta
from memtui.tui.widgets.sortable_table import Column, SortableTable


def _per_hour(row: ObjectRow) -> str:
    return "-" if row.per_hour is None else f"{format_count_delta(row.per_hour)}/h"


class ObjectCounts(SortableTable[ObjectRow]):
    """Object counts by type; the Tracked column says which types the target asked to follow."""

    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        Column("type", "Type", lambda r: r.type_name, lambda r: r.type_name, numeric=False),
        Column("count", "Count", lambda r: format_count(r.count), lambda r: r.count),
        Column("delta", "Delta", lambda r: format_count_delta(r.delta), lambda r: r.delta),
        Column("rate", "Rate", _per_hour, lambda r: r.per_hour),
        Column(
            "tracked",
            "Tracked",
            lambda r: "yes" if r.tracked else "",
            lambda r: r.tracked,
            numeric=False,
        ),
    )
    DEFAULT_SORT: ClassVar[str] = "count"

    def row_key(self, row: ObjectRow) -> str:
        return row.type_name

    def matches(self, row: ObjectRow, text: str) -> bool:
        return text in row.type_name.lower()
