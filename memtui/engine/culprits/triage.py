"""Provides triage_rss: is RSS growth Python objects, native memory, or allocator retention?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import median
from typing import Any, Literal

MIB: float = 1024.0 * 1024.0
MIN_RSS_GROWTH_BYTES: float = 8 * MIB
MIN_RSS_GROWTH_SHARE: float = 0.05
PYTHON_SHARE: float = 0.5
NATIVE_SHARE: float = 0.2
BLOCK_GROWTH: float = 0.05
BLOCK_FLAT: float = 0.02
PY_DROP_SHARE: float = 0.2
RETAINED_SHARE: float = 0.5
FREE_HIGH_BYTES: float = 32 * MIB

Verdict = Literal[
    "python_objects", "native", "allocator_retention", "mixed", "no_growth", "insufficient_data"
]
Sample = tuple[float, float, "float | None", "float | None", "float | None"]
"""(t_s, rss_bytes, traced_bytes, allocated_blocks, malloc_free_bytes); None = not measured."""


@dataclass(frozen=True, slots=True)
class Triage:
    """The verdict, a sentence a person understands, and the numbers behind it."""

    verdict: Verdict
    explanation: str
    rss_change_bytes: float
    traced_change_bytes: float | None
    blocks_change: float | None
    blocks_change_share: float | None
    """Relative change of sys.getallocatedblocks() over the window."""
    python_share: float | None
    """Traced growth / RSS growth (None without tracemalloc)."""
    malloc_free_bytes: float | None
    """malloc's free-but-held bytes (fordblks) at the end of the window."""
    span_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _ends(values: Sequence[float | None]) -> tuple[float, float] | None:
    """Robust start and end: medians of the first and last fifth (None if any is missing)."""
    known = [v for v in values if v is not None]
    if len(known) < len(values) or len(known) < 2:
        return None
    k = max(1, len(known) // 5)
    return median(known[:k]), median(known[-k:])


def _mb(x: float) -> str:
    return f"{x / MIB:+,.1f} MB"


def triage_rss(samples: Sequence[Sample]) -> Triage:
    """Say what the RSS change over ``samples`` (time-ordered) is made of. Pure function.

    Start and end are the medians of the first and last fifth of the samples. Rules, in order:

    1. fewer than 3 samples → ``insufficient_data``.
    2. **allocator_retention**: Python's own counts fell — traced bytes by ≥ 20 % (and ≥ 8 MB),
       or allocated blocks by ≥ 20 % — while RSS gave back less than half of that (with
       blocks only, RSS fell by < 20 %). Also when RSS grew ≥ 8 MB and 5 % while Python
       stayed flat but malloc's free bytes (fordblks) grew by ≥ half of the RSS growth.
    3. RSS grew < 8 MB or < 5 % → ``no_growth``.
    4. With traced bytes: traced growth ≥ 50 % of RSS growth → ``python_objects``;
       ≤ 20 % → ``native``; in between → ``mixed``.
       Without traced bytes, with blocks: blocks grew ≥ 5 % → ``python_objects``; changed
       < 2 % → ``native`` (untraced — objects > 512 bytes bypass pymalloc and are not in
       the block count, so this reads "not small Python objects"); else ``mixed``.
    5. Neither traced bytes nor blocks → ``insufficient_data``.
    """
    n = len(samples)
    if n < 3:
        return Triage(
            "insufficient_data", "fewer than 3 samples", 0.0, None, None, None, None, None, 0.0
        )
    span = samples[-1][0] - samples[0][0]
    rss = _ends([s[1] for s in samples])
    assert rss is not None
    traced = _ends([s[2] for s in samples])
    blocks = _ends([s[3] for s in samples])
    free = _ends([s[4] for s in samples])
    d_rss = rss[1] - rss[0]
    d_traced = traced[1] - traced[0] if traced else None
    d_blocks = blocks[1] - blocks[0] if blocks else None
    blocks_share = (
        d_blocks / blocks[0] if blocks and blocks[0] > 0 and d_blocks is not None else None
    )
    share = d_traced / d_rss if d_traced is not None and d_rss > 0 else None
    free_end = free[1] if free else None

    def result(verdict: Verdict, why: str) -> Triage:
        return Triage(verdict, why, d_rss, d_traced, d_blocks, blocks_share, share, free_end, span)

    free_note = ""
    if free_end is not None and free_end >= MIB:
        free_note = f"; malloc holds {free_end / MIB:,.0f} MB free (fordblks)"
    # 2. Retention: Python's memory went down, the process's did not.
    py_fell = (
        traced is not None
        and d_traced is not None
        and (-d_traced >= PY_DROP_SHARE * traced[0] and -d_traced >= MIN_RSS_GROWTH_BYTES)
    )
    if py_fell and d_traced is not None and -d_rss < RETAINED_SHARE * -d_traced:
        return result(
            "allocator_retention",
            f"Python's traced memory fell {-d_traced / MIB:,.1f} MB but RSS changed only "
            f"{_mb(d_rss)}: "
            f"freed memory is kept by the allocator (fragmentation){free_note}",
        )
    blocks_fell = traced is None and blocks_share is not None and blocks_share <= -PY_DROP_SHARE
    if blocks_fell and blocks_share is not None and d_rss > -PY_DROP_SHARE * rss[0]:
        return result(
            "allocator_retention",
            f"Python's allocated blocks fell {-blocks_share:.0%} but RSS changed only "
            f"{_mb(d_rss)}: freed memory is kept by the allocator (fragmentation){free_note}",
        )
    grew = d_rss >= MIN_RSS_GROWTH_BYTES and d_rss >= MIN_RSS_GROWTH_SHARE * rss[0]
    py_flat = (share is not None and share <= NATIVE_SHARE) or (
        share is None and blocks_share is not None and abs(blocks_share) < BLOCK_FLAT
    )
    if grew and py_flat and free is not None and free[1] - free[0] >= RETAINED_SHARE * d_rss:
        return result(
            "allocator_retention",
            f"RSS grew {_mb(d_rss)} while Python's memory stayed flat and malloc's free bytes "
            f"grew {_mb(free[1] - free[0])}: fragmentation, not a leak of live objects",
        )
    if not grew:
        return result("no_growth", f"RSS changed {_mb(d_rss)} over {span / 3600:.2f} h: no growth")
    if share is not None and d_traced is not None:
        numbers = f"RSS {_mb(d_rss)}, traced {_mb(d_traced)} ({share:.0%} of it)"
        if share >= PYTHON_SHARE:
            return result("python_objects", f"{numbers}: Python objects are growing")
        if share <= NATIVE_SHARE:
            return result(
                "native",
                f"{numbers}: native memory tracemalloc does not see (C extensions, "
                f"ctypes/malloc, memory maps, thread stacks){free_note}",
            )
        return result("mixed", f"{numbers}: both Python objects and native memory grow")
    if blocks_share is not None and d_blocks is not None:
        numbers = f"RSS {_mb(d_rss)}, allocated blocks {d_blocks:+,.0f} ({blocks_share:+.1%})"
        if blocks_share >= BLOCK_GROWTH:
            return result("python_objects", f"{numbers}: Python objects are growing")
        if abs(blocks_share) < BLOCK_FLAT:
            return result(
                "native",
                f"{numbers}: not small Python objects — native memory or large buffers "
                f"(enable tracemalloc to tell them apart){free_note}",
            )
        return result("mixed", f"{numbers}: partly Python objects")
    return result("insufficient_data", f"RSS {_mb(d_rss)}; no traced memory or block counts")
