"""Provides check_arguments: MemoryProfiler's arguments, checked before anything starts.

A wrong value is a UsageError with one line naming the argument and the value (the CLI turns
it into one line and exit 2), never a failure hours later in the sampler thread.
"""

from __future__ import annotations

from memtui.errors import UsageError

SHORT_RUN_S: float = 60.0
SHORT_RUN_BUDGET: float = 0.10
"""In the first minute snapshots may take up to 10% of wall time (then ``overhead_budget``):
a CI run of 10 s that asked for snapshots every 0.5 s gets several, not one. Samples come
faster early on too (memtui.probe.collector: elapsed/32, at least 0.05 s), so a run of any
length past 1.6 s has the 32 samples a verdict needs."""


def require(condition: bool, message: str) -> None:
    if not condition:
        raise UsageError(message)


def check_arguments(
    *,
    snapshot_interval: float,
    sample_interval: float,
    trace_limit: int,
    tracemalloc_frames: int,
    growth_threshold_mb_per_hour: float,
    alert_threshold_mb: float | None,
    overhead_budget: float,
    gc_threshold: tuple[int, ...] | None,
) -> None:
    """UsageError for the first argument out of its range."""
    require(snapshot_interval > 0, f"snapshot_interval must be > 0, got {snapshot_interval!r}")
    require(sample_interval > 0, f"sample_interval must be > 0, got {sample_interval!r}")
    require(trace_limit >= 1, f"trace_limit must be >= 1, got {trace_limit!r}")
    require(tracemalloc_frames >= 1, f"tracemalloc_frames must be >= 1, got {tracemalloc_frames!r}")
    require(
        growth_threshold_mb_per_hour > 0,
        f"growth_threshold_mb_per_hour must be > 0, got {growth_threshold_mb_per_hour!r}",
    )
    require(
        alert_threshold_mb is None or alert_threshold_mb > 0,
        f"alert_threshold_mb must be > 0, got {alert_threshold_mb!r}",
    )
    require(0 < overhead_budget <= 1, f"overhead_budget must be in (0, 1], got {overhead_budget!r}")
    if gc_threshold is not None:
        require(
            len(gc_threshold) in (1, 2, 3) and all(int(x) >= 0 for x in gc_threshold),
            f"gc_threshold must be up to 3 non-negative ints, got {gc_threshold!r}",
        )
