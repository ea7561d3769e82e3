"""Provides the cost of tracing 8 frames instead of 1 (what attributing sites to the user's line
needs), as paired ratios.

Run: .venv/bin/python benchmarks/bench_site_frames.py [--rounds N]

Each round runs every workload of benchmarks/workloads.py in fresh interpreters under
``MemoryProfiler(tracemalloc_frames=1)`` and ``tracemalloc_frames=8`` (default snapshots),
in alternating order, and also under ``tracemalloc.start(1)`` / ``start(8)`` alone. The table
shows the median over rounds of the per-round ratio 8 frames / 1 frame, and of each traced run
against a bare run of the same round.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import workloads  # noqa: E402

ITERS: dict[str, int] = {"alloc": 100, "mixed": 100_000, "leak": 100_000}
MODES: tuple[str, ...] = ("bare", "tm1", "tm8", "prof1", "prof8")


async def _child(mode: str, workload: str, iterations: int) -> dict[str, float]:
    if mode == "bare":
        return workloads.timed(workload, iterations)
    frames = int(mode[-1])
    if mode.startswith("tm"):
        import tracemalloc

        tracemalloc.start(frames)
        out = workloads.timed(workload, iterations)
        tracemalloc.stop()
        return out
    from memtui import MemoryProfiler

    profiler = MemoryProfiler(tracemalloc_frames=frames, enable_census=False)
    await profiler.start()
    out = workloads.timed(workload, iterations)
    await profiler.stop()
    return out


def run_child(mode: str, workload: str) -> float:
    cmd = [sys.executable, __file__, "--child", mode, workload, str(ITERS[workload])]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=True)
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(result["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", nargs=3)
    args = parser.parse_args()
    if args.child:
        mode, workload, iterations = args.child
        print(json.dumps(asyncio.run(_child(mode, workload, int(iterations)))))
        return 0
    ratios: dict[tuple[str, str], list[float]] = {}
    for r in range(args.rounds):
        for workload in ITERS:
            order = list(MODES) if r % 2 == 0 else list(reversed(MODES))
            times = {mode: run_child(mode, workload) for mode in order}
            for mode in MODES[1:]:
                ratios.setdefault((workload, f"{mode}/bare"), []).append(
                    times[mode] / times["bare"]
                )
            ratios.setdefault((workload, "tm8/tm1"), []).append(times["tm8"] / times["tm1"])
            ratios.setdefault((workload, "prof8/prof1"), []).append(times["prof8"] / times["prof1"])
    columns = [f"{m}/bare" for m in MODES[1:]] + ["tm8/tm1", "prof8/prof1"]
    print(f"median of {args.rounds} paired rounds (x):")
    print("workload  " + "  ".join(f"{c:>12}" for c in columns))
    for workload in ITERS:
        cells = [statistics.median(ratios[(workload, c)]) for c in columns]
        print(f"{workload:9} " + "  ".join(f"{v:12.2f}" for v in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
