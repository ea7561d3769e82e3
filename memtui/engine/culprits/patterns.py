"""Provides the profiler's pattern analysis: leaking tracebacks and suspicious patterns."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memtui.engine.culprits.sites import SiteGrowth, SiteGrowthTracker
from memtui.engine.facts.snapshot import AllocationTraceback, MemorySnapshot
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


def leaking_tracebacks(
    sites: SiteGrowthTracker[TraceKey], process_leaks: bool = False
) -> list[LeakingTraceback]:
    """Consistently growing sites, fastest first. Above the sites' floor (2 MB/h) on their
    own; at any rate once the detector finds the whole process leaking (then a consistently
    growing line is the leak's source, however slow, not garbage awaiting collection)."""
    found = sites.leaking(0.0) if process_leaks else sites.leaking()
    return [_as_leaking(g) for g in found if g.growth_mb_per_hour > 0]


def allocation_patterns(
    sites: SiteGrowthTracker[TraceKey], latest: MemorySnapshot | None
) -> dict[str, Any]:
    """Suspicious allocation-site patterns, each a dict with 'kind' and a 'description'.

    Named containers, caches, listeners, cycles and growing types come from the signature
    tracker (memtui.engine.culprits.signatures); this adds what only tracemalloc sites can tell.
    """
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
    named = {d["location"] for d in suspicious}
    for g in sites.leaking(0.0):  # consistent but below the leak floor: suspicious, not leaking
        slow = _as_leaking(g)
        if slow.location in named or slow.growth_mb_per_hour <= 0:
            continue
        suspicious.append(
            {
                "kind": "slowly_growing_allocation_site",
                "location": slow.location,
                "size_mb": round(slow.size_mb, 3),
                "growth_mb_per_hour": round(slow.growth_mb_per_hour, 4),
                "description": f"allocations at {slow.location} grow slowly but steadily: "
                f"{slow.growth_mb_per_hour:+.3f} MB/h, now {slow.size_mb:.2f} MiB",
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
    }
