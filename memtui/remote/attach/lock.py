"""Provides attach_lock: one memtui at a time injects into a given process.

Why: two `memtui attach PID` started together both ran gdb on the target; the second ptrace
attach failed (reported as a permission problem) and the first one's cleanup marked the shared
boot file "cancelled", so both failed and the target was left with none. Under the lock the
second waits, then finds the first one's agent answering and reuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator

from memtui.errors import TargetProcessError


class AttachBusy(TargetProcessError):
    """Another memtui held the target's attach lock for the whole timeout."""


@contextlib.contextmanager
def attach_lock(directory: str, pid: int, deadline: float) -> Iterator[None]:
    """Hold ``directory/attach-PID.lock`` (flock: released if we die) until the block ends."""
    fd = os.open(os.path.join(directory, f"attach-{pid}.lock"), os.O_CREAT | os.O_RDWR, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise AttachBusy(
                        f"another memtui is still attaching to pid {pid}; try again when it is done"
                    ) from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # releases the lock
