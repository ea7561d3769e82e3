"""Provides SuspectScreen: one named culprit: its path, what it holds, its growth, samples."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from textual_plotext import PlotextPlot

from memtui.engine.monitor.frame import SuspectView
from memtui.tui.units import MIB, format_bytes, format_count, format_duration, format_elapsed_tick
from memtui.tui.widgets.leak_panel import items_rate, mb_rate


def suspect_text(s: SuspectView) -> Text:
    """Everything known about the suspect, one fact a line (missing facts are left out)."""
    text = Text()
    text.append(f"{s.path}\n", style="bold")
    text.append(f"{s.detail}\n")
    facts = [("kind", s.kind.replace("_", " "))]
    if s.holds:
        facts.append(("holds", f"{format_count(s.items)} items, mostly {s.holds}"))
    elif s.items is not None:
        facts.append(("holds", f"{format_count(s.items)} items"))
    facts.append(("growth", f"{items_rate(s.items_per_min)}, {mb_rate(s.mb_per_min)} MiB/min"))
    if s.retained_bytes is not None:
        facts.append(("retains", format_bytes(s.retained_bytes)))
    if s.first_seen_s is not None:
        facts.append(("growing since", f"{format_duration(s.first_seen_s)} after watching began"))
    if s.chain:
        facts.append(("reached by", s.chain))
    for label, value in facts:
        text.append(f"{label:>14}  ", style="bold")
        text.append(f"{value}\n")
    text.rstrip()
    return text


def samples_text(s: SuspectView) -> Text:
    text = Text()
    text.append("Sample items", style="bold")
    text.append(" (safe, truncated reprs)\n" if s.samples else "\n")
    if not s.samples:
        text.append("none sampled yet", style="italic")
    for sample in s.samples:
        text.append(f"  {sample}\n")
    text.rstrip()
    return text


class GrowthChart(PlotextPlot):
    """Items (left axis) and retained MiB (right axis) at each heap summary."""

    def __init__(self, suspect: SuspectView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.suspect = suspect

    def on_mount(self) -> None:
        super().on_mount()
        plt = self.plt
        points = self.suspect.growth
        if len(points) < 2:
            plt.title("growth: not enough heap summaries yet")
            return
        ts = [t for t, _, _ in points]
        plt.plot(ts, [n for _, n, _ in points], marker="braille", color="cyan", label="items")
        plt.plot(
            ts,
            [b / MIB for _, _, b in points],
            marker="dot",
            color="magenta",
            label="retained MiB",
            yside="right",
        )
        ticks = [ts[0], ts[len(ts) // 2], ts[-1]]
        plt.xticks(ticks, [format_elapsed_tick(t) for t in ticks])
        plt.xlabel("time since first sample")


class SuspectScreen(ModalScreen[None]):
    """An overlay with one suspect's detail; esc, q or enter closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, suspect: SuspectView) -> None:
        super().__init__()
        self.suspect = suspect
        """The suspect shown."""

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="suspect-body") as body:
            body.border_title = "Suspect"
            body.border_subtitle = "esc closes"
            yield Static(suspect_text(self.suspect), id="suspect-text")
            yield GrowthChart(self.suspect, id="suspect-growth")
            yield Static(samples_text(self.suspect), id="suspect-samples")

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
