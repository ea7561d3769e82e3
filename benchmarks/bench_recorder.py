"""Provides the recorder benchmark: per-append cost, per-commit cost at 1 Hz, size of a week.

    /work/venv/bin/python benchmarks/bench_recorder.py     # ~20 s

- append: Recorder.add_sample() (what the collector thread pays per sample; no I/O).
- commit: add_sample() + flush() once per simulated second, as at 1 Hz with the default 1 s
  spacing: one transaction, plus the retention pass every 600 s of data (folding raw rows
  older than raw_s) and SQLite's WAL checkpoints. Median, p99 and max over 2 simulated hours.
- week: 604,800 samples fed in hourly batches: live bytes and bytes on disk (db + WAL) per day.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from memtui.probe.recorder import Recorder

T0 = 1_700_000_000.0
MIB = 1 << 20


def bench_append(d: Path) -> float:
    rec = Recorder(d / "append.db")
    n = 50_000  # below MAX_BUFFER_ROWS: the cap's trimming is for a disk that refuses writes
    started = time.perf_counter()
    for i in range(n):
        rec.add_sample(T0 + i, 300 * MIB + i, 600 * MIB, None, 100_000 + i)
    per = (time.perf_counter() - started) / n
    rec.close()
    return per


def bench_commit(d: Path, raw_s: float) -> list[float]:
    rec = Recorder(d / f"commit-{raw_s:.0f}.db", raw_s=raw_s)
    costs = []
    for i in range(7200):
        t = time.perf_counter()
        rec.add_sample(T0 + i, 300 * MIB + i * 4096, 600 * MIB, None, 100_000 + i)
        rec.flush()
        costs.append(time.perf_counter() - t)
    rec.close()
    return costs


def bench_week(d: Path) -> list[tuple[int, int, int]]:
    path = d / "week.db"
    rec = Recorder(path, monotonic=lambda: 0.0)
    out = []
    for h in range(168):
        rec.add_samples(
            (T0 + s, 300 * MIB + (s % 600) * 30_000 + max(0, s - 3 * 86400) * 5825, 0, None, s)
            for s in range(h * 3600, (h + 1) * 3600)
        )
        rec.flush()
        if h % 24 == 23:
            disk = sum(
                os.path.getsize(f"{path}{e}") for e in ("", "-wal") if os.path.exists(f"{path}{e}")
            )
            out.append((h // 24 + 1, rec.used_bytes(), disk))
    rec.close()
    out.append((0, 0, path.stat().st_size))
    return out


def main() -> None:
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as tmp:
        d = Path(tmp)
        print(f"append: {bench_append(d) * 1e6:.2f} µs per add_sample()")
        for raw_s, what in ((86400.0, "default retention"), (300.0, "folding every 600 s")):
            c = sorted(bench_commit(d, raw_s))
            print(
                f"commit at 1 Hz ({what}): median {statistics.median(c) * 1e3:.3f} ms, "
                f"p99 {c[int(0.99 * len(c))] * 1e3:.3f} ms, max {c[-1] * 1e3:.2f} ms"
            )
        for day, used, disk in bench_week(d):
            if day:
                live, on_disk = used / 1e6, disk / 1e6
                print(f"week, day {day}: live {live:.2f} MB, on disk (db + WAL) {on_disk:.2f} MB")
            else:
                print(f"week, after close (WAL checkpointed): {disk / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
