"""Provides the monitor's key texts: command titles, help descriptions, the help rows.

One place for what the help overlay, the footer and the README's key table say.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from textual.binding import Binding, BindingType

AGENT_COMMANDS: Final = ("take_snapshot", "set_baseline", "collect_garbage", "toggle_tracing")
COMMAND_TITLES: Final = {
    "dump_heap": "Heap dump",
    "export_report": "Report",
    "take_snapshot": "Snapshot",
    "set_baseline": "Baseline",
    "collect_garbage": "GC",
    "set_tracing": "tracemalloc",
    "mark": "Marker",
}
HELP: Final = {
    "request_quit": "Leave the monitor (the target keeps running with its history)",
    "help": "This help",
    "pause": "Pause: stop polling and redrawing",
    "resume": "Resume polling",
    "dump_heap": "Heap dump (a forked copy of the target writes it), then explore it",
    "dumps": "Heap-dump explorer: this session's dumps, their analysis and diff",
    "mark": "Record a marker with a label (the chart and reports show it)",
    "export_report": "Export the JSON report",
    "take_snapshot": "Take a snapshot",
    "set_baseline": "Re-base: growth, Delta and Rate count from now (else from the start)",
    "collect_garbage": "Force a full garbage collection in the target",
    "toggle_tracing": "Turn tracemalloc on or off",
    "filter": "Filter allocators by file or function (esc clears)",
    "next_pane": "Next pane (narrow terminals show one pane at a time)",
    "previous_pane": "Previous pane",
    "close_filter": "Close the filter; esc never quits",
}
_KEY_NAMES: Final = {"question_mark": "?", "slash": "/", "f1": "F1"}


def _keys(key: str) -> str:
    return ", ".join(_KEY_NAMES.get(k, k) for k in key.split(","))


def help_rows(bindings: Sequence[BindingType]) -> list[tuple[str, str]]:
    """Every binding, then the keys that tables and screens handle themselves."""
    rows: list[tuple[str, str]] = []
    for binding in bindings:
        assert isinstance(binding, Binding)
        if binding.action == "resume":
            continue
        text = HELP.get(binding.action, binding.description)
        if binding.action == "pause":
            text = "Pause or resume: stop polling and redrawing"
        rows.append((_keys(binding.key), text))
    rows += [
        ("up, down, pgup, pgdn", "Move the cursor in a table"),
        ("enter", "Details: a suspect's growth and samples, an allocator's full stack"),
        ("o, O", "Sort a table by the next column; reverse the order"),
        ("r", "Sort the table by growth (objects: Delta; allocators: Growth)"),
        (
            "1-3 (explorer)",
            "Dump explorer: types and retainers, diff, this session's dumps; esc back",
        ),
        ("tab, shift+tab", "Move between panes"),
    ]
    return rows
