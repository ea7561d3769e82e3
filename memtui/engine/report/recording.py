"""Provides Recording: a run's SQLite recording read back (series, snapshots, markers),
and the report's timeline from a series (see memtui.engine.report.replay for the report)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from memtui.engine.facts.metrics import MemoryMetrics
from memtui.engine.facts.snapshot import MemorySnapshot
from memtui.errors import ReportError, UsageError
from memtui.probe.recorder import FORMAT_NAME, SCHEMA_VERSION, is_recording_header

MIB: float = 1024.0 * 1024.0


CHART_POINTS: int = 2000


_DURATION = re.compile(r"^([+-]?)(\d+(?:\.\d*)?|\.\d+)\s*([smhd]?)$")


_UNIT = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


@dataclass(frozen=True, slots=True)
class Series:
    """Memory over time: raw samples where kept, per-bucket mean/min/max further back."""

    t: np.ndarray  # wall seconds (a bucket's middle)
    rss: np.ndarray  # mean bytes
    rss_min: np.ndarray
    rss_max: np.ndarray
    vms: np.ndarray
    traced: np.ndarray
    blocks: np.ndarray
    count: np.ndarray

    def __len__(self) -> int:
        return int(self.t.size)


def parse_bound(value: str | float | None, start: float, end: float) -> float | None:
    """A window bound as wall seconds.

    Numbers and durations ("90m", "2h", "3d") count from the recording's start; negative ones
    ("-6h") from its end; anything else must be an ISO date-time (UTC unless it says otherwise).
    """
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return start + value if value >= 0 else end + value
    text = value.strip().lower()
    m = _DURATION.match(text)
    if m:
        seconds = float(m.group(2)) * _UNIT[m.group(3)]
        return end - seconds if m.group(1) == "-" else start + seconds
    try:
        when = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(
            f"cannot read the time {value!r}: use seconds or a duration from the start "
            "(3600, 90m, 2h, 3d), a negative one from the end (-6h), or an ISO date-time"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.timezone.utc)
    return when.timestamp()


class Recording:
    """A memtui recording opened for reading; raises ReportError on anything else."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        name = self.path
        try:
            with open(self.path, "rb") as f:
                head = f.read(16)
        except FileNotFoundError:
            raise ReportError(f"{name}: no such recording") from None
        except IsADirectoryError:
            raise ReportError(f"{name}: is a directory, expected a recording (.db)") from None
        except OSError as exc:
            raise ReportError(f"{name}: cannot read ({exc.strerror or exc})") from None
        if not is_recording_header(head):
            raise ReportError(f"{name}: not a memtui recording (not an SQLite database)")
        try:
            self._db = self._connect()
            rows = self._db.execute("SELECT key, value FROM meta").fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            # SQLite's own message can quote damaged bytes: Python then fails to decode it
            raise ReportError(f"{name}: not a memtui recording, or corrupt ({exc})") from None
        self.meta: dict[str, Any] = {}
        for key, value in rows:
            with contextlib.suppress(ValueError, TypeError):
                self.meta[str(key)] = json.loads(value)
        if self.meta.get("format") != FORMAT_NAME:
            self._db.close()
            raise ReportError(f"{name}: an SQLite database, but not a memtui recording")
        schema = self.meta.get("schema", 0)
        if type(schema) is not int:
            self._db.close()
            raise ReportError(f"{name}: corrupt recording (schema {schema!r} is not a number)")
        if schema > SCHEMA_VERSION:
            self._db.close()
            raise ReportError(
                f"{name}: recorded by a newer memtui (schema {self.meta.get('schema')}); "
                "upgrade memtui to read it"
            )

    def _connect(self) -> sqlite3.Connection:
        """Read-write when allowed (so a dead writer's WAL is read), read-only otherwise."""
        if os.access(self.path, os.W_OK) and os.access(os.path.dirname(self.path) or ".", os.W_OK):
            db = sqlite3.connect(self.path, timeout=5.0)
        else:
            db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=5.0)
        db.execute("PRAGMA query_only=1")
        # A damaged page can hold text that is not UTF-8: read it with replacement characters
        # rather than fail the whole report with a traceback (found by fuzzing).
        db.text_factory = lambda raw: raw.decode("utf-8", "replace")
        return db

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self._db.close()

    def __enter__(self) -> Recording:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _rows(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        try:
            return self._db.execute(sql, args).fetchall()
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:
            raise ReportError(f"{self.path}: corrupt recording ({exc})") from None
        except MemoryError:  # SQLite reports a damaged record's absurd length as SQLITE_NOMEM
            raise ReportError(
                f"{self.path}: corrupt recording (SQLite ran out of memory reading it)"
            ) from None

    def span(self) -> tuple[float, float] | None:
        """Wall time of the first and the last sample, or None when there is none."""
        (a, b), (c, d) = self._rows(
            "SELECT min(t_ms), max(t_ms) FROM samples UNION ALL "
            "SELECT min(t_ms), max(t_last_ms) FROM buckets"
        )
        lows = [x for x in (a, c) if x is not None]
        highs = [x for x in (b, d) if x is not None]
        if not lows:
            return None
        return min(lows) / 1000.0, max(highs) / 1000.0

    def series(self, lo: float | None = None, hi: float | None = None) -> Series:
        """Everything recorded between ``lo`` and ``hi`` (wall seconds), oldest first."""
        lo_ms = -(2**62) if lo is None else int(lo * 1000)
        hi_ms = 2**62 if hi is None else int(hi * 1000)
        raw = self._rows(
            "SELECT t_ms, rss, rss, rss, vms, traced, blocks, 1 FROM samples "
            "WHERE t_ms BETWEEN ? AND ? ORDER BY t_ms",
            (lo_ms, hi_ms),
        )
        boundary = raw[0][0] if raw else hi_ms + 1
        rows: list[Any] = raw
        for width in (60, 900):  # finest first: each tier only where finer ones do not reach
            part = self._rows(
                "SELECT (t_ms + t_last_ms) / 2, rss_mean, rss_min, rss_max, vms_mean, "
                "traced_mean, blocks_mean, n, t_ms FROM buckets WHERE width_s = ? AND "
                "t_ms >= ? AND t_last_ms <= ? AND t_last_ms < ? ORDER BY t_ms",
                (width, lo_ms, hi_ms, boundary),
            )
            if part:
                boundary = part[0][8]
                rows = [r[:8] for r in part] + rows
        a = np.array(rows, dtype=np.float64).reshape(-1, 8)
        a = np.nan_to_num(a, nan=0.0)
        return Series(
            t=a[:, 0] / 1000.0,
            rss=a[:, 1],
            rss_min=a[:, 2],
            rss_max=a[:, 3],
            vms=a[:, 4],
            traced=a[:, 5],
            blocks=a[:, 6],
            count=a[:, 7].astype(np.int64),
        )

    def _window(self, table: str, cols: str, lo: float, hi: float) -> list[Any]:
        return self._rows(
            f"SELECT t_ms, {cols} FROM {table} WHERE t_ms BETWEEN ? AND ? ORDER BY t_ms",
            (_ms(lo), _ms(hi)),
        )

    def gc_readings(self, lo: float, hi: float) -> list[tuple[float, dict[str, Any]]]:
        """GC readings in the window, preceded by the last one before it (the baseline)."""
        before = self._rows(
            "SELECT t_ms, data FROM gc WHERE t_ms < ? ORDER BY t_ms DESC LIMIT 1",
            (int(lo * 1000),),
        )
        rows = before + self._window("gc", "data", lo, hi)
        return [(t / 1000.0, json.loads(d)) for t, d in rows]

    def snapshots(self, lo: float, hi: float) -> Iterator[tuple[float, str, int, dict[str, Any]]]:
        for t, kind, rss, blob in self._window("snapshots", "kind, rss, data", lo, hi):
            try:
                data = json.loads(zlib.decompress(blob).decode("utf-8"))
            except (zlib.error, ValueError, UnicodeDecodeError):
                continue  # one damaged summary does not spoil the recording
            yield t / 1000.0, str(kind), int(rss or 0), data

    def markers(self, lo: float, hi: float) -> list[tuple[float, str, str]]:
        return [
            (t / 1000.0, str(lb), str(s))
            for t, lb, s in self._window("markers", "label, source", lo, hi)
        ]

    def dumps(self, lo: float, hi: float) -> list[tuple[float, str, dict[str, Any]]]:
        return [
            (t / 1000.0, str(p), json.loads(s))
            for t, p, s in self._window("dumps", "path, summary", lo, hi)
        ]

    def verdicts(self, lo: float, hi: float) -> list[tuple[float, str, float, float, str]]:
        rows = self._window("verdicts", "state, rate, confidence, reason", lo, hi)
        return [
            (t / 1000.0, str(s), float(r or 0), float(c or 0), str(m or ""))
            for t, s, r, c, m in rows
        ]

    def size_bytes(self) -> int:
        return sum(
            os.path.getsize(self.path + ext)
            for ext in ("", "-wal")
            if os.path.exists(self.path + ext)
        )


def _reduce(values: np.ndarray, edges: np.ndarray, how: str) -> np.ndarray:
    if how == "min":
        return np.minimum.reduceat(values, edges)
    if how == "max":
        return np.maximum.reduceat(values, edges)
    return np.add.reduceat(values, edges)


def timeline(
    t_s: np.ndarray,
    rss: np.ndarray,
    rss_min: np.ndarray,
    rss_max: np.ndarray,
    traced: np.ndarray | None,
    start_wall: float,
    counts: np.ndarray | None = None,
    max_points: int = CHART_POINTS,
) -> dict[str, Any]:
    """The report's "timeline" (what the HTML chart draws): at most ``max_points`` points."""
    n = int(t_s.size)
    w = counts.astype(np.float64) if counts is not None else np.ones(n)
    if n > max_points:
        edges = np.linspace(0, n, max_points + 1).astype(np.int64)[:-1]
        edges = np.unique(edges)
        ws = _reduce(w, edges, "sum")
        t_s = _reduce(t_s * w, edges, "sum") / ws
        rss = _reduce(rss * w, edges, "sum") / ws
        traced = _reduce(traced * w, edges, "sum") / ws if traced is not None else None
        rss_min, rss_max = _reduce(rss_min, edges, "min"), _reduce(rss_max, edges, "max")

    def mb(a: np.ndarray) -> list[float]:
        return [round(float(x) / MIB, 3) for x in a]

    return {
        "start_wall": start_wall,
        "t_s": [round(float(x), 1) for x in t_s],
        "rss_mb": mb(rss),
        "rss_min_mb": mb(rss_min),
        "rss_max_mb": mb(rss_max),
        "traced_mb": mb(traced) if traced is not None and bool(np.any(traced > 0)) else None,
    }


def timeline_from_metrics(metrics: MemoryMetrics, start_wall: float) -> dict[str, Any]:
    """The timeline of a live run (MemoryMetrics' bounded history), for its HTML report."""
    points = metrics.series(max_points=CHART_POINTS)
    t0 = metrics.start_t_s or 0.0
    if not points:
        return timeline(np.zeros(0), np.zeros(0), np.zeros(0), np.zeros(0), None, start_wall)
    return timeline(
        np.array([(p.t_start + p.t_end) / 2.0 - t0 for p in points]),
        np.array([p.mean[0] for p in points]),
        np.array([p.minimum[0] for p in points]),
        np.array([p.maximum[0] for p in points]),
        np.array([p.mean[2] for p in points]),
        start_wall,
    )


def snapshot_payload(
    snap: MemorySnapshot, top_sites: int = 20, top_types: int = 50
) -> dict[str, Any]:
    """What a Recorder stores for a MemorySnapshot (the profiler's add_snapshot argument)."""
    out: dict[str, Any] = {"vms": snap.memory.vms_bytes, "uss": snap.memory.uss_bytes}
    if snap.census is not None:
        out["census"] = {
            "counts": snap.top_types(top_types),
            "total_objects": snap.census.total_objects,
            "types": len(snap.census.counts),
            "duration_s": round(snap.census.duration_s, 6),
        }
    if snap.traces is not None:
        out["traced"] = snap.traces.traced_bytes
        out["sites"] = [
            {
                "frames": [list(f) for f in s.traceback.frames],
                "size_bytes": s.size,
                "count": s.count,
            }
            for s in snap.get_top_stats(top_sites, "traceback")
        ]
    if snap.gc is not None:
        out["gc"] = snap.gc._asdict()
    if snap.signals is not None:
        out["signals"] = snap.signals.to_dict()
    return out


def _ms(t: float) -> int:
    """Wall seconds as the tables' milliseconds; an infinite bound is the widest integer."""
    if t == float("inf"):
        return 2**62
    if t == float("-inf"):
        return -(2**62)
    return int(t * 1000)
