"""Provides GcPanel: collections per generation, time in GC, collected, thresholds, gc.garbage."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive

from memtui.engine.monitor.frame import GcView
from memtui.tui.units import format_count, format_percent
from memtui.tui.widgets.diff_refresh import DiffRefresh


def gc_table(gc: GcView) -> Group:
    """A small grid (one row per fact, one column per generation), then time and garbage."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold")
    for _ in range(3):
        table.add_column(justify="right")
    table.add_row("", "gen 0", "gen 1", "gen 2")
    table.add_row("collections", *(format_count(n) for n in gc.collections))
    table.add_row("collected", *(format_count(n) for n in gc.collected))
    table.add_row("uncollectable", *(format_count(n) for n in gc.uncollectable))
    table.add_row("thresholds", *(format_count(n) for n in gc.thresholds))
    total = "not timed" if gc.total_time_s is None else f"{gc.total_time_s:.4g} s total"
    recent = (
        ""
        if gc.recent_time_fraction is None
        else f", {format_percent(gc.recent_time_fraction)} of last min"
    )
    footer = Text()
    footer.append("time in GC", style="bold")
    footer.append(f"     {total}{recent}\n")
    footer.append("gc.garbage", style="bold")
    footer.append(f"     {format_count(gc.garbage_count)} objects")
    return Group(table, footer)


class GcPanel(DiffRefresh):
    """The GC pane (a new count repaints its row, not the pane)."""

    gc: reactive[GcView | None] = reactive(None, repaint=False)
    """The latest GC figures."""
    unavailable: reactive[str] = reactive("", repaint=False)
    """Why there are no GC figures (empty when there are)."""

    def watch_gc(self) -> None:
        self.refresh_changed()

    def watch_unavailable(self) -> None:
        self.refresh_changed()

    def render(self) -> RenderResult:
        if self.gc is None:
            return Text(self.unavailable or "no GC data yet", style="italic")
        return gc_table(self.gc)
