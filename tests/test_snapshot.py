"""Tests MemorySnapshot's statistics and comparisons on hand-built per-site totals."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from memtui.engine.facts.snapshot import MemorySnapshot
from memtui.engine.facts.sourcemap import function_at
from memtui.probe.memory import MemoryReading
from memtui.probe.tracing import SiteTotals, TraceKey


def _snap(by_tb: dict[TraceKey, tuple[int, int]], t: float = 0.0) -> MemorySnapshot:
    traced = sum(s for s, _ in by_tb.values())
    totals = SiteTotals(by_tb, traced, sum(c for _, c in by_tb.values()), traced, 2)
    return MemorySnapshot(
        timestamp=1_700_000_000.0 + t,
        elapsed_s=t,
        memory=MemoryReading(100 << 20, 200 << 20),
        traces=totals,
    )


A1: TraceKey = (("app.py", 10), ("main.py", 3))
A2: TraceKey = (("app.py", 10), ("main.py", 7))
B: TraceKey = (("lib.py", 5), ("main.py", 3))


def test_top_stats_by_lineno_merges_tracebacks_of_one_line() -> None:
    snap = _snap({A1: (1000, 10), A2: (500, 5), B: (700, 7)})
    top = snap.get_top_stats(limit=10)
    assert [(s.file, s.line, s.size, s.count) for s in top] == [
        ("app.py", 10, 1500, 15),
        ("lib.py", 5, 700, 7),
    ]
    assert top[0].size_mb == pytest.approx(1500 / 2**20)


@pytest.mark.parametrize(
    ("key_type", "expected"),
    [
        pytest.param("traceback", [1000, 700, 500], id="traceback-keeps-paths-apart"),
        pytest.param("filename", [1500, 700], id="filename-sums-a-file"),
    ],
)
def test_top_stats_key_types(key_type: str, expected: list[int]) -> None:
    snap = _snap({A1: (1000, 10), A2: (500, 5), B: (700, 7)})
    assert [s.size for s in snap.get_top_stats(10, key_type)] == expected  # type: ignore[arg-type]


def test_top_stats_limit_and_no_tracing() -> None:
    snap = _snap({A1: (1000, 10), B: (700, 7)})
    assert len(snap.get_top_stats(limit=1)) == 1
    untraced = MemorySnapshot(timestamp=0.0, elapsed_s=0.0, memory=MemoryReading(1, 1))
    assert untraced.get_top_stats() == []


def test_compare_to_reports_growth_first() -> None:
    old = _snap({A1: (1000, 10), B: (700, 7)})
    new = _snap({A1: (5000, 50), B: (600, 6)}, t=60)
    diff = new.compare_to(old, "lineno")
    assert [(d.traceback.frames[0], d.size_diff, d.count_diff) for d in diff] == [
        (("app.py", 10), 4000, 40),
        (("lib.py", 5), -100, -1),
    ]
    assert diff[0].size_diff_mb == pytest.approx(4000 / 2**20)


def test_compare_to_rejects_unknown_key_type() -> None:
    snap = _snap({A1: (1, 1)})
    with pytest.raises(ValueError, match="unknown key_type 'line'"):
        snap.compare_to(snap, "line")  # type: ignore[arg-type]


def test_function_names_come_from_the_source(tmp_path: Path) -> None:
    src = tmp_path / "svc.py"
    src.write_text(
        textwrap.dedent("""\
        import os

        class Book:
            def add_order(self, o):
                self.orders.append(o)

        def main():
            def inner():
                return [1]
            return inner()
        """)
    )
    assert function_at(str(src), 5) == "Book.add_order"
    assert function_at(str(src), 9) == "main.inner"
    assert function_at(str(src), 10) == "main"
    assert function_at(str(src), 1) == "<module>"
    assert function_at(str(tmp_path / "missing.py"), 3) == "<module>"


def test_report_dict_is_the_spec_entry() -> None:
    snap = _snap({A1: (1, 1)})
    entry = snap.to_report_dict()
    assert set(entry) >= {"timestamp", "memory_mb", "top_types"}
    assert entry["memory_mb"] == 100.0
    assert entry["timestamp"] == "2023-11-14T22:13:20"
