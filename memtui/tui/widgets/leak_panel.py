"""Provides LeakPanel: the leak verdict (OK / suspected / LEAK), its reason, and the suspects.

The reason is wrapped, never cut; the named culprits (containers by path, with growth and
retained size) are a table with a cursor, so Enter opens one's detail.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text
from textual.app import ComposeResult, RenderResult
from textual.containers import Vertical
from textual.message import Message
from textual.reactive import reactive
from textual.widgets import DataTable

from memtui.engine.monitor.frame import SuspectView, VerdictView
from memtui.tui.units import (
    format_bytes,
    format_count_delta,
    format_duration,
    format_percent,
    format_rate_mib_per_hour,
)
from memtui.tui.widgets.diff_refresh import DiffRefresh
from memtui.tui.widgets.sortable_table import Column, SortableTable

STATE_WORDS = {
    "ok": "OK",
    "suspected": "SUSPECTED LEAK",
    "leak": "LEAK",
    "insufficient_data": "NOT ENOUGH DATA",
}
PATH_WIDTH = 30


def short_path(path: str, width: int = PATH_WIDTH) -> str:
    """The path, keeping its end (the attribute that names the container) when too long."""
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def items_rate(rate: float | None) -> str:
    return "-" if rate is None else f"{format_count_delta(round(rate))}/min"


def mb_rate(rate: float | None) -> str:
    """MiB per minute with two decimals (small rates stay visible: +0.01)."""
    if rate is None:
        return "-"
    if rate and abs(rate) < 0.01:
        return f"{rate:+.3f}"
    return f"{rate:+.2f}" if abs(rate) < 100 else f"{rate:+,.0f}"


def verdict_text(verdict: VerdictView) -> Text:
    """The verdict in words; the state word carries the meaning, colour only underlines it.

    Suspects are listed here as text only when the source has no named rows for them.
    """
    text = Text(no_wrap=False)
    text.append(STATE_WORDS.get(verdict.state, verdict.state), style="bold reverse")
    text.append(f"  {format_rate_mib_per_hour(verdict.rate_mb_per_hour)}")
    text.append(f"  confidence {format_percent(verdict.confidence)}\n")
    if verdict.projected_oom_hours is not None:
        text.append(f"out of memory in {format_duration(verdict.projected_oom_hours * 3600)}")
        if verdict.memory_limit_source:
            text.append(f" (limit: {verdict.memory_limit_source})")
        text.append("\n")
    elif verdict.memory_limit_source:
        text.append(f"limit: {verdict.memory_limit_source}\n")
    if verdict.reason:
        text.append(verdict.reason + "\n", style="italic")
    if verdict.suspect_rows:
        text.append("suspects (enter: details)", style="bold")
    elif verdict.suspects:
        text.append("suspects:\n", style="bold")
        for i, suspect in enumerate(verdict.suspects, 1):
            text.append(f"{i}. {suspect}\n")
    text.rstrip()
    return text


class SuspectsTable(SortableTable[SuspectView]):
    """The named culprits, most suspicious first (the engine's order; no sorting here)."""

    COLUMNS: ClassVar[tuple[Column[Any], ...]] = (
        Column("path", "Suspect", lambda r: short_path(r.path), lambda r: r.path, numeric=False),
        Column("items", "Items/min", lambda r: items_rate(r.items_per_min), lambda r: 0),
        Column("mb", "MiB/min", lambda r: mb_rate(r.mb_per_min), lambda r: 0),
        Column("retained", "Retained", lambda r: format_bytes(r.retained_bytes), lambda r: 0),
    )
    DEFAULT_SORT: ClassVar[str] = ""

    class SuspectRequested(Message):
        """Enter on a suspect: show its detail."""

        def __init__(self, suspect: SuspectView) -> None:
            super().__init__()
            self.suspect = suspect

    def row_key(self, row: SuspectView) -> str:
        return f"{row.kind}:{row.path}"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        # The engine's order is the point: o, O and r do not re-sort the suspects.
        if action in ("cycle_sort", "reverse_sort", "sort_growth"):
            return False
        return super().check_action(action, parameters)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        row = self.cursor_item
        if row is not None:
            self.post_message(self.SuspectRequested(row))


class VerdictText(DiffRefresh):
    """The verdict's words; a changed figure repaints its row, without a layout pass."""

    DEFAULT_CSS = "VerdictText { height: auto; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text = Text("no verdict yet", style="italic")

    def show(self, text: Text) -> None:
        self.text = text
        self.refresh_changed()

    def render(self) -> RenderResult:
        return self.text


class LeakPanel(Vertical):
    """The leak-verdict pane, with a state class (-ok, -suspected, -leak) for colour."""

    verdict: reactive[VerdictView | None] = reactive(None, init=False, repaint=False)
    """The latest verdict (its children repaint what changed; the pane itself does not)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._shown: Text | None = None

    def compose(self) -> ComposeResult:
        yield VerdictText(id="verdict-text")
        yield SuspectsTable(id="suspects")

    @property
    def text(self) -> str:
        """The verdict as plain text (what the Static shows)."""
        return self._shown.plain if self._shown is not None else "no verdict yet"

    def watch_verdict(self, verdict: VerdictView | None) -> None:
        for state in ("ok", "suspected", "leak"):
            self.set_class(verdict is not None and verdict.state == state, f"-{state}")
        if verdict is None:
            return
        text = verdict_text(verdict)
        if self._shown is None or text.plain != self._shown.plain:
            self._shown = text
            self.query_one(VerdictText).show(text)
        table = self.query_one(SuspectsTable)
        table.set_class(not verdict.suspect_rows, "-empty")
        table.set_rows(verdict.suspect_rows)
