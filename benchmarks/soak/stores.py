"""Provides the bytes each of the agent's stores holds at capacity (in this process, measured).

A real agent (memtui.probe.agent.start_agent, recording on) runs in this process with the
soak's request handler as a fake load in a thread, watch windows every ``--period`` seconds so
that the ``MAX_WINDOWS`` windows fill in about a minute instead of 16. The ring and the
history tiers are then filled to capacity directly (a sample per simulated second), as they
would be after an hour, a day and a week. Each store's size is its deep size (every object
reachable from it that is not shared with the rest of the program: no modules, classes,
functions, code; interned strings counted once), and tracemalloc filtered to memtui's files
gives the total that memtui's own code keeps allocated.

Usage: ``python benchmarks/soak/stores.py --seconds 60`` (prints one JSON object).
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
import threading
import time
import tracemalloc
import types
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

SKIP = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType,
        types.CodeType, types.MethodType, threading.Thread, type(threading.Lock()),
        threading.Event)  # fmt: skip


def deep_size(root: object, seen: set[int] | None = None) -> int:
    """Bytes of ``root`` and what it reaches, shared program objects left out."""
    seen = set() if seen is None else seen
    total = 0
    stack = [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, SKIP):
            continue
        seen.add(id(obj))
        total += sys.getsizeof(obj)
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif hasattr(obj, "__dict__") or hasattr(obj, "__slots__"):
            stack.extend(gc.get_referents(obj))
        elif type(obj).__name__ == "deque":
            stack.extend(obj)  # type: ignore[attr-defined]
    return total


def load(stop: threading.Event) -> None:
    """The soak's Flask app through its test client: Flask's and werkzeug's allocations too."""
    import app as soak_app

    client = soak_app.app.test_client()
    while not stop.is_set():
        client.get("/")
        time.sleep(0.0005)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="time to fill the windows")
    parser.add_argument("--period", type=float, default=0.6, help="seconds between windows")
    parser.add_argument("--fill-s", type=int, default=7 * 86400, help="simulated samples")
    args = parser.parse_args(argv)
    from memtui.probe import agent as agent_mod
    from memtui.probe import watch

    stop = threading.Event()
    threading.Thread(target=load, args=(stop,), daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="memtui-stores-")
    ag = agent_mod.start_agent(
        sample_interval_s=1.0,
        census_interval_s=5.0,
        period_s=args.period,
        record_path=f"{tmp}/stores.db",
        sock_dir=tmp,
    )
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline and len(ag.tracer._windows) < watch.MAX_WINDOWS:
        time.sleep(0.5)
    stop.set()
    windows = list(ag.tracer._windows)
    n_windows = len(windows)
    per_window = [deep_size(w) for w in windows]
    sites = [len(w.sites) for w in windows]
    # the ring and the history at capacity: a sample per (simulated) second for a week
    tracemalloc.start(1)
    before = tracemalloc.take_snapshot()
    t = time.time()
    with ag._data_lock:
        for i in range(args.fill_s):
            v = (float(40e6 + i % 997), 4e8, 0.0, float(300_000 + i % 501))
            ag._ring.append((ag._seq + i, t + i, int(v[0]), int(v[1]), 0, int(v[3])))
            ag.history.append(t + i, v)
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    memtui_kept = sum(
        s.size_diff
        for s in after.filter_traces([tracemalloc.Filter(True, "*memtui*")]).compare_to(
            before.filter_traces([tracemalloc.Filter(True, "*memtui*")]), "filename"
        )
    )
    tiers = {f"{t.width:g}s x {t.closed.maxlen}": deep_size(t) for t in ag.history.tiers}
    rec = ag.recorder
    stores: dict[str, Any] = {
        "ring (RING_SIZE samples)": [len(ag._ring), deep_size(ag._ring)],
        "history tiers": tiers,
        "history total": deep_size(ag.history),
        "watch windows": {
            "windows": n_windows,
            "bytes": sum(per_window),
            "bytes_per_window_median": sorted(per_window)[n_windows // 2] if windows else 0,
            "sites_per_window_median": sorted(sites)[n_windows // 2] if windows else 0,
            "projected_at_max_windows": (
                sorted(per_window)[n_windows // 2] * watch.MAX_WINDOWS if windows else 0
            ),
        },
        "tracer (all)": deep_size(ag.tracer),
        "latest + first census": deep_size([ag.latest_census, ag.first_census]),
        "snapshots": deep_size(ag._snapshots),
        "markers": deep_size(ag._markers),
        "heap summaries (latest)": deep_size(ag.summaries.latest),
        "recorder buffers": deep_size([rec._samples, rec._other]) if rec else None,
        "tracemalloc: memtui files, ring+history filled (bytes)": memtui_kept,
    }
    ag.stop()
    print(json.dumps(stores, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
