"""Provides QuitScreen: "Stop the program too? [y/N]" for a target that memtui launched."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label


class QuitScreen(ModalScreen[bool | None]):
    """Returns True (stop the target), False (leave it running) or None (stay in the monitor).

    Enter and n mean No, as the [y/N] says; esc cancels and never quits.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes, stop it"),
        Binding("n,enter", "answer(False)", "No, leave it running"),
        Binding("escape", "answer(None)", "Cancel"),
    ]

    def __init__(self, pid: int | None) -> None:
        super().__init__()
        self.pid = pid

    def compose(self) -> ComposeResult:
        with Vertical(id="quit-body") as body:
            body.border_title = "Quit memtui"
            target = f"pid {self.pid}" if self.pid is not None else "the program"
            yield Label(f"memtui started {target}. Stop the program too? [y/N]")
            yield Label("y: stop it   n/enter: leave it running   esc: stay here", id="quit-keys")

    def action_answer(self, answer: bool | None) -> None:
        self.dismiss(answer)
