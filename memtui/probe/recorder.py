"""Provides Recorder: a crash-proof, size-bounded SQLite (WAL) recording of a run; stdlib only.

Whoever collects writes it as things happen: the agent thread inside a target, the profiler's
sampler, or the monitor for processes watched from outside. ``add_*`` calls only append to an
in-memory buffer (about 1 µs, never I/O); ``maybe_flush()`` commits the buffer in one
transaction at most every ``flush_interval_s``, so a SIGKILL loses at most that much. WAL with
``synchronous=NORMAL`` makes every commit survive the death of the process (only a power cut can
lose the last commits).

Retention is bounded by design: raw samples for ``raw_s`` (a day by default), then one row per
minute (min/max/mean) up to ``mid_s`` (a week), then one per 15 minutes; periodic snapshot
summaries at most every ``snapshot_every_s`` and one per hour once older than ``raw_s``; and a
hard ``max_bytes`` cap as the last resort. Runs on CPython >= 3.10 with nothing but the
standard library (it is shipped into targets with the probe).
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3

FORMAT_NAME = "memtui-recording"
SCHEMA_VERSION = 1
MID_WIDTH_S = 60
COARSE_WIDTH_S = 900
MAX_LABEL = 200
MAX_BUFFER_ROWS = 100_000
"""Rows kept while the disk refuses writes; beyond that the oldest are dropped (and counted)."""

SampleRow = tuple[int, int, int, "int | None", "int | None", "int | None"]
MarkerSink = Callable[[float, str, str], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS samples(
    t_ms INTEGER PRIMARY KEY, rss INTEGER NOT NULL, vms INTEGER, traced INTEGER,
    blocks INTEGER, uss INTEGER);
CREATE TABLE IF NOT EXISTS buckets(
    width_s INTEGER NOT NULL, t_ms INTEGER NOT NULL, n INTEGER NOT NULL, t_last_ms INTEGER,
    rss_min INTEGER, rss_max INTEGER, rss_mean REAL, vms_mean REAL, traced_mean REAL,
    traced_max INTEGER, blocks_mean REAL, uss_mean REAL,
    PRIMARY KEY(width_s, t_ms)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gc(t_ms INTEGER PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS snapshots(
    t_ms INTEGER PRIMARY KEY, kind TEXT NOT NULL, rss INTEGER, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS verdicts(
    t_ms INTEGER PRIMARY KEY, state TEXT NOT NULL, rate REAL, confidence REAL, reason TEXT);
CREATE TABLE IF NOT EXISTS markers(
    id INTEGER PRIMARY KEY, t_ms INTEGER NOT NULL, label TEXT NOT NULL, source TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS dumps(
    id INTEGER PRIMARY KEY, t_ms INTEGER NOT NULL, path TEXT NOT NULL, summary TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS markers_t ON markers(t_ms);
"""

# Fold samples (or finer buckets) into buckets of {width} seconds; an existing bucket is merged
# (SQLite >= 3.24; older libraries replace it, which only matters for out-of-order samples).
_UPSERT = """
INSERT INTO buckets SELECT {width}, g, n, tl, rmin, rmax, rmean, vmean, tmean, tmax, bmean, umean
FROM ({select}) WHERE true
ON CONFLICT(width_s, t_ms) DO UPDATE SET
  rss_mean = round((rss_mean * n + excluded.rss_mean * excluded.n) / (n + excluded.n)),
  vms_mean = round((vms_mean * n + excluded.vms_mean * excluded.n) / (n + excluded.n)),
  traced_mean = round((traced_mean * n + excluded.traced_mean * excluded.n) / (n + excluded.n)),
  blocks_mean = round((blocks_mean * n + excluded.blocks_mean * excluded.n) / (n + excluded.n)),
  uss_mean = coalesce(excluded.uss_mean, uss_mean),
  rss_min = min(rss_min, excluded.rss_min), rss_max = max(rss_max, excluded.rss_max),
  traced_max = max(traced_max, excluded.traced_max),
  t_last_ms = max(t_last_ms, excluded.t_last_ms), n = n + excluded.n
"""


def _upsert_sql() -> str:
    """_UPSERT, or its older form on an SQLite without ON CONFLICT (before 3.24)."""
    import sqlite3

    if sqlite3.sqlite_version_info < (3, 24, 0):  # pragma: no cover - very old SQLite
        return _UPSERT.split("ON CONFLICT")[0].replace("INSERT INTO", "INSERT OR REPLACE INTO")
    return _UPSERT


_FROM_SAMPLES = """
SELECT (t_ms / {ms}) * {ms} AS g, count(*) AS n, max(t_ms) AS tl, min(rss) AS rmin,
  max(rss) AS rmax, round(avg(rss)) AS rmean, round(avg(vms)) AS vmean, round(avg(traced)) AS tmean,
  max(traced) AS tmax, round(avg(blocks)) AS bmean, round(avg(uss)) AS umean
FROM samples WHERE t_ms < ? GROUP BY g
"""
_FROM_BUCKETS = """
SELECT (t_ms / {ms}) * {ms} AS g, sum(n) AS n, max(t_last_ms) AS tl, min(rss_min) AS rmin,
  max(rss_max) AS rmax, round(sum(rss_mean * n) / sum(n)) AS rmean,
  round(sum(vms_mean * n) / sum(n)) AS vmean,
  round(sum(traced_mean * n) / sum(n)) AS tmean, max(traced_max) AS tmax,
  round(sum(blocks_mean * n) / sum(n)) AS bmean, round(avg(uss_mean)) AS umean
FROM buckets WHERE width_s = {src} AND t_ms < ? GROUP BY g
"""


class RecorderError(Exception):
    """The recording cannot be opened or created (one line, fit to show a person)."""


def _ms(t: float) -> int:
    return round(t * 1000.0)


def default_meta() -> dict[str, Any]:
    """Run metadata of this process: pid, argv, python, executable, host, started_at."""
    return {
        "pid": os.getpid(),
        "argv": list(sys.argv),
        "python": "{}.{}.{}".format(*sys.version_info[:3]),
        "executable": sys.executable,
        "hostname": os.uname().nodename if hasattr(os, "uname") else "",
        "started_at": time.time(),
    }


def is_recording_header(head: bytes) -> bool:
    """True when ``head`` (the first 16 bytes of a file) is an SQLite database header."""
    return head[:16] == b"SQLite format 3\x00"


class Recorder:
    """Appends a run's samples, snapshots, verdicts, markers and dumps to an SQLite file.

    Args:
        path: the recording; created (with its directory) if missing, appended to if it is
            already a memtui recording, refused (RecorderError) if it is anything else.
        meta: run metadata stored once (pid, argv, python, started_at, role, ...).
        flush_interval_s: least time between commits (the most a SIGKILL can lose).
        raw_s: raw samples are kept this long, then folded into 1-minute rows.
        mid_s: 1-minute rows are kept this long, then folded into 15-minute rows.
        snapshot_every_s: periodic snapshots closer than this to the last one are skipped.
        gc_every_s: GC readings closer than this to the last one are skipped.
        max_bytes: cap on the recording's live data; older detail goes first when it is hit.
        prune_every_s: recording time between retention passes.
        monotonic: the clock for flush spacing (tests inject a fake one).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        meta: Mapping[str, Any] | None = None,
        *,
        flush_interval_s: float = 1.0,
        raw_s: float = 86400.0,
        mid_s: float = 7 * 86400.0,
        snapshot_every_s: float = 300.0,
        gc_every_s: float = 300.0,
        max_bytes: int = 64 * 1024 * 1024,
        prune_every_s: float = 600.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = os.path.abspath(os.fspath(path))
        self.flush_interval_s = float(flush_interval_s)
        self.raw_s = float(raw_s)
        self.mid_s = max(float(mid_s), self.raw_s)
        self.snapshot_every_s = float(snapshot_every_s)
        self.gc_every_s = float(gc_every_s)
        self.max_bytes = int(max_bytes)
        self.prune_every_s = float(prune_every_s)
        self._monotonic = monotonic
        self._pid = os.getpid()
        self._buf_lock = threading.Lock()  # held only to append to / swap the buffers
        self._db_lock = threading.Lock()  # one writer on the connection at a time
        self._samples: list[SampleRow] = []
        self._other: list[tuple[str, tuple[Any, ...]]] = []
        self._last_flush = monotonic()
        self._last_snapshot_ms: int | None = None
        self._last_gc_ms: int | None = None
        self._last_state: str | None = None
        self._newest_ms = 0
        self._next_prune_ms = 0
        self.errors = 0
        self.last_error = ""
        self.dropped = 0
        self.failing = False
        """The last commit failed (disk full, file gone): rows wait in memory meanwhile."""
        self.flushes = 0
        self.max_flush_s = 0.0
        self.closed = False
        self._db = self._open(meta or {})
        _register(self)

    # -- opening ----------------------------------------------------------------------------
    def _open(self, meta: Mapping[str, Any]) -> sqlite3.Connection:
        import sqlite3  # loaded by the first recording, not by every `import memtui`

        exists = os.path.exists(self.path) and os.path.getsize(self.path) > 0
        if exists:
            with open(self.path, "rb") as f:
                if not is_recording_header(f.read(16)):
                    raise RecorderError(f"{self.path} exists and is not a memtui recording")
        else:
            os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        try:
            db = sqlite3.connect(self.path, timeout=5.0, check_same_thread=False)
            db.isolation_level = None  # explicit BEGIN/COMMIT
            if not exists:
                db.execute("PRAGMA auto_vacuum=INCREMENTAL")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA cache_size=-2048")  # 2 MiB of page cache in the target
            db.execute("PRAGMA journal_size_limit=1048576")  # the WAL file stays <= ~1 MiB
            db.execute("PRAGMA wal_autocheckpoint=256")
            db.executescript(_SCHEMA)
            found = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if exists and found.get("format") != json.dumps(FORMAT_NAME):
                db.close()
                raise RecorderError(f"{self.path} is an SQLite file but not a memtui recording")
            rows = {"format": FORMAT_NAME, "schema": SCHEMA_VERSION, "created_at": time.time()}
            rows.update(meta)
            db.execute("BEGIN")
            for key, value in rows.items():
                if key not in found:
                    db.execute("INSERT INTO meta VALUES (?, ?)", (key, json.dumps(value)))
            if exists:
                n = int(json.loads(found.get("reopened", "0"))) + 1
                db.execute("INSERT OR REPLACE INTO meta VALUES ('reopened', ?)", (str(n),))
            db.execute("DELETE FROM meta WHERE key = 'ended_at'")
            db.execute("COMMIT")
            last = db.execute("SELECT max(t_ms) FROM samples").fetchone()[0]
            self._newest_ms = int(last or 0)
        except (sqlite3.Error, UnicodeDecodeError) as exc:  # a damaged file's error text
            raise RecorderError(f"cannot open recording {self.path}: {exc}") from None
        return db

    # -- appending (cheap, any thread, never raises) ----------------------------------------
    def add_sample(
        self,
        t: float,
        rss: int,
        vms: int = 0,
        traced: int | None = None,
        blocks: int | None = None,
        uss: int | None = None,
    ) -> None:
        """One memory sample at wall time ``t`` (seconds since the epoch)."""
        row = (_ms(t), int(rss), int(vms), traced, blocks, uss)
        with self._buf_lock:
            self._samples.append(row)
            if len(self._samples) > MAX_BUFFER_ROWS:
                del self._samples[: len(self._samples) - MAX_BUFFER_ROWS]
                self.dropped += 1

    def add_samples(self, rows: Iterable[tuple[float, int, int, int | None, int | None]]) -> None:
        """Many (t, rss, vms, traced, blocks) samples at once (replays, tests)."""
        new = [(_ms(r[0]), int(r[1]), int(r[2]), r[3], r[4], None) for r in rows]
        with self._buf_lock:
            self._samples.extend(new)

    def add_gc(self, t: float, reading: Mapping[str, Any], force: bool = False) -> bool:
        """A GcReading as a dict (dataclasses.asdict); skipped when the last is too recent."""
        t_ms = _ms(t)
        last = self._last_gc_ms
        if not force and last is not None and t_ms - last < self.gc_every_s * 1000.0:
            return False
        self._last_gc_ms = t_ms
        self._queue("INSERT OR REPLACE INTO gc VALUES (?, ?)", (t_ms, _dumps(reading)))
        return True

    def add_snapshot(
        self, t: float, data: Mapping[str, Any], kind: str = "periodic", rss: int | None = None
    ) -> bool:
        """A snapshot summary: {"census", "signals", "sites", "gc", "traced", ...} (JSON).

        Periodic snapshots closer than ``snapshot_every_s`` to the last one are skipped; any
        other kind (manual, baseline) is always kept. Returns True when it will be stored.
        """
        t_ms = _ms(t)
        if kind == "periodic":
            last = self._last_snapshot_ms
            if last is not None and t_ms - last < self.snapshot_every_s * 1000.0:
                return False
            self._last_snapshot_ms = t_ms
        try:
            blob = zlib.compress(_dumps(data).encode("utf-8"), 6)
        except (TypeError, ValueError) as exc:
            self._note(exc)
            return False
        self._queue("INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?)", (t_ms, kind, rss, blob))
        return True

    def add_verdict(
        self, t: float, state: str, rate: float, confidence: float, reason: str
    ) -> bool:
        """The leak verdict, stored only when its state changed."""
        if state == self._last_state:
            return False
        self._last_state = state
        self._queue(
            "INSERT OR REPLACE INTO verdicts VALUES (?, ?, ?, ?, ?)",
            (_ms(t), state, float(rate), float(confidence), reason[:500]),
        )
        return True

    def add_marker(self, t: float, label: str, source: str = "target") -> None:
        """A labelled instant (``memtui.mark``, a monitor key)."""
        self._queue(
            "INSERT INTO markers(t_ms, label, source) VALUES (?, ?, ?)",
            (_ms(t), str(label)[:MAX_LABEL], str(source)[:20]),
        )

    def add_dump(self, t: float, path: str, summary: Mapping[str, Any]) -> None:
        """A heap dump written at ``t``: its path and summary (JSON)."""
        self._queue(
            "INSERT INTO dumps(t_ms, path, summary) VALUES (?, ?, ?)",
            (_ms(t), str(path), _dumps(summary)),
        )

    def set_meta(self, key: str, value: Any) -> None:
        self._queue("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, _dumps(value)))

    def _queue(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._buf_lock:
            self._other.append((sql, args))
            if len(self._other) > MAX_BUFFER_ROWS:
                del self._other[0]
                self.dropped += 1

    def state(self) -> dict[str, Any]:
        """What a monitor shows of the recording's health (is it writing, and if not why)."""
        with self._buf_lock:
            waiting = len(self._samples) + len(self._other)
        return {
            "path": self.path,
            "failing": self.failing,
            "errors": self.errors,
            "last_error": self.last_error,
            "waiting_rows": waiting,
            "dropped": self.dropped,
        }

    def _note(self, exc: BaseException) -> None:
        self.errors += 1
        self.last_error = f"{type(exc).__name__}: {exc}"

    # -- committing (the collector's thread) ------------------------------------------------
    def maybe_flush(self) -> bool:
        """Commit if ``flush_interval_s`` passed since the last commit; True when it did."""
        if self._monotonic() - self._last_flush < self.flush_interval_s:
            return False
        return self.flush()

    def flush(self) -> bool:
        """Commit everything buffered (one transaction) and run retention when due.

        Never raises: a failure (disk full, file removed) is counted in ``errors`` and the rows
        stay buffered for the next try.
        """
        import sqlite3  # loaded by the first recording, not by every `import memtui`

        if self.closed or os.getpid() != self._pid:
            return False
        with self._db_lock:
            started = time.perf_counter()
            self._last_flush = self._monotonic()
            with self._buf_lock:
                samples, self._samples = self._samples, []
                other, self._other = self._other, []
            if not samples and not other:
                return True
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                if samples:
                    db.executemany("INSERT OR REPLACE INTO samples VALUES (?,?,?,?,?,?)", samples)
                for sql, args in other:
                    db.execute(sql, args)
                newest = max((r[0] for r in samples), default=0)
                self._newest_ms = max(self._newest_ms, newest)
                if self._newest_ms >= self._next_prune_ms:
                    self._next_prune_ms = self._newest_ms + int(self.prune_every_s * 1000)
                    self._prune(db)
                db.execute("COMMIT")
            except (sqlite3.Error, OSError) as exc:
                self._note(exc)
                self.failing = True
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                with self._buf_lock:  # keep the rows for the next try (bounded)
                    self._samples[:0] = samples[-MAX_BUFFER_ROWS:]
                    self._other[:0] = other[-MAX_BUFFER_ROWS:]
                return False
            self.flushes += 1
            self.failing = False
            self.max_flush_s = max(self.max_flush_s, time.perf_counter() - started)
            return True

    # -- retention ----------------------------------------------------------------------------
    def _fold(self, db: sqlite3.Connection, cut_ms: int, width: int, src: int | None) -> None:
        ms = width * 1000
        cut_ms -= cut_ms % ms  # whole buckets only: no bucket is ever split
        if src is None:
            select = _FROM_SAMPLES.format(ms=ms)
            db.execute(_upsert_sql().format(width=width, select=select), (cut_ms,))
            db.execute("DELETE FROM samples WHERE t_ms < ?", (cut_ms,))
        else:
            select = _FROM_BUCKETS.format(ms=ms, src=src)
            db.execute(_upsert_sql().format(width=width, select=select), (cut_ms,))
            db.execute("DELETE FROM buckets WHERE width_s = ? AND t_ms < ?", (src, cut_ms))

    def _prune(self, db: sqlite3.Connection) -> None:
        now = self._newest_ms
        raw_cut = now - int(self.raw_s * 1000)
        self._fold(db, raw_cut, MID_WIDTH_S, None)
        self._fold(db, now - int(self.mid_s * 1000), COARSE_WIDTH_S, MID_WIDTH_S)
        # Snapshot summaries older than raw_s: the first of each hour stays.
        db.execute(
            "DELETE FROM snapshots WHERE kind = 'periodic' AND t_ms < ?1 AND t_ms NOT IN "
            "(SELECT min(t_ms) FROM snapshots WHERE kind = 'periodic' AND t_ms < ?1 "
            "GROUP BY t_ms / 3600000)",
            (raw_cut,),
        )
        self._enforce_cap(db)

    def used_bytes(self, db: sqlite3.Connection | None = None) -> int:
        """Bytes of live pages (the file minus its free pages)."""
        db = db or self._db
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * size)

    def _enforce_cap(self, db: sqlite3.Connection) -> None:
        """Over max_bytes: halve the raw window, then drop the oldest half of each kind."""
        for _ in range(12):
            if self.used_bytes(db) <= self.max_bytes:
                break
            now = self._newest_ms
            if self.raw_s > 600.0:
                self.raw_s /= 2.0
                self._fold(db, now - int(self.raw_s * 1000), MID_WIDTH_S, None)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('raw_s_capped', ?)", (self.raw_s,))
                continue
            for table in ("snapshots", "buckets", "gc", "markers", "samples"):
                lo, hi = db.execute(f"SELECT min(t_ms), max(t_ms) FROM {table}").fetchone()
                if lo is not None and hi is not None and hi > lo:
                    db.execute(f"DELETE FROM {table} WHERE t_ms < ?", ((lo + hi) // 2,))
        if db.execute("PRAGMA freelist_count").fetchone()[0] > 256:
            db.execute("PRAGMA incremental_vacuum")

    # -- closing --------------------------------------------------------------------------------
    def close(self, ended_at: float | None = None) -> None:
        """Flush, note a clean end, checkpoint and close; idempotent, never raises."""
        import sqlite3  # loaded by the first recording, not by every `import memtui`

        if self.closed:
            return
        if os.getpid() == self._pid:
            self.set_meta("ended_at", time.time() if ended_at is None else ended_at)
            self.flush()
        self.closed = True
        _unregister(self)
        if os.getpid() != self._pid:
            return  # a forked child never touches the parent's connection (SQLite forbids it)
        with self._db_lock:
            try:
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                self._db.close()
            except sqlite3.Error as exc:
                self._note(exc)

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str, allow_nan=False)


# -- markers: this process's recorders and marker sinks ---------------------------------------
_lock = threading.Lock()
_recorders: weakref.WeakSet[Recorder] = weakref.WeakSet()
_sinks: list[MarkerSink] = []


def _register(rec: Recorder) -> None:
    with _lock:
        _recorders.add(rec)


def _unregister(rec: Recorder) -> None:
    with _lock:
        _recorders.discard(rec)


def active_recorders() -> list[Recorder]:
    """The open recorders of this process."""
    with _lock:
        return [r for r in _recorders if not r.closed and r._pid == os.getpid()]


def add_marker_sink(sink: MarkerSink) -> None:
    """Also send every marker to ``sink(t, label, source)`` (e.g. the agent, for its frames)."""
    with _lock:
        if sink not in _sinks:
            _sinks.append(sink)


def remove_marker_sink(sink: MarkerSink) -> None:
    with _lock:
        if sink in _sinks:
            _sinks.remove(sink)


def emit_marker(label: str, t: float | None = None, source: str = "target") -> int:
    """Record ``label`` at ``t`` (now) in every open recorder and sink; how many took it."""
    when = time.time() if t is None else float(t)
    text = " ".join(str(label).split())[:MAX_LABEL] or "(marker)"
    taken = 0
    for rec in active_recorders():
        rec.add_marker(when, text, source)
        taken += 1
    with _lock:
        sinks = list(_sinks)
    for sink in sinks:
        try:
            sink(when, text, source)
            taken += 1
        except Exception:  # a sink must never break the caller's code
            pass
    return taken
