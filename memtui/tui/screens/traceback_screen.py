"""Provides TracebackScreen: the full traceback of one allocation site."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from memtui.engine.monitor.frame import AllocatorRow
from memtui.tui.units import (
    format_bytes,
    format_bytes_delta,
    format_count,
    format_rate_mib_per_hour,
)


def traceback_text(row: AllocatorRow) -> Text:
    """The site's figures, then its frames outermost first (the allocating line last)."""
    text = Text()
    text.append(f"{row.file}:{row.line} in {row.function}\n", style="bold")
    size = "held" if row.size_kind == "held" else "survived the last tracing window"
    text.append(
        f"{size} {format_bytes(row.size_bytes)}  count {format_count(row.count)}  "
        f"growth {format_bytes_delta(row.growth_bytes)}  "
        f"rate {format_rate_mib_per_hour(row.growth_mb_per_hour)}\n\n"
    )
    if not row.traceback:
        text.append("no traceback recorded (tracemalloc kept 1 frame)", style="italic")
        return text
    text.append("Traceback (outermost first):\n", style="bold")
    for depth, frame in enumerate(row.traceback):
        text.append(f"{'  ' * min(depth, 8)}{frame}\n")
    text.rstrip()
    return text


class TracebackScreen(ModalScreen[None]):
    """An overlay with one site's traceback; esc or q closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,enter", "dismiss", "Close"),
    ]

    def __init__(self, row: AllocatorRow) -> None:
        super().__init__()
        self.row = row
        """The site shown."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="traceback-body") as body:
            body.border_title = "Traceback"
            body.border_subtitle = "esc closes"
            yield Static(traceback_text(self.row), id="traceback-text")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
