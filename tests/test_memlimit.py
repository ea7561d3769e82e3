"""Tests for detect_memory_limit (cgroup / RLIMIT_AS / physical memory)."""

from __future__ import annotations

import os
import subprocess
import sys

from memtui.engine.detect.memlimit import MemoryLimit, detect_memory_limit


def _physical() -> int:
    return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))


def test_self_limit_is_positive_and_at_most_physical() -> None:
    lim = detect_memory_limit()
    assert isinstance(lim, MemoryLimit)
    assert 0 < lim.limit_bytes <= _physical()
    assert lim.source in ("cgroup", "rlimit_as", "physical")


def test_other_pid_uses_prlimit() -> None:
    """A child with a small RLIMIT_AS: reading it from outside names rlimit_as."""
    code = (
        "import resource, sys, time; resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30));"
        "print('ok', flush=True); sys.stdin.readline()"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ok"
        lim = detect_memory_limit(child.pid)
        assert lim.limit_bytes <= 3 << 30
        if lim.limit_bytes == 3 << 30:
            assert lim.source == "rlimit_as"
    finally:
        assert child.stdin is not None
        child.stdin.write("\n")
        child.stdin.flush()
        child.wait(timeout=10)


def test_gone_pid_falls_back_without_error() -> None:
    lim = detect_memory_limit(2**22 + 12345)
    assert lim.limit_bytes > 0
