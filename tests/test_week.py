"""Provides the simulated 7-day run: a week at 1 sample/s recorded in seconds on a FakeClock.

The series is a GC sawtooth (20 MB, 10 min) on a daily wave (30 MB) with a 20 MB/h leak from
day 3 on. The recording's size and the collector's memory must stay flat after the first day,
and the report rebuilt from the recording must date the leak's start and measure its rate.
"""

from __future__ import annotations

import math
import os
import tracemalloc
from pathlib import Path

from memtui.engine.report.json_report import build_report
from memtui.engine.report.replay import build_report_input_from_recording
from memtui.probe.clock import FakeClock
from memtui.probe.recorder import Recorder

MIB = 1 << 20
DAY = 86400
ONSET_S = 3 * DAY
LEAK_MB_PER_HOUR = 20.0


def rss_bytes(t: float) -> int:
    mb = 300.0 + 20.0 * ((t % 600.0) / 600.0)
    mb += 30.0 * 0.5 * (1.0 - math.cos(2.0 * math.pi * t / DAY))
    mb += LEAK_MB_PER_HOUR * max(0.0, t - ONSET_S) / 3600.0
    return int(mb * MIB) // 4096 * 4096


def _statm_rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _disk(path: Path) -> int:
    return sum(
        os.path.getsize(f"{path}{ext}") for ext in ("", "-wal") if os.path.exists(f"{path}{ext}")
    )


def test_a_simulated_week_stays_small_and_the_report_finds_the_day3_leak(tmp_path: Path) -> None:
    clock = FakeClock()
    path = tmp_path / "week.db"
    rec = Recorder(path, {"role": "agent", "pid": 1}, monotonic=clock.monotonic)
    start = clock.time()
    per_day: list[tuple[int, int, int, int, int]] = []
    tracemalloc.start()
    try:
        for hour in range(7 * 24):
            base = hour * 3600
            rec.add_samples(
                (start + s, rss_bytes(s), 2 * rss_bytes(s), None, 100_000)
                for s in range(base, base + 3600)
            )
            clock.advance(3600.0)
            assert rec.maybe_flush()
            if hour % 24 == 23:
                per_day.append(
                    (
                        hour // 24 + 1,
                        _disk(path),
                        rec.used_bytes(),
                        tracemalloc.get_traced_memory()[0],
                        _statm_rss(),
                    )
                )
    finally:
        tracemalloc.stop()
    rec.close()
    for day, disk, used, traced, rss in per_day:
        print(
            f"day {day}: on disk {disk / 1e6:.2f} MB, live {used / 1e6:.2f} MB, "
            f"collector traced {traced / 1e3:.0f} kB, process RSS {rss / 1e6:.1f} MB"
        )
    day1, day7 = per_day[0], per_day[-1]
    # Size: the raw day is the bulk; later days add only 1-minute rows (~0.15 MB/day).
    assert day7[1] < 8e6
    assert day7[2] - per_day[1][2] < 1.2e6
    assert path.stat().st_size < 5e6
    # The collector's memory is flat: nothing accumulates per sample.
    assert day7[3] - day1[3] < 256_000
    assert day7[4] - day1[4] < 16e6

    report = build_report(build_report_input_from_recording(path))
    leak = report["leak_detection"]
    print({k: leak[k] for k in ("state", "leak_rate_mb_per_hour", "onset_seconds", "reason")})
    assert leak["leak_detected"] is True
    assert abs(leak["onset_seconds"] - ONSET_S) < 4 * 3600
    assert abs(leak["leak_rate_mb_per_hour"] - LEAK_MB_PER_HOUR) < 0.25 * LEAK_MB_PER_HOUR
    assert report["summary"]["samples"] == 7 * DAY
    assert abs(report["summary"]["duration_hours"] - 7 * 24) < 0.1
    assert len(report["timeline"]["t_s"]) <= 2000
    assert report["recording"]["clean_end"] is True

    # A window: the last two days only, where the leak runs throughout.
    late = build_report(build_report_input_from_recording(path, since="-2d"))
    assert abs(late["summary"]["duration_hours"] - 48) < 0.5
    assert late["leak_detection"]["leak_detected"] is True
    assert abs(late["leak_detection"]["leak_rate_mb_per_hour"] - LEAK_MB_PER_HOUR) < 5
    # Before the leak: no leak.
    early = build_report(build_report_input_from_recording(path, until="3d"))
    assert early["leak_detection"]["leak_detected"] is False
