"""Provides MemorySource: where a profiler's memory readings come from, with clear errors.

/proc of this process or of a watched pid, or a reader a test injects (synthetic series). A
pid that is gone or not ours is a TargetProcessError with one line saying what to do, raised
when the profiler starts, not a traceback from the sampler thread later.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from memtui.errors import TargetProcessError
from memtui.probe.memory import MemoryReading, ProcMemoryReader


class MemorySource:
    """Opens lazily; ``read(full=True)`` adds USS and PSS when /proc allows."""

    def __init__(self, pid: int, injected: Callable[[], MemoryReading] | None = None) -> None:
        self.pid = pid
        self._injected = injected
        self._reader: ProcMemoryReader | None = None

    def open(self) -> None:
        if self._injected is not None or self._reader is not None:
            return
        try:
            self._reader = ProcMemoryReader(None if self.pid == os.getpid() else self.pid)
        except ProcessLookupError:
            raise TargetProcessError(f"no process with pid {self.pid}") from None
        except PermissionError:
            raise TargetProcessError(
                f"not allowed to read the memory of pid {self.pid}; run memtui as its user or root"
            ) from None

    def read(self, full: bool = False) -> MemoryReading:
        if self._injected is not None:
            return self._injected()
        if self._reader is None:
            self.open()
        assert self._reader is not None
        if full:
            try:
                return self._reader.read_full()
            except PermissionError:
                return self._reader.read()
        return self._reader.read()

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
