"""Provides tests of triage_rss on synthetic series and on real programs (tests/leakers)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from memtui.engine.culprits.triage import Sample, triage_rss

MIB = 1024 * 1024
LEAKERS = Path(__file__).resolve().parent / "leakers"


def _series(
    rss_mb: Sequence[float],
    traced_mb: Sequence[float] | None = None,
    blocks: Sequence[float] | None = None,
    free_mb: Sequence[float] | None = None,
) -> list[Sample]:
    out: list[Sample] = []
    for i, r in enumerate(rss_mb):
        out.append(
            (
                i * 60.0,
                r * MIB,
                traced_mb[i] * MIB if traced_mb else None,
                blocks[i] if blocks else None,
                free_mb[i] * MIB if free_mb else None,
            )
        )
    return out


def test_python_objects_when_traced_grows_with_rss() -> None:
    rss = [200 + 5 * i for i in range(30)]
    traced = [50 + 4.5 * i for i in range(30)]
    result = triage_rss(_series(rss, traced))
    assert result.verdict == "python_objects"
    assert result.python_share == pytest.approx(0.9, abs=0.05)
    assert "Python objects" in result.explanation


def test_native_when_rss_grows_and_traced_is_flat() -> None:
    rss = [200 + 5 * i for i in range(30)]
    traced = [50 + (i % 3) * 0.1 for i in range(30)]
    result = triage_rss(_series(rss, traced, free_mb=[2.0] * 30))
    assert result.verdict == "native"
    assert "tracemalloc does not see" in result.explanation


def test_native_from_blocks_alone() -> None:
    rss = [200 + 5 * i for i in range(30)]
    result = triage_rss(_series(rss, blocks=[400_000 + (i % 2) * 50 for i in range(30)]))
    assert result.verdict == "native"
    assert result.blocks_change_share is not None and abs(result.blocks_change_share) < 0.02


def test_python_objects_from_blocks_alone() -> None:
    rss = [200 + 5 * i for i in range(30)]
    result = triage_rss(_series(rss, blocks=[400_000 + 20_000 * i for i in range(30)]))
    assert result.verdict == "python_objects"


def test_retention_when_python_fell_and_rss_stayed_high() -> None:
    rss = [900.0] * 5 + [880.0] * 25
    traced = [600.0] * 5 + [80.0] * 25
    result = triage_rss(_series(rss, traced, free_mb=[10.0] * 5 + [480.0] * 25))
    assert result.verdict == "allocator_retention"
    assert "malloc holds 480 MB free" in result.explanation


def test_retention_when_rss_grows_into_malloc_free_bytes() -> None:
    rss = [300 + 4 * i for i in range(30)]
    traced = [100.0] * 30
    free = [20 + 3.8 * i for i in range(30)]
    assert triage_rss(_series(rss, traced, free_mb=free)).verdict == "allocator_retention"


def test_no_growth_and_too_few_samples() -> None:
    assert triage_rss(_series([300.0 + (i % 4) for i in range(30)], [100.0] * 30)).verdict == (
        "no_growth"
    )
    assert triage_rss(_series([300.0, 400.0])).verdict == "insufficient_data"
    assert triage_rss(_series([300 + 10 * i for i in range(10)])).verdict == "insufficient_data"


def test_mixed_growth() -> None:
    rss = [200 + 5 * i for i in range(30)]
    traced = [50 + 1.8 * i for i in range(30)]
    assert triage_rss(_series(rss, traced)).verdict == "mixed"


@pytest.fixture(scope="module")
def real_runs() -> dict[str, list[Sample]]:
    modes = ("native", "python", "retention")
    procs = {
        m: subprocess.Popen(
            [sys.executable, "native_leak.py", m],
            cwd=LEAKERS,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for m in modes
    }
    out: dict[str, list[Sample]] = {}
    for mode, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        rows = [json.loads(line) for line in stdout.splitlines()]
        out[mode] = [(r["t"], r["rss"], r["traced"], r["blocks"], r["free"]) for r in rows]
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs /proc and libc malloc")
@pytest.mark.parametrize(
    ("mode", "verdict"),
    [("native", "native"), ("python", "python_objects"), ("retention", "allocator_retention")],
)
def test_real_program(real_runs: dict[str, list[Sample]], mode: str, verdict: str) -> None:
    result = triage_rss(real_runs[mode])
    assert result.verdict == verdict, result.explanation
