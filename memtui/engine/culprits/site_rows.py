"""Provides the monitor's reading of the agent's ranked allocation sites: stats with growth and
rate, and which of them leak.

In watch mode a site's figures come from short tracing windows, which cannot tell "kept for
ever" from "kept longer than half a window" (a deque turning over, a TTL cache, the ints of
a bounded buffer): both grow in every window. So a line is called leaking only when (1) it
grew in so many windows that chance is unlikely (sign test), (2) its rate is at least
``MIN_SITE_RATE_MB_PER_HOUR``, (3) the process itself leaks: the leak detector suspects
or confirms a leak, at a rate of at least ``PROCESS_SHARE`` of the site's, and (4) the
interpreter's allocated blocks (``sys.getallocatedblocks()``, exact) grew in the windows'
second halves at least ``BLOCK_SHARE`` of the site's block rate there
(memtui.probe.window_rank.process_block_rate): blocks kept for ever add up, blocks of a
turning-over buffer are matched by the frees of its oldest, which tracing does not see. Both
block rates come from the same spans, so a leak's line and the process agree within noise;
the program's imports, its warm-up and the agent's own buffers filling (which a whole-run
rate counted) are outside them. Code runs slower while traced, so the site's rates are lower
bounds of the untraced ones, and a real leak passes (3) with room to spare; a turnover site
never passes (4), even when its RSS creeps (the red herring (3) alone let through). A busy
buffer in a process that leaks elsewhere can still pass (4): the other leak's blocks count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from memtui.engine.culprits.sites import MIN_SITE_RATE_MB_PER_HOUR, SiteGrowth
from memtui.engine.facts.frames import SiteRow
from memtui.engine.facts.snapshot import AllocationStat, AllocationTraceback, SizeKind
from memtui.probe.tracing import TraceKey
from memtui.probe.window_rank import SUSPECT_P, sign_test_p

MIB: float = 1024.0 * 1024.0
PROCESS_SHARE: float = 0.25
"""The process must grow at this share of a site's rate for the site to be called leaking."""
BLOCK_SHARE: float = 0.5
"""The process's blocks must grow at this share of a site's block rate in the same windows."""


@dataclass(frozen=True, slots=True)
class SiteLeak:
    """An allocation site that leaks, with the evidence (windows or snapshots)."""

    stat: AllocationStat
    growth_mb_per_hour: float
    method: Literal["windows", "snapshots"]
    windows: int | None = None
    """Windows in which the site grew (method 'windows')."""
    of_windows: int | None = None
    p_value: float | None = None
    """Chance of growing in that many windows by luck (one-sided sign test)."""
    r_squared: float | None = None
    """Linear fit of the site's held bytes over snapshots (method 'snapshots')."""
    snapshots: int | None = None

    @classmethod
    def from_growth(cls, g: SiteGrowth[TraceKey]) -> SiteLeak:
        stat = AllocationStat(
            AllocationTraceback(g.key),
            g.size_bytes,
            g.count,
            growth_bytes=g.growth_bytes,
            growth_mb_per_hour=g.growth_mb_per_hour,
        )
        return cls(stat, g.growth_mb_per_hour, "snapshots", r_squared=g.r_squared,
                   snapshots=g.snapshots)  # fmt: skip


def stat_from_row(row: SiteRow, default_kind: SizeKind = "held") -> AllocationStat:
    """One site row (memtui.probe.watch) as an AllocationStat with growth and rate."""
    return AllocationStat(
        AllocationTraceback(row.frames, row.site),
        row.size_bytes,
        row.count,
        size_kind=row.size_kind or default_kind,
        growth_bytes=row.growth_bytes,
        growth_mb_per_hour=row.rate_mb_per_hour,
    )


def stats_from_rows(
    rows: Sequence[SiteRow] | None, default_kind: SizeKind = "held"
) -> list[AllocationStat]:
    """The rows as one stat per site, in their order (the agent's: leaking first in watch
    mode, by size with full traces). Rows of several tracebacks of one site (a profiler's
    recording) are summed, the first one's traceback kept."""
    out: dict[tuple[str, int], AllocationStat] = {}
    for row in rows or ():
        stat = stat_from_row(row, default_kind)
        site = stat.traceback.site_frame
        seen = out.get(site)
        out[site] = (
            stat
            if seen is None
            else dataclasses.replace(
                seen, size=seen.size + stat.size, count=seen.count + stat.count
            )
        )
    return list(out.values())


def window_leaks(
    rows: Sequence[SiteRow] | None,
    process_leaks: bool,
    process_rate_mb_per_hour: float,
    min_rate_mb_per_hour: float = MIN_SITE_RATE_MB_PER_HOUR,
    process_blocks_per_s: float | None = None,
) -> list[SiteLeak]:
    """Sites of watch-mode rows that leak (see the module docstring), fastest first.

    ``process_leaks``: the detector suspects or confirms a leak of the whole process, whose
    trend is ``process_rate_mb_per_hour``; ``process_blocks_per_s``: the median net change of
    its allocated blocks per second in the windows' second halves (None: not measured, rule
    (4) is not applied).
    """
    if not process_leaks:
        return []
    found = []
    for row in rows or ():
        if row.size_kind != "window":
            continue
        n = row.of_windows or 0
        positive = row.windows or 0
        rate = row.rate_mb_per_hour
        if rate is None or rate < min_rate_mb_per_hour or n < 2:
            continue
        p = sign_test_p(positive, n)
        if p > SUSPECT_P or process_rate_mb_per_hour < PROCESS_SHARE * rate:
            continue
        blocks = row.blocks_per_s
        turnover = (
            process_blocks_per_s is not None
            and blocks is not None
            and blocks > 0
            and process_blocks_per_s < BLOCK_SHARE * blocks
        )
        if turnover:
            continue  # its blocks are freed as fast as it makes them
        stat = stat_from_row(row, "window")
        found.append(SiteLeak(stat, rate, "windows", positive, n, round(p, 6)))
    found.sort(key=lambda s: -s.growth_mb_per_hour)
    return found
