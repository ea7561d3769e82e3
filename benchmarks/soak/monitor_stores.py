"""Provides the bytes the monitor's stores hold as a watch goes on (one AgentSession, measured).

A real agent runs in this process under the soak's Flask app as load; after ``--warm-s``
seconds its frame (samples, census, signals, sites, heap summary) is taken as a template and
the monitor's AgentSession is fed one frame per simulated second for ``--hours``: a new
sample each, a changed census every 30 s, a new heap summary every 300 s (the agent's
cadences at the soak's age). Every simulated hour the deep size of each store is printed
(benchmarks/soak/stores.py's deep_size), so a store that does not stop growing shows.

Usage: ``python benchmarks/soak/monitor_stores.py --hours 6``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stores import deep_size, load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=6.0)
    parser.add_argument("--warm-s", type=float, default=25.0)
    args = parser.parse_args(argv)
    from memtui.probe import agent as agent_mod
    from memtui.remote.client import AgentClient
    from memtui.remote.session import AgentSession

    stop = threading.Event()
    threading.Thread(target=load, args=(stop,), daemon=True).start()
    tmp = tempfile.mkdtemp(prefix="memtui-mstores-")
    ag = agent_mod.start_agent(period_s=2.0, census_interval_s=5.0, sock_dir=tmp)
    ag.summaries.request_now()
    time.sleep(args.warm_s)
    client = AgentClient(ag.sock_path)
    template = client.request("frame", since=0)
    stop.set()
    session = AgentSession(client)
    session.apply_frame(template)
    seq, t0 = int(template["seq"]), time.time()
    rss, vms, blocks = 60e6, 4e8, 300_000
    census = template.get("census") or {}
    summary = template.get("heap_summary")
    template = {
        k: v
        for k, v in template.items()
        if k not in ("samples", "history", "heap_summary", "census", "markers")
    }
    stores: dict[str, Any] = {
        "metrics (history)": lambda: session.analysis.metrics,
        "detector": lambda: session.analysis.detector,
        "culprits": lambda: session.analysis.culprits,
        "snapshots": lambda: session.snapshots,
        "site_tracker": lambda: session.site_tracker,
        "sites + site_rows": lambda: [session.sites, session.site_rows],
        "markers + keys": lambda: [session.markers, session._marker_keys],
        "new_events + notices": lambda: [session.new_events, session.notices],
    }
    rows = []
    started = time.perf_counter()
    for i in range(int(args.hours * 3600) + 1):
        seq += 1
        raw: dict[str, Any] = dict(template)
        raw["samples"] = [[seq, t0 + i, int(rss + (i % 997) * 4096), int(vms), 0, blocks]]
        raw["markers"] = []
        if census and i % 30 == 0:
            c = copy.deepcopy(census)
            c["taken_at"] = t0 + i
            c["total_objects"] = int(c.get("total_objects", 0)) + i % 7
            raw["census"] = c
        if summary is not None and i % 300 == 0:
            s = dict(summary)
            s["seq"] = int(summary.get("seq", 1)) + i
            s["taken_at"] = t0 + i
            raw["heap_summary"] = s
        session.apply_frame(raw)
        session.new_events.clear()  # the monitor drains them each poll
        if i % 3600 == 0:
            row = {"hour": i // 3600}
            row.update({name: deep_size(get()) for name, get in stores.items()})
            rows.append(row)
            print(json.dumps(row), flush=True)
    print(json.dumps({"frames_per_s": round(args.hours * 3600 / (time.perf_counter() - started))}))
    client.close()
    ag.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
