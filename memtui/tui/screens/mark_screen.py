"""Provides MarkScreen: asks for a marker's label ("deploy 42"); enter records, esc cancels."""

from __future__ import annotations

from typing import ClassVar

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label

MAX_LABEL = 200
"""What the agent keeps of a label."""


class MarkScreen(ModalScreen[str | None]):
    """Returns the label (whitespace collapsed, never empty) or None when cancelled."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        with Vertical(id="mark-body") as body:
            body.border_title = "Marker"
            yield Label("Label for a marker at this instant (the chart and reports show it):")
            yield Input(placeholder="deploy 42", max_length=MAX_LABEL, id="mark-label")
            yield Label("enter: record   esc: cancel", id="mark-keys")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    @on(Input.Submitted, "#mark-label")
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(" ".join(event.value.split()) or "marker")

    def action_cancel(self) -> None:
        self.dismiss(None)
