"""Provides the profiler's pattern analysis: leaking tracebacks and suspicious allocation patterns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memtui.engine.sites import SiteGrowth, SiteGrowthTracker
from memtui.engine.snapshot import AllocationTraceback, MemorySnapshot
from memtui.probe.tracing import TraceKey

MIB: float = 1024.0 * 1024.0
DOMINANT_SHARE: float = 0.5
"""A single site holding more than this share of traced memory is worth a look."""


@dataclass(frozen=True, slots=True)
class LeakingTraceback:
    """An allocation site whose retained memory grew consistently across snapshots."""

    traceback: AllocationTraceback
    size_mb: float
    count: int
    growth_mb_per_hour: float
    r_squared: float
    snapshots: int

    @property
    def location(self) -> str:
        return str(self.traceback)

    def __str__(self) -> str:
        return (
            f"{self.location}: {self.size_mb:.2f} MiB in {self.count:,} blocks, "
            f"growing {self.growth_mb_per_hour:+.2f} MB/h over {self.snapshots} snapshots "
            f"(R² {self.r_squared:.2f})"
        )


def _as_leaking(g: SiteGrowth[TraceKey]) -> LeakingTraceback:
    return LeakingTraceback(
        traceback=AllocationTraceback(g.key),
        size_mb=g.size_bytes / MIB,
        count=g.count,
        growth_mb_per_hour=g.growth_mb_per_hour,
        r_squared=g.r_squared,
        snapshots=g.snapshots,
    )


def leaking_tracebacks(sites: SiteGrowthTracker[TraceKey]) -> list[LeakingTraceback]:
    """Consistently growing sites, fastest first."""
    return [_as_leaking(g) for g in sites.leaking()]


def allocation_patterns(
    sites: SiteGrowthTracker[TraceKey],
    types: SiteGrowthTracker[str],
    latest: MemorySnapshot | None,
    first: MemorySnapshot | None,
) -> dict[str, Any]:
    """Suspicious patterns, each a dict with 'kind' and a readable 'description'."""
    suspicious: list[dict[str, Any]] = []
    for leak in leaking_tracebacks(sites):
        suspicious.append(
            {
                "kind": "growing_allocation_site",
                "location": leak.location,
                "size_mb": round(leak.size_mb, 3),
                "growth_mb_per_hour": round(leak.growth_mb_per_hour, 3),
                "description": f"allocations at {leak.location} keep growing: "
                f"{leak.growth_mb_per_hour:+.2f} MB/h, now {leak.size_mb:.2f} MiB",
            }
        )
    for g in types.leaking():
        per_hour = g.growth_mb_per_hour * MIB  # the tracker's "bytes" are object counts here
        suspicious.append(
            {
                "kind": "growing_object_type",
                "type": g.key,
                "count": g.size_bytes,
                "first_count": g.first_size_bytes,
                "objects_per_hour": round(per_hour, 1),
                "description": f"{g.key} objects keep growing: {g.first_size_bytes:,} → "
                f"{g.size_bytes:,} ({per_hour:+,.0f}/h)",
            }
        )
    if latest is not None and latest.census is not None and first is not None:
        earlier = {}
        if first.census is not None:
            earlier = {c.object_id: c for c in first.census.largest_containers}
        for c in latest.census.largest_containers:
            before = earlier.get(c.object_id)
            if (
                before is not None
                and before.type_name == c.type_name
                and c.length > 2 * max(before.length, 1000)
            ):
                suspicious.append(
                    {
                        "kind": "unbounded_collection",
                        "type": c.type_name,
                        "length": c.length,
                        "first_length": before.length,
                        "description": f"a {c.type_name} grew {before.length:,} → {c.length:,} items",
                    }
                )
    if latest is not None and latest.gc is not None and latest.gc.garbage_count:
        suspicious.append(
            {
                "kind": "uncollectable_garbage",
                "count": latest.gc.garbage_count,
                "description": f"gc.garbage holds {latest.gc.garbage_count:,} uncollectable objects",
            }
        )
    if latest is not None and latest.traces is not None and latest.traces.traced_bytes > 0:
        top = latest.get_top_stats(1)
        if top and top[0].size > DOMINANT_SHARE * latest.traces.traced_bytes:
            share = top[0].size / latest.traces.traced_bytes
            suspicious.append(
                {
                    "kind": "dominant_site",
                    "location": top[0].location,
                    "size_mb": round(top[0].size_mb, 3),
                    "share": round(share, 3),
                    "description": f"{top[0].location} holds {share:.0%} of traced memory",
                }
            )
    return {
        "suspicious": suspicious,
        "growing_sites": [d for d in suspicious if d["kind"] == "growing_allocation_site"],
        "growing_types": [d for d in suspicious if d["kind"] == "growing_object_type"],
    }
