"""Provides sites_app's service profiled in-process by MemoryProfiler; prints what its
allocation-site functions say, as one JSON line.

Usage: python sites_profiled.py MODE SECONDS KB_PER_S FRAMES SNAPSHOT_INTERVAL
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import sites_app  # noqa: E402

from memtui import MemoryProfiler  # noqa: E402


def _where(location: str) -> str:
    """'file:line' of a 'file:line in function' location."""
    return location.split(" in ")[0]


async def main(mode: str, seconds: float, kb_per_s: float, frames: int, interval: float) -> None:
    profiler = MemoryProfiler(
        snapshot_interval=interval,
        tracemalloc_frames=frames,
        sample_interval=0.2,
        overhead_budget=0.5,  # snapshots as often as asked, even on this busy machine
    )
    leaks: list[dict[str, Any]] = []
    profiler.on_leak_detected = leaks.append
    await profiler.start()
    service = threading.Thread(
        target=sites_app.main, args=([mode, str(seconds), str(kb_per_s)],), daemon=True
    )
    service.start()
    await asyncio.to_thread(service.join)
    top = profiler.get_top_memory_consumers(5)
    leaking = profiler.get_leaking_tracebacks()
    patterns = profiler.analyze_allocation_patterns()
    await profiler.stop()
    report = profiler.generate_report()
    out = {
        "top": [
            {
                "site": f"{s.file}:{s.line}",
                "growth_mb_per_hour": s.growth_mb_per_hour,
                "growth_bytes": s.growth_bytes,
                "size_kind": s.size_kind,
                "traceback": [f"{f}:{n}" for f, n in s.traceback.frames],
            }
            for s in top
        ],
        "leaking": [_where(t.location) for t in leaking],
        "leaking_str": [str(t) for t in leaking],
        "growing_sites": [_where(p["location"]) for p in patterns["growing_sites"]],
        "report_top": [f"{a['file']}:{a['line']}" for a in report["top_allocators"][:5]],
        "report_top_entry": report["top_allocators"][0] if report["top_allocators"] else None,
        "report_leaking": [
            f"{a['file']}:{a['line']}" for a in report["leak_detection"]["leaking_allocators"]
        ],
        "leak_callbacks": [s for info in leaks for s in info.get("suspects", [])],
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    mode, seconds, kb, frames, interval = sys.argv[1:6]
    asyncio.run(main(mode, float(seconds), float(kb), int(frames), float(interval)))
