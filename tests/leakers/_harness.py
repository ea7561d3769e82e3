"""Provides the loop shared by the leaking programs: leak a little, read signals, print JSON."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from memtui.probe.census import take_census  # noqa: E402
from memtui.probe.gcstats import GcMonitor  # noqa: E402
from memtui.probe.signals import collect_signals  # noqa: E402

SECONDS = float(os.environ.get("LEAKER_SECONDS", "2.4"))
INTERVAL = float(os.environ.get("LEAKER_INTERVAL", "0.2"))


def census_dict() -> dict[str, Any]:
    result = take_census(largest=5)
    return {
        "counts": result.counts,
        "total_objects": result.total_objects,
        "largest_containers": [c._asdict() for c in result.largest_containers],
    }


def emit(record: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(record) + "\n")
    sys.stdout.flush()


def run(
    step: Callable[[], None],
    census: bool = False,
    after: Callable[[], dict[str, Any]] | None = None,
) -> None:
    """Call ``step`` then record signals every INTERVAL seconds for SECONDS seconds."""
    monitor = GcMonitor(time_collections=False)
    monitor.install()
    t0 = time.monotonic()
    while (t := time.monotonic() - t0) < SECONDS:
        step()
        record: dict[str, Any] = {"t": t, "signals": collect_signals(min_len=200).to_dict()}
        record["gc"] = monitor.read()._asdict()
        if census:
            record["census"] = census_dict()
        emit(record)
        time.sleep(INTERVAL)
    if after is not None:
        emit({"t": time.monotonic() - t0, "collect": after()})
