"""Provides the engine types from the agent's JSON shapes: census summaries and GC readings.

One place for these conversions: agent frames, recordings and signature tracking all read the
same shapes. Tolerant by design: a missing field takes its neutral value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memtui.probe.census import CensusResult, ContainerInfo
from memtui.probe.gcstats import GcReading

_GC_FIELDS: frozenset[str] = frozenset(GcReading._fields)
_GC_DEFAULTS: dict[str, Any] = {
    "collections": (0, 0, 0),
    "collected": (0, 0, 0),
    "uncollectable": (0, 0, 0),
    "time_s": (0.0, 0.0, 0.0),
    "max_pause_s": 0.0,
    "thresholds": (0, 0, 0),
    "garbage_count": 0,
    "timed": False,
}


def gc_from_dict(data: Mapping[str, Any]) -> GcReading:
    """A GcReading from dataclasses.asdict() output sent as JSON (lists back to tuples)."""
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items() if k in _GC_FIELDS}
    return GcReading(**{**_GC_DEFAULTS, **values})


def census_from_dict(data: Mapping[str, Any]) -> CensusResult:
    """A CensusResult from a census summary (top counts only)."""
    containers = tuple(
        ContainerInfo(
            str(c.get("type_name", "?")), int(c.get("length", 0)), int(c.get("object_id", 0))
        )
        for c in data.get("largest_containers") or ()
        if isinstance(c, Mapping)
    )
    return CensusResult(
        counts={str(k): int(v) for k, v in (data.get("counts") or {}).items()},
        total_objects=int(data.get("total_objects", 0)),
        duration_s=float(data.get("duration_s", 0.0)),
        max_hold_s=float(data.get("max_hold_s", 0.0)),
        largest_containers=containers,
    )
