"""Provides DiffRefresh: a widget that repaints only the rows whose content changed.

Textual repaints a whole widget on ``refresh()``; over SSH that is every row of the pane each
second. These widgets render their content themselves, compare it row by row with what is on
screen, and mark only the rows that differ dirty.
"""

from __future__ import annotations

from typing import Any

from rich.segment import Segment
from textual.geometry import Region
from textual.widget import Widget

Row = tuple[tuple[str, Any], ...]


class DiffRefresh(Widget):
    """Call ``refresh_changed()`` (not ``refresh()``) when the content may have changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._rows: list[Row] = []
        self._rows_width = 0

    def refresh_changed(self) -> None:
        width, height = self.size.width, self.size.height
        if not self.is_mounted or not width or not height:
            self.refresh()
            return
        console = self.app.console
        lines = console.render_lines(self.render(), console.options.update(width=width))  # type: ignore[arg-type]
        rows = [tuple((s.text, s.style) for s in Segment.simplify(line)) for line in lines]
        old, self._rows = self._rows, rows
        if width != self._rows_width or len(old) != len(rows):
            self._rows_width = width
            self.refresh(layout=len(old) != len(rows))
            return
        for i, (new, was) in enumerate(zip(rows, old, strict=True)):
            if new != was and i < height:
                self.refresh(Region(0, i, width, 1))

    def on_resize(self) -> None:
        self._rows_width = 0
        self.refresh_changed()
