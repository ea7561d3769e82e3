"""Provides run_analysis: one heap-dump analysis in a bounded child process, cancellable.

Called from worker threads: it blocks, but only its thread. The child (memtui.tui.dumps.child)
gets an address-space bound (``MEMTUI_ANALYZE_LIMIT_MB``, default 4096 MiB); hitting it is a
clear message, not a crash of the monitor.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any, Final

from memtui.tui.dumps.child import EXIT_BAD_DUMP, EXIT_BOUND

DEFAULT_LIMIT_MB: Final = 4096
WAIT_FOR_FILE_S: Final = 600.0
"""How long to wait for a dump the target is still writing."""


class AnalysisFailed(Exception):
    """The analysis could not be done; the message is one line for the screen."""


def limit_mb() -> int:
    """The child's address-space bound in MiB (MEMTUI_ANALYZE_LIMIT_MB, at least 64)."""
    try:
        value = int(os.environ.get("MEMTUI_ANALYZE_LIMIT_MB", DEFAULT_LIMIT_MB))
    except ValueError:
        value = DEFAULT_LIMIT_MB
    return max(64, value)


def wait_for_file(path: str, cancel: threading.Event, timeout_s: float = WAIT_FOR_FILE_S) -> None:
    """Return once ``path`` exists (dumps appear whole: written aside, then renamed)."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(path):
        if cancel.is_set():
            raise AnalysisFailed("cancelled")
        if time.monotonic() >= deadline:
            if not timeout_s:
                raise AnalysisFailed(f"{path}: no such file")
            raise AnalysisFailed(f"{path} did not appear within {timeout_s:.0f} s")
        cancel.wait(0.25)


def run_analysis(
    args: Sequence[str],
    cancel: threading.Event,
    bound_mb: int | None = None,
    timeout_s: float = 900.0,
) -> dict[str, Any]:
    """Run the child with ``args`` ('analyze FILE [--type T]' or 'diff BEFORE AFTER').

    Raises AnalysisFailed with one line: the bound was hit, the dump is bad, it was cancelled.
    """
    bound = limit_mb() if bound_mb is None else bound_mb
    env = dict(os.environ)
    # One BLAS thread: no per-thread arenas counted against the bound, no core taken from
    # the target.
    env.update(OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "memtui.tui.dumps.child", "--limit-mb", str(bound), *args]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
    )
    done = threading.Event()

    def watch() -> None:
        # Kill the child when the screen that asked goes away or the time is up.
        deadline = time.monotonic() + timeout_s
        while not done.wait(0.2):
            if cancel.is_set() or time.monotonic() > deadline:
                proc.kill()
                return

    watcher = threading.Thread(target=watch, name="memtui-analysis-watch", daemon=True)
    watcher.start()
    try:
        out, err = proc.communicate()
    finally:
        done.set()
    if cancel.is_set():
        raise AnalysisFailed("cancelled")
    why = (err.strip().splitlines() or [""])[-1]
    bound_hit = proc.returncode == EXIT_BOUND or (
        proc.returncode != 0 and "memory allocation" in err.lower()  # OpenBLAS at import
    )
    if bound_hit:
        if proc.returncode != EXIT_BOUND:
            why = f"the analysis needs more than {bound} MiB"
        raise AnalysisFailed(
            f"{why} (its bound; raise MEMTUI_ANALYZE_LIMIT_MB, or run "
            "`memtui heapdump analyze FILE` on a machine with more memory)"
        )
    if proc.returncode == EXIT_BAD_DUMP:
        raise AnalysisFailed(why)
    if proc.returncode != 0:
        if proc.returncode < 0:
            why = f"the analysis was killed (signal {-proc.returncode})"
        raise AnalysisFailed(why or f"the analysis failed (exit {proc.returncode})")
    try:
        result = json.loads(out)
    except ValueError:
        raise AnalysisFailed("the analysis printed no result") from None
    if not isinstance(result, dict):
        raise AnalysisFailed("the analysis printed no result")
    return result
