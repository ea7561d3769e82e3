"""Provides RecordingHealth: one-line notices when an agent's recording stops or resumes writing.

Why: the recorder in the target never raises (a full disk must not hurt the program), so without
these lines a user would learn only at the end, from a recording with a hole, that the disk
filled up. The agent reports the recorder's state in every frame; this turns its transitions
into lines the CLI prints on stderr and the monitor lists among its events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class RecordingHealth:
    """Remembers whether the recording was failing; ``update`` returns a line on a change."""

    def __init__(self) -> None:
        self.failing = False
        self.errors = 0

    def update(self, state: object) -> str | None:
        """``state``: the agent's ``agent.recording`` (Recorder.state()), or None."""
        if not isinstance(state, Mapping):
            return None
        failing = bool(state.get("failing"))
        errors = _int(state.get("errors"))
        line: str | None = None
        if failing and not self.failing:
            line = (
                f"recording {state.get('path')!s} cannot be written "
                f"({state.get('last_error') or 'unknown error'}); the program keeps running, "
                "new rows wait in memory and are written when space returns"
            )
        elif not failing and self.failing:
            dropped = _int(state.get("dropped"))
            lost = f", {dropped:,} rows dropped" if dropped else ", nothing lost"
            line = f"recording {state.get('path')!s} is being written again{lost}"
        self.failing, self.errors = failing, errors
        return line


def _int(value: Any) -> int:
    return value if type(value) is int else 0
