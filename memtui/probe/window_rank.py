"""Provides the ranking of watch-mode windows: per-window site growth, and sites ranked by
their median growth across windows with a sign test for "grows in most windows".

Why apart from the controller (memtui.probe.watch): this is pure arithmetic on what windows
found, tested on made-up windows, while the controller owns tracemalloc and its thread.
Standard library only.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from memtui.probe.tracing import TraceKey, is_user_file, site_frame

MAX_SITES: int = 200
"""Sites kept per window (half by growth, half by size) and in the full-trace ranking."""
SUSPECT_P: float = 0.05
"""A site is a suspect when growing in that many windows has at most this chance (sign test)."""
MIB: float = 1024.0 * 1024.0

Totals = dict[TraceKey, tuple[int, int]]


class Window(NamedTuple):
    """What one tracing window found, per site: (end bytes, end blocks, growth bytes, growth
    blocks), growth being end minus mid-window. Sites are ``(site_frame,)`` keys (see
    memtui.probe.tracing.site_index); ``stacks`` holds each one's heaviest full traceback."""

    t_end: float
    traced_s: float
    """Wall time tracemalloc was on for this window."""
    half_s: float
    """Wall time between the mid and end snapshots (growth is over this span)."""
    cost_s: float
    """Time spent taking and aggregating the two snapshots."""
    sites: dict[TraceKey, tuple[int, int, int, int]]
    stacks: dict[TraceKey, TraceKey] = {}  # noqa: RUF012  (shared, never mutated)
    process_blocks: int | None = None
    """Net change of the interpreter's allocated blocks (``sys.getallocatedblocks()``) over the
    same half window, read outside the snapshots: what the whole process kept, old objects'
    frees included. None: not measured."""


def window_sites(
    mid: Totals, end: Totals, keep: int = MAX_SITES
) -> dict[TraceKey, tuple[int, int, int, int]]:
    """Per site (end bytes, end blocks, growth bytes, growth blocks), bounded to ``keep`` sites."""
    rows: dict[TraceKey, tuple[int, int, int, int]] = {}
    for key in end.keys() | mid.keys():
        end_size, end_count = end.get(key, (0, 0))
        mid_size, mid_count = mid.get(key, (0, 0))
        rows[key] = (end_size, end_count, end_size - mid_size, end_count - mid_count)
    if len(rows) <= keep:
        return rows
    # Keep the sites that moved most (either way: churn must average out) and the biggest.
    chosen = dict.fromkeys(sorted(rows, key=lambda k: -abs(rows[k][2]))[: keep // 2])
    for key in sorted(rows, key=lambda k: -rows[k][0]):
        if len(chosen) >= keep:
            break
        chosen.setdefault(key)
    return {k: rows[k] for k in chosen}


def _site_row(key: TraceKey, size: int, count: int, stack: TraceKey | None) -> dict[str, Any]:
    """One ranked site: ``file``/``line`` are the site (the program's own line), ``frames`` the
    full traceback (most recent call first) and ``site`` the site's index in it."""
    frames = stack or key
    file, line = site_frame(key) if key else ("<unknown>", 0)
    index = frames.index((file, line)) if (file, line) in frames else 0
    return {
        "file": file,
        "line": line,
        "frames": [[f, n] for f, n in frames],
        "site": index,
        "user_code": is_user_file(file),
        "size_bytes": size,
        "count": count,
    }


def sign_test_p(positive: int, n: int) -> float:
    """One-sided sign test: chance of ``positive`` or more rises in ``n`` coin flips."""
    return sum(math.comb(n, k) for k in range(positive, n + 1)) / 2.0**n if n else 1.0


def process_block_rate(windows: list[Window]) -> float | None:
    """Median rate at which the process's allocated blocks grew over the windows' second
    halves (None before a window measured it).

    Measured in the very spans where the sites' growth is, so the two compare directly: a
    leaking line's blocks are kept and add to the process's; a turning-over buffer's new
    blocks are matched by the frees of its oldest, which tracing does not see. The median
    leaves out a window in which another thread freed or built something big.
    """
    import statistics

    rates = [w.process_blocks / w.half_s for w in windows if w.process_blocks is not None]
    return round(statistics.median(rates), 2) if rates else None


def rank_windows(
    windows: list[Window], limit: int = 50, started_at: float | None = None
) -> list[dict[str, Any]]:
    """Sites ranked by median growth per window (absent = 0), the biggest first.

    ``size_bytes``/``count`` (``size_kind`` 'window') are the median over windows of what the
    site allocated during a window and still held at its end: a window figure, not what it
    holds (tracing is off between windows, so older objects are not seen).
    ``growth_bytes_per_s`` is the median rate at which the site's live bytes grew while
    traced; from the second window on, ``rate_mb_per_hour`` is that rate and
    ``growth_bytes`` that rate times the time watched (since ``started_at``, else since the
    first window). Code runs slower while traced, so for CPU-bound code these underestimate.
    ``suspect``: the site grew in so many windows that chance is unlikely (sign test, p≤5%).
    """
    import statistics  # here, not at import: every program start pays for the agent's

    if not windows:
        return []
    n = len(windows)
    keys: set[TraceKey] = set()
    stacks: dict[TraceKey, TraceKey] = {}
    for w in windows:
        keys.update(w.sites)
        stacks.update(w.stacks)  # the latest window's traceback wins
    span = windows[-1].t_end - (started_at if started_at is not None else windows[0].t_end)
    rows: list[tuple[float, int, dict[str, Any]]] = []
    for key in keys:
        cells = [w.sites.get(key, (0, 0, 0, 0)) for w in windows]
        growth = [c[2] for c in cells]
        median_growth = statistics.median(growth)
        rate = statistics.median(c[2] / w.half_s for c, w in zip(cells, windows, strict=True))
        block_rate = statistics.median(c[3] / w.half_s for c, w in zip(cells, windows, strict=True))
        survived = sum(c[0] for c in cells)
        positive = sum(1 for g in growth if g > 0)
        size = int(statistics.median(c[0] for c in cells))
        count = int(statistics.median(c[1] for c in cells))
        row = _site_row(key, size, count, stacks.get(key))
        filled = n >= 2
        row.update(
            size_kind="window",
            survived_bytes=survived,
            growth_bytes_per_s=round(rate, 1),
            growth_blocks_per_s=round(block_rate, 2),
            rate_mb_per_hour=round(rate * 3600.0 / MIB, 4) if filled else None,
            growth_bytes=int(rate * max(0.0, span)) if filled else None,
            windows=positive,
            of_windows=n,
            suspect=median_growth > 0 and sign_test_p(positive, n) <= SUSPECT_P,
        )
        rows.append((max(0.0, median_growth), survived, row))
    rows.sort(key=lambda r: (-r[0], -r[1]))
    return [r[2] for r in rows[:limit]]


def rank_totals(
    totals: Totals,
    previous: Totals | None,
    dt_s: float,
    limit: int = 50,
    stacks: dict[TraceKey, TraceKey] | None = None,
    first: Totals | None = None,
    since_first_s: float = 0.0,
) -> list[dict[str, Any]]:
    """Sites of full traces ranked by live size (``size_kind`` 'held'), with the rate since
    the previous totals and the growth (and its rate) since the first totals."""
    ranked = sorted(totals.items(), key=lambda kv: -kv[1][0])[:limit]
    out = []
    for key, (size, count) in ranked:
        row = _site_row(key, size, count, (stacks or {}).get(key))
        row["size_kind"] = "held"
        if previous is not None and dt_s > 0:
            row["growth_bytes_per_s"] = round((size - previous.get(key, (0, 0))[0]) / dt_s, 1)
        if first is not None and since_first_s > 0:
            growth = size - first.get(key, (0, 0))[0]
            row["growth_bytes"] = growth
            row["rate_mb_per_hour"] = round(growth / MIB / (since_first_s / 3600.0), 4)
        out.append(row)
    return out
