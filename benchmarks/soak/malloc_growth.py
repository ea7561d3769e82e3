"""Provides where the agent's RSS goes beyond its Python objects: glibc's own accounting.

The agent runs in this process (recording on, heap summaries and census on a short cadence,
watch windows every ``--period`` s) with the soak's Flask app as load in a thread. Every
``--every`` seconds: RSS, Python's allocated blocks, and glibc's mallinfo2 (bytes in use by
malloc, free bytes kept in its arenas, mmapped bytes); at the end malloc_trim(0) says how much
of the RSS was free memory glibc kept. Linux with glibc only.

Usage: ``python benchmarks/soak/malloc_growth.py --seconds 300``.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stores import load


class MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
                     "uordblks", "fordblks", "keepcost")
    ]  # fmt: skip


LIBC = ctypes.CDLL("libc.so.6")
LIBC.mallinfo2.restype = MallInfo2


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


def reading(t0: float, agent: Any = None) -> dict[str, Any]:
    m = LIBC.mallinfo2()
    extra: dict[str, Any] = {}
    if agent is not None:
        tracer = agent.tracer
        extra = {"windows": len(tracer._windows), "stopped": bool(tracer.windows_stopped()),
                 "leak_estimate_mb": round(tracer.leaked_bytes / 1e6, 2)}  # fmt: skip
    return {
        **extra,
        "t": round(time.monotonic() - t0, 1),
        "rss_mb": round(rss() / 1e6, 2),
        "blocks": sys.getallocatedblocks(),
        "malloc_in_use_mb": round(m.uordblks / 1e6, 2),
        "malloc_free_kept_mb": round(m.fordblks / 1e6, 2),
        "mmapped_mb": round(m.hblkhd / 1e6, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--every", type=float, default=30.0)
    parser.add_argument("--period", type=float, default=2.0, help="seconds between windows")
    parser.add_argument("--off", action="store_true", help="no agent: the load alone")
    parser.add_argument("--trace", default="watch", help="off, watch or continuous")
    parser.add_argument("--census-s", type=float, default=10.0)
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument("--leak-budget-mb", type=float, default=0.0, help="0: the default")
    args = parser.parse_args(argv)
    from memtui.probe import agent as agent_mod

    stop = threading.Event()
    threading.Thread(target=load, args=(stop,), daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="memtui-malloc-")
    ag = None
    if not args.off:
        ag = agent_mod.start_agent(
            trace_mode=args.trace,
            period_s=args.period,
            census_interval_s=args.census_s,
            record_path=None if args.no_record else f"{tmp}/m.db",
            sock_dir=tmp,
        )
        if args.leak_budget_mb:
            ag.tracer.leak_budget_bytes = int(args.leak_budget_mb * 2**20)
    t0 = time.monotonic()
    while time.monotonic() - t0 < args.seconds:
        print(json.dumps(reading(t0, ag)), flush=True)
        time.sleep(args.every)
    stop.set()
    time.sleep(0.5)
    before = reading(t0)
    LIBC.malloc_trim(0)
    after = reading(t0)
    print(json.dumps({"before_trim": before, "after_trim": after}))
    if ag is not None:
        ag.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
