"""Provides RunRecording: the profiler run's SQLite recording, and the markers seen meanwhile.

Why apart from the profiler: opening a recording can fail (a full disk, a read-only
directory) and must never stop profiling; the failure becomes one line in the report's errors.
"""

from __future__ import annotations

import os
import time
from collections import deque
from pathlib import Path
from typing import Any

from memtui.probe.clock import Clock
from memtui.probe.recorder import (
    Recorder,
    RecorderError,
    add_marker_sink,
    default_meta,
    remove_marker_sink,
)

MAX_MARKERS: int = 1000


class RunRecording:
    """The recording of one profiler (None until opened) and the markers of the run."""

    def __init__(self, clock: Clock, errors: list[str]) -> None:
        self.recorder: Recorder | None = None
        self.markers: deque[dict[str, Any]] = deque(maxlen=MAX_MARKERS)
        self._clock = clock
        self._errors = errors
        self._start_wall = clock.time()

    def open(
        self, path: Path | None, output_dir: Path | None, meta: dict[str, Any], pid: int
    ) -> None:
        """Open ``path`` (or a new memtui_PID_STAMP.db under ``output_dir``) once."""
        if self.recorder is not None and not self.recorder.closed:
            return
        if path is None and output_dir is not None:
            stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(self._clock.time()))
            path = output_dir / f"memtui_{pid}_{stamp}.db"
        if path is None:
            return
        self._start_wall = float(meta.get("started_at", self._clock.time()))
        full = {**default_meta(), **meta}
        if pid != os.getpid():
            argv = _cmdline(pid)
            full.update(python=None, executable=None)
            full.pop("argv", None)
            if argv is not None:
                full["argv"] = argv
        try:
            self.recorder = Recorder(
                path,
                full,
                monotonic=self._clock.monotonic,
                # With a simulated clock, commit hourly: a week stays ~170 commits, not 604,800.
                flush_interval_s=1.0 if self._clock.realtime else 3600.0,
            )
        except (RecorderError, OSError) as exc:
            if len(self._errors) < 20:
                self._errors.append(f"recording: {exc}")
            return
        add_marker_sink(self._on_marker)

    def close(self) -> None:
        remove_marker_sink(self._on_marker)
        if self.recorder is not None:
            self.recorder.close(ended_at=self._clock.time())

    @property
    def path(self) -> str | None:
        return self.recorder.path if self.recorder is not None else None

    def _on_marker(self, t: float, label: str, source: str) -> None:
        self.markers.append(
            {
                "at_seconds": round(t - self._start_wall, 3),
                "timestamp": t,
                "label": label,
                "source": source,
            }
        )


def _cmdline(pid: int) -> list[str] | None:
    """The argv of ``pid`` from /proc (None when unreadable)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    return [a.decode("utf-8", "replace") for a in raw.split(b"\0") if a] or None
