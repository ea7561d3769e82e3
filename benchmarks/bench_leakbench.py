"""Leak-detector benchmark: leakbench scores, per-file time, and a 7-day 1 Hz series.

    python benchmarks/bench_leakbench.py [--data DIR] [--jobs 2]

Runs ../shared/leakbench/score.py with `memtui analyze` (process start included, as the scorer
measures it), prints per-file time (median, max) and the four metrics, then times a synthetic
7-day series at 1 sample/s (604,800 samples) through update_many in-process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from memtui.engine.detect.detector import MIB, LeakDetector

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "leakbench"


def run_scorer(data: Path, jobs: int) -> None:
    memtui = Path(sys.executable).with_name("memtui")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "r.json"
        cmd = [sys.executable, str(BENCH / "score.py"), "--cmd", f"{memtui} analyze"]
        cmd += ["--data", str(data), "--jobs", str(jobs), "--results", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        rows = json.loads(out.read_text())
    secs = [float(r["secs"]) for r in rows]
    print(
        f"{data}: {len(secs)} files, per-file time median {statistics.median(secs):.3f} s, "
        f"max {max(secs):.3f} s"
    )
    print(proc.stdout.strip().splitlines()[-1])


def seven_days() -> None:
    rng = np.random.default_rng(7)
    t = np.arange(0.0, 7 * 86400.0, 1.0)
    y = 400.0 + 30.0 * ((t % 240.0) / 240.0) + 20.0 * np.sin(2 * np.pi * t / 86400.0)
    y += rng.normal(0.0, 1.0, t.size) + 18.0 * np.maximum(t - 3 * 86400.0, 0.0) / 3600.0
    det = LeakDetector()
    t0 = time.perf_counter()
    det.update_many(t, y * MIB)
    v = det.final_verdict()
    dt = time.perf_counter() - t0
    print(
        f"7 days at 1 Hz ({t.size:,} samples, leak 18 MB/h from day 3): {dt:.2f} s, "
        f"leak={v.leak_detected} rate={v.rate_mb_per_hour:.1f} MB/h "
        f"alert_at={None if v.first_detected_at is None else v.first_detected_at / 86400:.2f} d"
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, action="append")
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    for d in args.data or [BENCH / "data"]:
        run_scorer(d, args.jobs)
    seven_days()


if __name__ == "__main__":
    main()
