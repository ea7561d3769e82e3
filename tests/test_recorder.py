"""Provides tests of the SQLite recorder: round trip, retention, size cap, failures, markers."""

from __future__ import annotations

import json
import sqlite3
import statistics
import time
import zlib
from pathlib import Path

import pytest

import memtui.markers
from memtui.probe import recorder as recorder_mod
from memtui.probe.recorder import (
    COARSE_WIDTH_S,
    MID_WIDTH_S,
    Recorder,
    RecorderError,
    add_marker_sink,
    remove_marker_sink,
)

T0 = 1_700_000_000.0
MIB = 1 << 20


def _rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute(sql).fetchall()


def test_round_trip_of_every_table(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with Recorder(path, {"pid": 7, "argv": ["app.py"], "role": "agent"}) as rec:
        rec.add_sample(T0, 100 * MIB, 200 * MIB, 5 * MIB, 1234)
        rec.add_sample(T0 + 1, 101 * MIB, 200 * MIB)
        assert rec.add_snapshot(T0, {"census": {"counts": {"dict": 3}}}, rss=100 * MIB)
        assert rec.add_gc(T0, {"collections": [1, 2, 3]})
        assert rec.add_verdict(T0 + 1, "ok", 0.0, 0.0, "flat")
        assert not rec.add_verdict(T0 + 2, "ok", 0.1, 0.0, "still flat")  # unchanged state
        rec.add_marker(T0 + 1, "deploy 42")
        rec.add_dump(T0 + 1, "/tmp/x.mdump", {"objects": 10})
    meta = {k: json.loads(v) for k, v in _rows(path, "SELECT key, value FROM meta")}
    assert meta["format"] == "memtui-recording" and meta["schema"] == 1
    assert meta["pid"] == 7 and meta["argv"] == ["app.py"] and "ended_at" in meta
    assert _rows(path, "SELECT t_ms, rss, traced, blocks FROM samples") == [
        (int(T0 * 1000), 100 * MIB, 5 * MIB, 1234),
        (int(T0 * 1000) + 1000, 101 * MIB, None, None),
    ]
    (blob,) = _rows(path, "SELECT data FROM snapshots")[0]
    assert isinstance(blob, bytes)
    assert json.loads(zlib.decompress(blob)) == {"census": {"counts": {"dict": 3}}}
    assert _rows(path, "SELECT label, source FROM markers") == [("deploy 42", "target")]
    assert _rows(path, "SELECT state FROM verdicts") == [("ok",)]
    assert _rows(path, "SELECT path FROM dumps") == [("/tmp/x.mdump",)]
    assert _rows(path, "PRAGMA journal_mode") == [("wal",)]


def test_reopening_appends_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    with Recorder(path) as rec:
        rec.add_sample(T0, MIB)
    with Recorder(path) as rec:
        rec.add_sample(T0 + 1, MIB)
    assert len(_rows(path, "SELECT * FROM samples")) == 2
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(RecorderError, match="not a memtui recording"):
        Recorder(text)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t(x)")
    with pytest.raises(RecorderError, match="not a memtui recording"):
        Recorder(other)


def test_retention_folds_raw_samples_into_minutes_then_quarter_hours(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    rec = Recorder(path, raw_s=3600, mid_s=4 * 3600, prune_every_s=600)
    n = 6 * 3600
    for h in range(6):
        rec.add_samples(
            (T0 + s, (s % 100) * MIB, 0, None, None) for s in range(h * 3600, (h + 1) * 3600)
        )
        rec.flush()
    rec.close()
    raw = _rows(path, "SELECT min(t_ms), count(*) FROM samples")[0]
    assert raw[1] <= 3600 + 600  # the last hour (plus up to one prune step)
    buckets = _rows(
        path, "SELECT width_s, sum(n), min(rss_min), max(rss_max) FROM buckets GROUP BY width_s"
    )
    widths = {w: (cnt, lo, hi) for w, cnt, lo, hi in buckets}
    assert set(widths) == {MID_WIDTH_S, COARSE_WIDTH_S}
    assert sum(v[0] for v in widths.values()) + raw[1] == n  # every sample is accounted for
    assert all(v[1] == 0 and v[2] == 99 * MIB for v in widths.values())  # min and max survive
    # A full minute bucket of 0..59 MiB then 60..99, 0..19: mean checked on one of them.
    (mean,) = _rows(path, f"SELECT rss_mean FROM buckets WHERE width_s = {MID_WIDTH_S} LIMIT 1")[0]
    assert isinstance(mean, float) and 0 < mean < 99 * MIB


def test_periodic_snapshots_are_spaced_and_thinned_to_hourly_when_old(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    rec = Recorder(path, raw_s=3600, snapshot_every_s=300, prune_every_s=600)
    stored = 0
    for s in range(0, 6 * 3600, 30):
        stored += rec.add_snapshot(T0 + s, {"s": s})
        rec.add_sample(T0 + s, MIB)
    assert stored == 6 * 12  # one in ten kept at the source
    assert rec.add_snapshot(T0 + 10, {"manual": True}, kind="manual")  # never skipped
    rec.close()
    rows = _rows(path, "SELECT t_ms FROM snapshots WHERE kind = 'periodic' ORDER BY t_ms")
    old = [t for (t,) in rows if int(str(t)) < (T0 + 5 * 3600 - 600) * 1000]
    assert len(old) <= 5  # hourly beyond the raw window
    assert len(rows) - len(old) >= 12
    assert _rows(path, "SELECT count(*) FROM snapshots WHERE kind = 'manual'") == [(1,)]


def test_size_cap_is_enforced(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    cap = 600_000
    rec = Recorder(path, max_bytes=cap, prune_every_s=600)
    for h in range(24):
        rec.add_samples((T0 + s, s * 4096, s, s, s) for s in range(h * 3600, (h + 1) * 3600))
        rec.flush()
    assert rec.used_bytes() <= cap
    rec.close()
    assert path.stat().st_size <= 2 * cap
    (capped,) = _rows(path, "SELECT value FROM meta WHERE key = 'raw_s_capped'")[0]
    assert float(str(capped)) < 86400


def test_a_failing_disk_never_raises_and_keeps_the_rows(tmp_path: Path) -> None:
    path = tmp_path / "run.db"
    rec = Recorder(path)
    rec.add_sample(T0, MIB)
    real = rec._db

    class Broken:
        def execute(self, sql: str, *args: object) -> object:
            if sql.startswith("BEGIN"):
                raise sqlite3.OperationalError("database or disk is full")
            return real.execute(sql, *args)

    rec._db = Broken()  # type: ignore[assignment]
    assert rec.flush() is False
    assert rec.errors == 1 and "disk is full" in rec.last_error
    rec._db = real
    assert rec.flush() is True
    rec.close()
    assert len(_rows(path, "SELECT * FROM samples")) == 1


def test_flush_is_spaced_by_the_injected_clock(tmp_path: Path) -> None:
    now = [0.0]
    rec = Recorder(tmp_path / "run.db", flush_interval_s=1.0, monotonic=lambda: now[0])
    rec.add_sample(T0, MIB)
    assert rec.maybe_flush() is False
    now[0] = 1.5
    assert rec.maybe_flush() is True
    assert rec.flushes == 1
    rec.close()


def test_mark_reaches_open_recorders_and_sinks(tmp_path: Path) -> None:
    seen: list[tuple[float, str, str]] = []

    def sink(t: float, label: str, source: str) -> None:
        seen.append((t, label, source))

    assert memtui.markers.mark("nobody listens") is False
    add_marker_sink(sink)
    try:
        rec = Recorder(tmp_path / "run.db")
        assert memtui.markers.mark("deploy\n42 " + "x" * 500, at=T0, flush=True) is True
        rows = _rows(tmp_path / "run.db", "SELECT t_ms, label FROM markers")
        assert rows[0][0] == int(T0 * 1000)
        label = str(rows[0][1])
        assert label.startswith("deploy 42 x") and len(label) == recorder_mod.MAX_LABEL
        assert seen and seen[0][1] == label and seen[0][2] == "target"
        rec.close()
        assert rec not in recorder_mod.active_recorders()
    finally:
        remove_marker_sink(sink)


def test_append_is_cheap_and_a_one_row_commit_is_fast(tmp_path: Path) -> None:
    rec = Recorder(tmp_path / "run.db")
    n = 20_000
    started = time.perf_counter()
    for i in range(n):
        rec.add_sample(T0 + i, MIB, MIB, None, i)
    per_append = (time.perf_counter() - started) / n
    rec.flush()
    costs = []
    for i in range(50):
        rec.add_sample(T0 + n + i, MIB, MIB, None, i)
        t = time.perf_counter()
        rec.flush()
        costs.append(time.perf_counter() - t)
    rec.close()
    assert per_append < 50e-6  # measured ~1-2 µs; loose for a loaded CI machine
    assert statistics.median(costs) < 0.02  # measured ~0.1 ms
