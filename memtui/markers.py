"""Provides mark(): a labelled instant ("deploy 42") that recordings, the chart and reports show.

Standard library only, cheap (a few µs) and safe from any thread: the marker goes into every
open Recorder of this process (the agent's, a MemoryProfiler's) and to the marker sinks the
agent registers so that a connected monitor sees it live. It is written to disk with the
recorder's next commit (within about a second), or at once with ``flush=True``.
"""

from __future__ import annotations

from memtui.probe.recorder import active_recorders, emit_marker

__all__ = ["mark"]


def mark(label: str, *, at: float | None = None, flush: bool = False) -> bool:
    """Record ``label`` at wall time ``at`` (default: now); True when something took it.

    False means nothing in this process records or watches (no agent, no profiler with a
    recording): the call is then a harmless no-op, so it can stay in production code.
    """
    taken = emit_marker(label, at, "target")
    if flush:
        for rec in active_recorders():
            rec.flush()
    return taken > 0
