"""Provides tests of reading recordings back: the report, windows, and clear errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from memtui.engine.report.json_report import build_report
from memtui.engine.report.recording import Recording, parse_bound
from memtui.engine.report.replay import build_report_input_from_recording
from memtui.errors import ReportError, UsageError
from memtui.probe.recorder import Recorder

T0 = 1_700_000_000.0
MIB = 1 << 20


def _gc(s: int) -> dict[str, object]:
    return {
        "collections": [s, s // 10, s // 100],
        "collected": [s * 5, s, 0],
        "uncollectable": [0, 0, 0],
        "time_s": [s * 1e-4, 0.0, 0.0],
        "max_pause_s": 0.002,
        "thresholds": [700, 10, 10],
        "garbage_count": 0,
        "timed": True,
    }


def make_recording(path: Path, hours: float = 3.0, leak_mb_per_hour: float = 60.0) -> None:
    """An in-process run: samples at 1 Hz, snapshots with sites, census and gc, markers."""
    with Recorder(
        path, {"role": "agent", "pid": 99, "argv": ["app.py"], "python": "3.11.7"}
    ) as rec:
        for s in range(int(hours * 3600)):
            rss = int((200 + leak_mb_per_hour * s / 3600 + 5 * ((s % 300) / 300)) * MIB)
            rec.add_sample(T0 + s, rss, 2 * rss, rss // 2, 50_000 + s)
            if s % 300 == 0:
                rec.add_snapshot(
                    T0 + s,
                    {
                        "census": {
                            "counts": {"dict": 1000 + s, "list": 500},
                            "total_objects": 2000 + s,
                        },
                        "sites": [
                            {"frames": [["app.py", 10]], "size_bytes": 1000 * s, "count": s},
                            {"frames": [["lib.py", 5]], "size_bytes": 4 * MIB, "count": 9},
                        ],
                        "gc": _gc(s),
                    },
                    rss=rss,
                )
                rec.add_gc(T0 + s, _gc(s))
            if s == 1800:
                rec.add_marker(T0 + s, "deploy 42")
        rec.add_dump(T0 + 60, "/tmp/heap.mdump", {"objects": 12345})


def test_report_from_a_recording_has_every_section(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    make_recording(path)
    report = build_report(build_report_input_from_recording(path))
    json.dumps(report, allow_nan=False)
    assert report["schema_version"] == 1
    assert report["summary"]["samples"] == 3 * 3600
    assert report["leak_detection"]["leak_detected"] is True
    assert abs(report["leak_detection"]["leak_rate_mb_per_hour"] - 60) < 10
    assert report["top_allocators"][0]["file"] == "app.py"
    assert report["leak_detection"]["leaking_allocators"][0]["file"] == "app.py"
    assert report["gc_statistics"]["available"] is True
    assert report["gc_statistics"]["gen0_collections"] > 0
    assert report["snapshots"][-1]["top_types"]["dict"] > 1000
    assert report["markers"] == [
        {
            "at_seconds": 1800.0,
            "timestamp": "2023-11-14T22:43:20",
            "label": "deploy 42",
            "source": "target",
        }
    ]
    assert report["heap_dumps"][0]["summary"] == {"objects": 12345}
    assert report["source"]["command"] == "app.py" and report["source"]["pid"] == 99
    assert report["recording"]["clean_end"] is True
    assert report["source"]["target_exited"] is False


def test_windows_choose_part_of_the_run(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    make_recording(path)
    part = build_report(build_report_input_from_recording(path, since="0.4h", until="1.4h"))
    assert abs(part["summary"]["duration_hours"] - 1.0) < 0.01
    assert part["summary"]["started_at"] == "2023-11-14T22:37:20"
    assert [m["label"] for m in part["markers"]] == ["deploy 42"]
    last = build_report(build_report_input_from_recording(path, since=-600.0))
    assert abs(last["summary"]["duration_hours"] * 3600 - 600) < 2
    assert last["markers"] == []
    with pytest.raises(ReportError, match="no samples between"):
        build_report_input_from_recording(path, since="2024-01-01T00:00:00")


def test_markers_just_outside_the_samples_reach_a_whole_run_report(tmp_path: Path) -> None:
    # The script's first line can mark before the collector's first sample, its last line
    # after the last one; a window the user bounded keeps to its bounds.
    path = tmp_path / "run.db"
    with Recorder(path, {"role": "agent", "pid": 5}) as rec:
        rec.add_marker(T0 - 0.2, "start work")
        for s in range(10):
            rec.add_sample(T0 + s, (100 + s) * MIB)
        rec.add_marker(T0 + 9.5, "deploy 42")
    whole = build_report(build_report_input_from_recording(path))
    assert [m["label"] for m in whole["markers"]] == ["start work", "deploy 42"]
    assert whole["markers"][0]["at_seconds"] == -0.2
    bounded = build_report(build_report_input_from_recording(path, since=2.0, until=8.0))
    assert bounded["markers"] == []


def test_parse_bound() -> None:
    assert parse_bound(None, 100.0, 200.0) is None
    assert parse_bound(10, 100.0, 200.0) == 110.0
    assert parse_bound(-10.0, 100.0, 200.0) == 190.0
    assert parse_bound("2m", 100.0, 9999.0) == 220.0
    assert parse_bound("-1h", 0.0, 7200.0) == 3600.0
    assert parse_bound("1.5d", 0.0, 1.0) == 129600.0
    assert parse_bound("2023-11-14T22:13:20Z", 0.0, 1.0) == T0
    assert parse_bound("2023-11-14T22:13:20", 0.0, 1.0) == T0  # UTC when unsaid
    with pytest.raises(UsageError, match="cannot read the time"):
        parse_bound("yesterday", 0.0, 1.0)


def test_missing_foreign_corrupt_and_empty_files_fail_with_one_line(tmp_path: Path) -> None:
    def message(path: Path) -> str:
        with pytest.raises(ReportError) as info:
            build_report_input_from_recording(path)
        text = str(info.value)
        assert "\n" not in text
        return text

    assert "no such recording" in message(tmp_path / "absent.db")
    assert "is a directory" in message(tmp_path)
    text = tmp_path / "report.json"
    text.write_text("{}")
    assert "not an SQLite database" in message(text)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE meta(key TEXT, value TEXT)")
    assert "not a memtui recording" in message(other)
    good = tmp_path / "good.db"
    make_recording(good, hours=0.2)
    damaged = tmp_path / "damaged.db"
    data = bytearray(good.read_bytes())
    data[100 : len(data) - 100] = b"\xff" * (len(data) - 200)
    damaged.write_bytes(bytes(data))
    assert "corrupt" in message(damaged)
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[:4096])
    assert "corrupt" in message(truncated) or "not a memtui recording" in message(truncated)
    empty = tmp_path / "empty.db"
    Recorder(empty).close()
    assert "no samples yet" in message(empty)
    newer = tmp_path / "newer.db"
    make_recording(newer, hours=0.1)
    with sqlite3.connect(newer) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    assert "newer memtui" in message(newer)


def test_reading_a_recording_that_is_still_being_written(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    rec = Recorder(path)
    for s in range(600):
        rec.add_sample(T0 + s, (100 + s) * MIB)
    rec.flush()
    with Recording(path) as reading:
        assert reading.span() == (T0, T0 + 599)
    report = build_report(build_report_input_from_recording(path))
    assert report["summary"]["samples"] == 600
    assert report["recording"]["clean_end"] is False
    rec.add_sample(T0 + 600, MIB)
    assert rec.flush()  # the reader never blocks the writer
    rec.close()
