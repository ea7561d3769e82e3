"""Provides a gunicorn config that starts one part of memtui's agent alone in the worker.

``COST_PART`` names the part (cost.py sets it): ``gc`` (the GC callback), ``sampler`` (the
agent's 1-s sample: /proc read, allocated blocks, ring and history), ``census`` (type census
and leak signals every ``COST_EVERY`` s), ``watch`` (a watch window of 0.25 s every
``COST_EVERY`` s), ``summary`` (a forked heap summary every ``COST_EVERY`` s). Nothing else of
memtui runs: no socket, no monitor, no recording.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

_KEEP: list[Any] = []


def _every(period_s: float, fn: Any) -> None:
    def loop() -> None:
        while True:
            time.sleep(period_s)
            fn()

    threading.Thread(target=loop, name="memtui-cost", daemon=True).start()


def post_fork(server: Any, worker: Any) -> None:
    part = os.environ.get("COST_PART", "")
    every = float(os.environ.get("COST_EVERY", "15"))
    if part == "gc":
        from memtui.probe.gcstats import GcMonitor

        gcm = GcMonitor(time_collections=True)
        gcm.install()
        _KEEP.append(gcm)
    elif part == "sampler":
        import sys
        from collections import deque

        from memtui.probe.history import History
        from memtui.probe.memory import ProcMemoryReader

        reader = ProcMemoryReader()
        history = History(("rss", "vms", "traced", "blocks"))
        ring: deque[tuple[float, int, int, int]] = deque(maxlen=3600)

        def sample() -> None:
            r = reader.read()
            t = time.time()
            blocks = sys.getallocatedblocks()
            ring.append((t, r.rss_bytes, r.vms_bytes, blocks))
            history.append(t, (float(r.rss_bytes), float(r.vms_bytes), 0.0, float(blocks)))

        _every(1.0, sample)
    elif part == "census":
        from memtui.probe.census import take_census
        from memtui.probe.signals import collect_signals

        _every(every, lambda: (take_census(largest=10), collect_signals().to_dict()))
    elif part == "watch":
        from memtui.probe.watch import TraceController

        tracer = TraceController("watch", period_s=every, first_window_s=1.0)
        tracer.start()
        _KEEP.append(tracer)
    elif part == "summary":
        from memtui.probe.heap.summary import HeapSummaries

        summaries = HeapSummaries(first_after_s=1.0, min_interval_s=every, budget_share=None)
        summaries.fixed = True
        _every(0.5, summaries.tick)
        _KEEP.append(summaries)
    elif part:
        raise SystemExit(f"cost_conf: unknown COST_PART={part!r}")
