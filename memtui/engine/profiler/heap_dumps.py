"""Provides ProfilerDumps: the profiler's heap dumps, on demand and on a threshold crossing.

Why apart from the profiler: a dump is a forked walk that takes seconds, written off the
sampler thread (HeapDumpTrigger); what the profiler needs is the newest file, each new file
noted in the run's recording once, and one clear error when no dump can be made.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memtui.engine.heap.trigger import HeapDumpTrigger
from memtui.errors import HeapDumpError
from memtui.probe.heap.dump import HeapDumpFailed, write_heap_dump
from memtui.probe.recorder import Recorder

HEAP_DUMP_COOLDOWN_S: float = 600.0
"""At most one threshold-triggered heap dump per this many seconds."""


class ProfilerDumps:
    """Dumps of this process: the threshold trigger (when asked for) and dump_heap()."""

    def __init__(
        self,
        directory: Path,
        threshold_mb: float | None,
        wall: Callable[[], float],
        errors: list[str],
    ) -> None:
        self.directory = directory
        self.written: list[str] = []
        self._wall = wall
        self._recorded = 0
        self.trigger: HeapDumpTrigger | None = None
        if threshold_mb is not None:
            self.trigger = HeapDumpTrigger(
                threshold_mb, directory, os.getpid(), wall, HEAP_DUMP_COOLDOWN_S, errors.append
            )

    def observe(self, now: float, rss_mb: float) -> None:
        """A memory reading: a crossing of the threshold starts a dump (off-thread)."""
        if self.trigger is not None:
            self.trigger.observe(now, rss_mb)

    def dump_now(self, path: str | os.PathLike[str] | None, rec: Recorder | None) -> str:
        """Dump the heap to ``path`` (default: a new file in the directory); HeapDumpError."""
        target = str(path) if path is not None else str(self.directory)
        try:
            result = write_heap_dump(target)
        except HeapDumpFailed as exc:
            raise HeapDumpError(str(exc)) from None
        self.written.append(result.path)
        if rec is not None and not rec.closed:
            rec.add_dump(self._wall(), result.path, result.to_dict())
        return result.path

    def latest(self) -> str | None:
        """The newest dump file, waiting (up to 60 s) for a threshold dump under way."""
        if self.trigger is not None:
            self.trigger.wait(60.0)
        trigger = self.trigger.latest if self.trigger is not None else None
        candidates = [p for p in (*self.written, trigger) if p is not None]
        return max(candidates, key=_mtime) if candidates else None

    def record_new(self, rec: Recorder) -> None:
        """Note the threshold dumps written since the last call in the recording."""
        if self.trigger is None:
            return
        with self.trigger._lock:
            new = self.trigger.paths[self._recorded :]
        for path in new:
            rec.add_dump(self._wall(), path, {"path": path, "trigger": "threshold"})
        self._recorded += len(new)


class HeapDumpMethods:
    """The spec's heap-dump methods of MemoryProfiler."""

    pid: int
    _dumps: ProfilerDumps

    @property
    def recorder(self) -> Recorder | None:
        raise NotImplementedError

    @property
    def latest_heap_dump(self) -> str | None:
        """Path of the newest heap dump this profiler wrote (on demand or on threshold); waits
        (up to 60 s) for a threshold dump under way, so the spec's example finds its file."""
        return self._dumps.latest()

    def dump_heap(self, path: str | os.PathLike[str] | None = None) -> str:
        """Dump this process's heap to ``path`` (default: a new file under heap_dump_dir) and
        return the path once the file is complete. The fork writer pauses the process only for
        the fork; HeapDumpError when no dump can be made."""
        if not (self.pid == os.getpid()):
            raise HeapDumpError(
                f"heap dumps are taken inside the process: use `memtui heapdump {self.pid}`"
            )
        return self._dumps.dump_now(path, self.recorder)

    async def analyze_heap_dump(
        self, path: str | os.PathLike[str], type_name: str | None = None
    ) -> dict[str, Any]:
        """Retained sizes by type, largest retainers and (with ``type_name``) the shortest
        reference chains to its instances; runs in a worker thread."""
        from memtui.engine.heap.dumps import analyze_heap_dump

        return await asyncio.to_thread(analyze_heap_dump, str(path), type_name)


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return 0.0
