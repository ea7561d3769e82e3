"""Provides tests of ProcMemoryReader against real processes and real allocations."""

from __future__ import annotations

import mmap
import os
import subprocess
import sys
import textwrap
import time

import pytest

from memtui.probe.memory import MemoryReading, ProcMemoryReader, parse_smaps

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc")


def test_read_matches_statm_and_grows_with_allocation() -> None:
    with ProcMemoryReader() as reader:
        before = reader.read()
        assert isinstance(before, MemoryReading)
        assert before.rss_bytes > 0
        assert before.vms_bytes >= before.rss_bytes
        assert before.uss_bytes is None
        block = _fresh_pages(50 * 1024 * 1024)
        after = reader.read()
        assert after.rss_bytes - before.rss_bytes >= 45 * 1024 * 1024
        block.close()


def _fresh_pages(size: int) -> mmap.mmap:
    """New private resident memory: an anonymous mapping with every page touched.

    A bytearray could reuse memory this (long-lived test) process freed earlier.
    """
    block = mmap.mmap(-1, size)
    for i in range(0, size, mmap.PAGESIZE):
        block[i] = 1
    return block


def test_read_full_reports_uss_pss_swap() -> None:
    with ProcMemoryReader() as reader:
        full = reader.read_full()
        assert full.uss_bytes is not None and full.pss_bytes is not None
        assert full.swap_bytes is not None and full.swap_bytes >= 0
        assert 0 < full.uss_bytes <= full.pss_bytes <= full.rss_bytes * 1.1
        block = _fresh_pages(20 * 1024 * 1024)
        grown = reader.read_full()
        assert grown.uss_bytes is not None
        assert grown.uss_bytes - full.uss_bytes >= 18 * 1024 * 1024
        block.close()


def test_smaps_fallback_sums_every_mapping(monkeypatch: pytest.MonkeyPatch) -> None:
    with ProcMemoryReader() as reader:
        rollup = reader.read_full()
    with ProcMemoryReader() as reader:
        real_open = reader._open

        def no_rollup(name: str) -> int:
            if name == "smaps_rollup":
                raise FileNotFoundError(name)
            return real_open(name)

        monkeypatch.setattr(reader, "_open", no_rollup)
        summed = reader.read_full()
        assert not reader._full_is_rollup
    assert summed.uss_bytes is not None and rollup.uss_bytes is not None
    assert abs(summed.uss_bytes - rollup.uss_bytes) < 8 * 1024 * 1024


def test_parse_smaps_sums_blocks() -> None:
    text = textwrap.dedent(
        """\
        00400000-00401000 r-xp 00000000 08:01 1 /bin/x
        Rss:                   8 kB
        Pss:                   4 kB
        Private_Clean:         1 kB
        Private_Dirty:         2 kB
        Swap:                  3 kB
        SwapPss:               9 kB
        7f000000-7f001000 rw-p 00000000 00:00 0
        Pss:                  10 kB
        Private_Dirty:        10 kB
        Swap:                  0 kB
        """
    ).encode()
    assert parse_smaps(text) == (13 * 1024, 14 * 1024, 3 * 1024)


def test_other_process_and_dead_pid() -> None:
    child = subprocess.Popen(["sleep", "0"])
    child.wait()
    with pytest.raises(ProcessLookupError):
        ProcMemoryReader(child.pid)


def test_process_dying_under_an_open_reader() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.3)"])
    try:
        reader = ProcMemoryReader(child.pid)
        assert reader.read().rss_bytes > 0
        assert reader.read_full().pss_bytes is not None
    finally:
        child.wait()
    with pytest.raises(ProcessLookupError):
        reader.read()
    with pytest.raises(ProcessLookupError):
        reader.read_full()
    reader.close()
    reader.close()  # idempotent


def test_zombie_reads_as_gone() -> None:
    child = subprocess.Popen(["sleep", "0"])
    # Not reaped until we wait, so the pid is still ours to open even once it exited.
    reader = ProcMemoryReader(child.pid)
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                reader.read()
            except ProcessLookupError:
                break  # an exited, unreaped zombie whose statm reads zeros
            time.sleep(0.01)
        else:
            pytest.fail("zombie never reported as gone")
    finally:
        reader.close()
        child.wait()


def test_closed_reader_refuses() -> None:
    reader = ProcMemoryReader()
    reader.close()
    with pytest.raises(ValueError):
        reader.read()


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_permission_error_for_another_users_smaps() -> None:
    """A process running as 'nobody' may read our statm but not our smaps_rollup."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {os.path.dirname(os.path.dirname(os.path.abspath(__file__)))!r})
        from memtui.probe.memory import ProcMemoryReader
        r = ProcMemoryReader({os.getpid()})
        assert r.read().rss_bytes > 0
        try:
            r.read_full()
        except PermissionError as e:
            print("PERM", e)
        """
    )
    result = None
    # The venv's interpreter may sit under a directory 'nobody' cannot enter; the probe
    # is standard library only, so any Python 3.10+ that 'nobody' can run will do.
    for python in (sys.executable, "/usr/bin/python3"):
        try:
            result = subprocess.run(
                [python, "-I", "-c", code],
                capture_output=True,
                text=True,
                user=65534,
                group=65534,
                timeout=30,
                check=False,
            )
        except (PermissionError, FileNotFoundError):
            continue
        if result.returncode == 0 or "PERM" in result.stdout:
            break
    if result is None or result.returncode != 0:
        pytest.skip("no interpreter that user nobody can run here")
    if "ModuleNotFoundError" in result.stderr or "Permission denied" in result.stderr:
        pytest.skip("nobody cannot read the checkout")
    assert "PERM" in result.stdout, result.stderr
    assert "same user" in result.stdout
