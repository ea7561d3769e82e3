"""Allocation sites name the program's own line, with growth, rate and what size means."""

from __future__ import annotations

import json
import os
import tracemalloc
from pathlib import Path

import pytest

from memtui.engine.culprits.site_rows import SiteLeak, stats_from_rows, window_leaks
from memtui.engine.culprits.sites import AllocationSiteTracker
from memtui.engine.detect.detector import LeakDetector
from memtui.engine.facts.frames import decode_site_rows
from memtui.engine.facts.metrics import MemoryMetrics
from memtui.engine.facts.snapshot import AllocationStat, AllocationTraceback, MemorySnapshot
from memtui.engine.monitor.view import allocator_rows
from memtui.engine.report.json_report import ReportInput, SourceInfo, build_report
from memtui.probe.memory import MemoryReading
from memtui.probe.tracing import (
    SiteTotals,
    TraceKey,
    group_by_site,
    is_user_file,
    site_index,
)
from memtui.probe.window_rank import Window, process_block_rate, rank_windows, sign_test_p

JSON_DIR = os.path.dirname(json.__file__)
DECODER = (os.path.join(JSON_DIR, "decoder.py"), 353)
LOADS = (os.path.join(JSON_DIR, "__init__.py"), 346)
APP = "/srv/app/service.py"
SITE_PKG = "/srv/venv/lib/python3.12/site-packages/framework/dispatch.py"
MEMTUI_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "memtui")

# json.loads called by the app (line 20), itself called by a framework, called by the app.
DECODE_STACK: TraceKey = (DECODER, LOADS, (APP, 20), (SITE_PKG, 88), (APP, 5))


def test_the_first_frame_of_the_program_is_the_site() -> None:
    assert site_index(DECODE_STACK) == 2
    assert site_index(((APP, 7), DECODER)) == 0  # the app's own line allocated
    frozen = (("<frozen importlib._bootstrap>", 241), DECODER, (APP, 3))
    assert site_index(frozen) == 2


def test_library_only_stacks_fall_back_to_the_innermost_real_frame() -> None:
    stack: TraceKey = (("<frozen importlib._bootstrap>", 1), (SITE_PKG, 4), DECODER)
    assert site_index(stack) == 1
    assert site_index((("<frozen runpy>", 1),)) == 0
    assert site_index(()) == 0


def test_what_counts_as_the_programs_code() -> None:
    assert is_user_file(APP) and is_user_file(__file__)
    assert not is_user_file(DECODER[0]) and not is_user_file(SITE_PKG)
    assert not is_user_file("/usr/lib/python3/dist-packages/yaml/constructor.py")
    assert not is_user_file("/opt/other/lib/python3.13/logging/__init__.py")  # another Python
    assert not is_user_file("<string>")  # dataclass/namedtuple methods: the caller is named
    assert not is_user_file(os.path.join(MEMTUI_FILE, "probe", "agent.py"))
    assert is_user_file(os.path.join(MEMTUI_FILE, "demo.py"))


def test_sites_sum_every_path_to_one_line_and_keep_the_heaviest_stack() -> None:
    other_path: TraceKey = (DECODER, LOADS, (APP, 20), (APP, 9))
    grouped, stacks = group_by_site({DECODE_STACK: (1000, 10), other_path: (300, 3)})
    assert grouped == {((APP, 20),): (1300, 13)}
    assert stacks[((APP, 20),)] == DECODE_STACK


def _snapshot(by_tb: dict[TraceKey, tuple[int, int]], t: float = 0.0) -> MemorySnapshot:
    traces = SiteTotals(by_tb, sum(v[0] for v in by_tb.values()), 0, 0, 8)
    return MemorySnapshot(timestamp=t, elapsed_s=t, memory=MemoryReading(1, 1), traces=traces)


def test_snapshot_stats_are_per_site_with_the_full_traceback() -> None:
    other_path: TraceKey = (DECODER, LOADS, (APP, 20), (APP, 9))
    snap = _snapshot({DECODE_STACK: (1000, 10), other_path: (300, 3), ((APP, 40),): (50, 1)})
    top = snap.get_top_stats(5)
    assert [(s.file, s.line, s.size) for s in top] == [(APP, 20, 1300), (APP, 40, 50)]
    assert top[0].traceback.frames == DECODE_STACK and top[0].user_code
    assert str(top[0].traceback).startswith(f"{APP}:20 in ")
    assert len(top[0].traceback.format()) == len(DECODE_STACK)
    assert [s.size for s in snap.get_top_stats(5, "traceback")] == [1000, 300, 50]
    later = _snapshot({other_path: (2000, 20)})
    diff = later.compare_to(snap)
    assert [(d.location.split(" in ")[0], d.size_diff) for d in diff] == [
        (f"{APP}:20", 700),
        (f"{APP}:40", -50),
    ]


def test_the_tracker_follows_sites_and_reports_growth_from_the_second_snapshot() -> None:
    tracker = AllocationSiteTracker()
    stat = AllocationStat(AllocationTraceback(DECODE_STACK), 1000, 10)
    tracker.observe(0.0, {DECODE_STACK: (1000, 10)})
    assert tracker.with_growth([stat])[0].growth_bytes is None
    for i in range(1, 5):
        other_path: TraceKey = (DECODER, LOADS, (APP, 20), (APP, 9))
        tracker.observe(60.0 * i, {DECODE_STACK: (1000 + 500_000 * i, 10), other_path: (7, 1)})
    grown = tracker.with_growth([stat])[0]
    assert grown.growth_bytes == 2_000_007 and grown.growth_mb_per_hour is not None
    assert grown.growth_mb_per_hour == pytest.approx(500_000 * 60 / 2**20, rel=0.01)
    leaking = tracker.leaking()
    assert [g.key for g in leaking] == [DECODE_STACK]


def _window(t: float, growth: int, end: int | None = None) -> Window:
    site: TraceKey = ((APP, 20),)
    return Window(
        t_end=t,
        traced_s=0.25,
        half_s=0.125,
        cost_s=0.001,
        sites={site: (end if end is not None else max(growth, 0), 1, growth, 1)},
        stacks={site: DECODE_STACK},
    )


def test_window_rows_fill_growth_and_rate_from_the_second_window() -> None:
    one = rank_windows([_window(10.0, 1250)], started_at=0.0)[0]
    assert one["growth_bytes"] is None and one["rate_mb_per_hour"] is None
    assert (one["file"], one["line"], one["site"]) == (APP, 20, 2)
    assert one["frames"] == [list(f) for f in DECODE_STACK] and one["size_kind"] == "window"
    two = rank_windows([_window(10.0, 1250), _window(25.0, 1250)], started_at=0.0)[0]
    assert two["growth_bytes_per_s"] == 10_000.0
    assert two["growth_bytes"] == 250_000  # 10 kB/s over the 25 s watched
    assert two["rate_mb_per_hour"] == round(10_000 * 3600 / 2**20, 4)


def test_the_sign_test_decides_what_is_suspect() -> None:
    assert sign_test_p(5, 5) == 1 / 32 and sign_test_p(0, 0) == 1.0
    steady = [_window(15.0 * i, 1250) for i in range(5)]
    assert rank_windows(steady)[0]["suspect"]
    few = [_window(15.0 * i, 1250) for i in range(4)]
    assert not rank_windows(few)[0]["suspect"]  # 4 of 4 can be luck (p = 1/16)
    mixed = [_window(15.0 * i, (1250, -1250)[i % 2]) for i in range(8)]
    assert not rank_windows(mixed)[0]["suspect"]


def _rows(n: int = 6, growth: int = 1250) -> list[dict[str, object]]:
    return rank_windows([_window(15.0 * i, growth) for i in range(n)], started_at=0.0)


def test_window_leaks_need_consistent_growth_and_a_leaking_process() -> None:
    rows = _rows()
    rate = float(rows[0]["rate_mb_per_hour"])  # type: ignore[arg-type]
    leaks = window_leaks(decode_site_rows(rows), True, rate)
    assert [(s.stat.file, s.stat.line) for s in leaks] == [(APP, 20)]
    assert leaks[0].windows == 6 and leaks[0].p_value == 1 / 64
    assert leaks[0].stat.size_kind == "window"
    assert (
        window_leaks(decode_site_rows(rows), False, 0.0) == []
    )  # turnover in a flat process is no leak
    assert (
        window_leaks(decode_site_rows(rows), True, rate * 0.1) == []
    )  # the process grows far slower
    assert window_leaks(decode_site_rows(_rows(3)), True, rate) == []  # 3 of 3: not enough evidence
    assert window_leaks(decode_site_rows(_rows(growth=1)), True, 1e6) == []  # under the rate floor


def test_allocator_rows_carry_size_kind_growth_and_rate() -> None:
    stats = stats_from_rows(decode_site_rows(_rows()), "held")
    rows = allocator_rows(stats)
    assert rows[0].size_kind == "window" and (rows[0].file, rows[0].line) == (APP, 20)
    assert rows[0].growth_bytes is not None and rows[0].growth_mb_per_hour is not None
    assert rows[0].traceback[-1].startswith(f"{DECODER[0]}:{DECODER[1]}")  # innermost last
    # After a baseline: held sizes are compared with it, window figures use the rate.
    held = AllocationStat(AllocationTraceback(DECODE_STACK), 3000, 3)
    base: dict[TraceKey, tuple[int, int]] = {(DECODER, LOADS, (APP, 20), (APP, 1)): (1000, 1)}
    (row,) = allocator_rows([held], base, 3600.0)
    assert row.size_kind == "held" and row.growth_bytes == 2000
    (later,) = allocator_rows(stats[:1], base, 1800.0)
    assert later.growth_mb_per_hour == stats[0].growth_mb_per_hour
    assert later.growth_bytes == int(stats[0].growth_mb_per_hour * 2**20 / 2)  # type: ignore[operator]


def test_report_says_what_size_means_and_names_leaking_lines() -> None:
    stats = stats_from_rows(decode_site_rows(_rows()))
    rate = stats[0].growth_mb_per_hour or 0.0
    tracker = AllocationSiteTracker()
    for i in range(4):
        tracker.observe(60.0 * i, {((APP, 77),): (100_000 * (i + 1), i + 1)})
    data = ReportInput(
        source=SourceInfo(pid=1, kind="agent"),
        start_wall=0.0,
        end_wall=60.0,
        metrics=MemoryMetrics(),
        verdict=LeakDetector().final_verdict(),
        growth_threshold_mb_per_hour=10.0,
        alert_threshold_mb=None,
        top_allocators=tuple(stats),
        leaking_sites=(*window_leaks(decode_site_rows(_rows()), True, rate), *tracker.leaking()),
    )
    report = build_report(data)
    top = report["top_allocators"][0]
    assert (top["file"], top["line"], top["size_kind"], top["user_code"]) == (
        APP,
        20,
        "window",
        True,
    )
    assert "not what it holds" in top["size_means"]
    assert top["growth_mb"] is not None and top["growth_mb_per_hour"] == round(rate, 4)
    assert top["traceback"][0] == f"{DECODER[0]}:{DECODER[1]}"
    leaking = report["leak_detection"]["leaking_allocators"]
    assert [(e["line"], e["method"]) for e in leaking] == [(20, "windows"), (77, "snapshots")]
    assert leaking[0]["of_windows"] == 6 and leaking[1]["r_squared"] == 1.0
    assert isinstance(SiteLeak.from_growth(tracker.leaking()[0]).stat, AllocationStat)


def test_a_real_window_attributes_json_allocations_to_the_callers_line() -> None:
    """tracemalloc with 8 frames, as a watch window traces: json's own line is not the site."""
    assert not tracemalloc.is_tracing()
    kept = []
    tracemalloc.start(8)
    try:
        for i in range(200):
            kept.append(json.loads(f'{{"id": {i}, "tags": ["a", "b"]}}'))  # the site
        snapshot = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    site_line = _marked_line(__file__, "# the site")
    traces = snapshot.traces._traces  # type: ignore[attr-defined]
    from memtui.probe.tracing import aggregate_raw_traces, visible_totals

    grouped, stacks = group_by_site(visible_totals(aggregate_raw_traces(traces)))
    top = max(grouped, key=lambda k: grouped[k][0])
    assert top == ((__file__, site_line),)
    assert stacks[top][0][0].startswith(JSON_DIR)  # the traceback still shows json's frames
    assert len(kept) == 200


def _marked_line(path: str, marker: str) -> int:
    lines = Path(path).read_text().splitlines()
    return next(i for i, text in enumerate(lines, 1) if text.rstrip().endswith(marker))


def test_a_site_that_appears_after_the_first_snapshot_leaks_by_the_third() -> None:
    """Snapshots every 60 s over two minutes: 0 s (before the line ran), 60 s, 120 s."""
    tracker = AllocationSiteTracker()
    tracker.observe(0.0, {((APP, 1),): (500, 5)})
    tracker.observe(60.0, {DECODE_STACK: (1_000_000, 1000), ((APP, 1),): (500, 5)})
    assert tracker.leaking() == []
    tracker.observe(120.0, {DECODE_STACK: (2_000_000, 2000), ((APP, 1),): (500, 5)})
    (leak,) = tracker.leaking()
    assert leak.key == DECODE_STACK and leak.snapshots == 3
    assert leak.growth_mb_per_hour == pytest.approx(1_000_000 * 60 / 2**20)


def test_a_site_whose_blocks_the_interpreter_does_not_keep_is_turnover() -> None:
    """A deque(maxlen=...) or TTL cache turning over slower than a window grows in every
    window like a leak; the interpreter's allocated blocks tell: kept blocks add up."""
    rows = decode_site_rows(_rows())
    assert rows[0].blocks_per_s == 8.0  # one block per 0.125-s half window
    rate = float(rows[0].rate_mb_per_hour or 0)
    kept = window_leaks(rows, True, rate, process_blocks_per_s=8.0)
    assert [(s.stat.file, s.stat.line) for s in kept] == [(APP, 20)]
    noisy = window_leaks(rows, True, rate, process_blocks_per_s=4.5)  # the same spans, noise
    assert len(noisy) == 1
    assert window_leaks(rows, True, rate, process_blocks_per_s=0.5) == []  # freed as made
    assert window_leaks(rows, True, rate, process_blocks_per_s=None) != []  # not measured


def test_the_process_block_rate_is_the_median_of_the_windows_second_halves() -> None:
    """A window in which another thread freed a big buffer (-1300 blocks) moves no verdict;
    windows of an older agent (not measured) are left out."""
    halves = [1, -2, 3, -1300, 0, 2]
    windows = [_window(float(i), 1250)._replace(process_blocks=b) for i, b in enumerate(halves)]
    assert process_block_rate(windows) == 4.0  # median 0.5 block per 0.125-s half
    assert process_block_rate([_window(0.0, 1250)]) is None
    assert process_block_rate([*windows, _window(9.0, 1250)]) == process_block_rate(windows)
