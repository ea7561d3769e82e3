"""memtui's tracing leaves the raw allocator domain untraced, so CPython's tracemalloc.stop()
race (gh-128679: a thread allocating without the GIL, e.g. zlib, segfaults the program) cannot
hit a watched program. The race itself: benchmarks/soak/tracemalloc_race.py."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
from pathlib import Path

import pytest

from memtui.probe.raw_domain import raw_allocator, start_tracemalloc

RACE = Path(__file__).resolve().parents[1] / "benchmarks" / "soak" / "tracemalloc_race.py"


@pytest.fixture
def not_tracing() -> object:
    if tracemalloc.is_tracing():
        pytest.skip("this test run traces already")
    yield
    if tracemalloc.is_tracing():
        tracemalloc.stop()


def test_start_tracemalloc_unhooks_only_the_raw_domain(not_tracing: object) -> None:
    before = raw_allocator()
    assert before is not None, "ctypes.pythonapi should bind on CPython"
    tracemalloc.start(1)
    assert raw_allocator() != before  # tracemalloc's own start hooks the raw domain...
    tracemalloc.stop()
    assert raw_allocator() == before
    assert start_tracemalloc(1) is True
    try:
        assert raw_allocator() == before  # ... ours puts it back at once
        size = 1000
        kept = [b"x" * size for _ in range(2000)]  # not folded into one constant
        traced, _ = tracemalloc.get_traced_memory()
        assert traced > 2000 * 1000  # Python objects are traced as before
        assert start_tracemalloc(1) is False  # already tracing: left alone
        del kept
    finally:
        tracemalloc.stop()
    assert raw_allocator() == before  # stop() restores what was there, which is the same


def test_a_program_decompressing_in_threads_survives_tracing_windows() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-X",
            "faulthandler",
            str(RACE),
            "--child",
            "memtui",
            "20",
            "--max-windows",
            "400",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    # Enough windows to meet the race: tracemalloc.start() crashed this program in 8 of 12
    # runs of ~600 windows on 3.10-3.13 (benchmarks/soak/tracemalloc_race.py).
    assert int(proc.stdout.split()[1]) >= 100
