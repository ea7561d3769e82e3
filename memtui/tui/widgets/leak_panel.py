"""Provides LeakPanel: the leak verdict (OK / suspected / LEAK), rate, confidence, OOM, suspects."""

from __future__ import annotations

from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive
from textual.widget import Widget

from memtui.engine.frame import VerdictView
from memtui.tui.units import format_duration, format_percent, format_rate_mib_per_hour

STATE_WORDS = {
    "ok": "OK",
    "suspected": "SUSPECTED LEAK",
    "leak": "LEAK",
    "insufficient_data": "NOT ENOUGH DATA",
}


def verdict_text(verdict: VerdictView) -> Text:
    """The verdict in words; the state word carries the meaning, colour only underlines it."""
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
    if verdict.suspects:
        text.append("suspects:\n", style="bold")
        for i, suspect in enumerate(verdict.suspects, 1):
            text.append(f"{i}. {suspect}\n")
    text.rstrip()
    return text


class LeakPanel(Widget):
    """The leak-verdict pane, with a state class (-ok, -suspected, -leak) for colour."""

    verdict: reactive[VerdictView | None] = reactive(None)
    """The latest verdict."""

    def watch_verdict(self, verdict: VerdictView | None) -> None:
        for state in ("ok", "suspected", "leak"):
            self.set_class(verdict is not None and verdict.state == state, f"-{state}")

    def render(self) -> RenderResult:
        if self.verdict is None:
            return Text("no verdict yet", style="italic")
        return verdict_text(self.verdict)
