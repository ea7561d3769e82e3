"""Provides HeapDumpTrigger: one heap dump per upward crossing of a memory threshold, off-thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from memtui.probe.heap.dump import HeapDumpFailed, start_heap_dump, unique_path

REARM_SHARE: float = 0.95
"""The trigger re-arms once memory falls below this share of the threshold."""


class HeapDumpTrigger:
    """Dumps the heap when RSS crosses ``threshold_mb`` upward, at most once per crossing and
    never within ``cooldown_s`` of the previous dump. The dump starts in a thread of its own,
    so the sampler that calls ``observe`` never waits for it (the fork writer pauses the
    process for the fork only)."""

    def __init__(
        self,
        threshold_mb: float,
        directory: Path,
        pid: int,
        clock_time: Callable[[], float],
        cooldown_s: float = 600.0,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        self.threshold_mb = threshold_mb
        self.directory = directory
        self.pid = pid
        self.cooldown_s = cooldown_s
        self._time = clock_time
        self._on_error = on_error
        self._armed = True
        self._last_at: float | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.paths: list[str] = []
        self.crossings = 0

    def observe(self, t_s: float, rss_mb: float) -> bool:
        """Feed one sample (``t_s``: monotonic seconds); True when a dump was started."""
        if rss_mb < self.threshold_mb * REARM_SHARE:
            self._armed = True
            return False
        if rss_mb < self.threshold_mb or not self._armed:
            return False
        self._armed = False
        self.crossings += 1
        if self._last_at is not None and t_s - self._last_at < self.cooldown_s:
            return False
        if self._thread is not None and self._thread.is_alive():
            return False
        self._last_at = t_s
        path = unique_path(str(self.directory), self.pid, self._time())
        self._thread = threading.Thread(
            target=self._dump, args=(path,), name="memtui-heapdump", daemon=True
        )
        self._thread.start()
        return True

    def _dump(self, path: str) -> None:
        try:
            job = start_heap_dump(path)
            job.wait()
            result = job.result()
        except HeapDumpFailed as exc:
            if self._on_error is not None:
                self._on_error(f"heap dump on threshold failed: {exc}")
            return
        with self._lock:
            self.paths.append(result.path)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a dump under way; True when none is running any more."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    @property
    def latest(self) -> str | None:
        with self._lock:
            return self.paths[-1] if self.paths else None
