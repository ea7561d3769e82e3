"""Provides MonitorFrame: everything the live monitor shows, computed outside the UI.

The monitor renders frames; it computes nothing itself. Every source (an agent session, an
outside-only watch, the in-process demo) produces frames with the same engine code that
builds reports, so the monitor and the report never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

SourceKind = Literal["agent", "outside", "in-process"]
Status = Literal["live", "paused", "exited", "disconnected"]


@dataclass(frozen=True, slots=True)
class SeriesPoint:
    """One point of the memory chart (bytes; None where that series is not known)."""

    t_s: float
    """Seconds since the first sample."""
    rss_bytes: float
    uss_bytes: float | None = None
    traced_bytes: float | None = None


@dataclass(frozen=True, slots=True)
class AllocatorRow:
    """One allocation site in the top-allocators pane."""

    file: str
    line: int
    function: str
    size_bytes: int
    count: int
    growth_bytes: int | None
    """Change since the baseline (None before a baseline exists)."""
    growth_mb_per_hour: float | None
    traceback: tuple[str, ...]
    """Frames as 'file:line in function', outermost first."""
    size_kind: Literal["held", "window"] = "held"
    """'held': bytes the site holds now (continuous tracing); 'window': bytes that survived
    the last tracing window (watch mode), a sample of what it allocates, not what it holds."""


@dataclass(frozen=True, slots=True)
class ObjectRow:
    """One type in the object-counts pane."""

    type_name: str
    count: int
    delta: int | None
    """Change since the baseline (None before a baseline exists)."""
    per_hour: float | None
    tracked: bool = False
    leaking: bool = False
    """The type most of a suspected leak's items are (the verdict's top suspect holds it)."""


@dataclass(frozen=True, slots=True)
class GcView:
    """The GC pane."""

    collections: tuple[int, int, int]
    collected: tuple[int, int, int]
    uncollectable: tuple[int, int, int]
    total_time_s: float | None
    recent_time_fraction: float | None
    """Share of the last minute spent in GC (None when pauses are not timed)."""
    thresholds: tuple[int, int, int]
    garbage_count: int


@dataclass(frozen=True, slots=True)
class SuspectView:
    """One named culprit in the verdict pane, by the path of the container that holds it."""

    kind: str
    """'unbounded_collection', 'event_listeners', 'lru_cache', 'growing_type', ... (Suspect)."""
    path: str
    """Where it lives, dotted: 'memtui.demo.ORDER_LOG', 'app.POOL._idle' (or a label such as
    'gc collections' for suspects with no container)."""
    detail: str
    """One readable line (what the report's suspect ``detail`` says)."""
    holds: str | None = None
    """Type of most of its items ('dict', 'app.Order', 'method')."""
    items: int | None = None
    """Entries now (len of the container)."""
    items_per_min: float | None = None
    mb_per_min: float | None = None
    """Growth of the bytes it retains, MiB per minute."""
    retained_bytes: int | None = None
    """Bytes it keeps alive (dominator tree of the latest heap summary)."""
    first_seen_s: float | None = None
    """Seconds since watching started when it was first seen growing."""
    chain: str = ""
    """The reference chain from a root: 'module memtui.demo → global ORDER_LOG → list'."""
    growth: tuple[tuple[float, float, float], ...] = ()
    """(t_s, items, retained_bytes) at each heap summary, oldest first, for the detail chart."""
    samples: tuple[str, ...] = ()
    """A few of its items as safe, truncated reprs."""


@dataclass(frozen=True, slots=True)
class VerdictView:
    """The leak-verdict pane (the same LeakDetector as the report)."""

    state: Literal["ok", "suspected", "leak", "insufficient_data"]
    rate_mb_per_hour: float
    confidence: float
    projected_oom_hours: float | None
    memory_limit_source: str | None
    reason: str
    suspects: tuple[str, ...]
    """Growing sites and types, most suspicious first, one readable line each."""
    suspect_rows: tuple[SuspectView, ...] = ()
    """The named culprits with their paths and growth, most suspicious first."""
    trend_start_s: float | None = None
    """Where the leak trend line starts on the chart (seconds since first sample)."""
    trend_intercept_bytes: float | None = None


@dataclass(frozen=True, slots=True)
class HeaderView:
    pid: int
    command: str
    python_version: str | None
    kind: SourceKind
    why_limited: str
    """For an outside-only source: why there is no agent, and what is missing."""
    uptime_s: float
    sample_interval_s: float
    status: Status
    exit_code: int | None = None
    ended_at: float | None = None
    """Wall time when the target exited."""
    tracing: str = "off"
    """'off', 'watch' (short windows) or 'continuous'."""


@dataclass(frozen=True, slots=True)
class MonitorFrame:
    """One refresh of the monitor."""

    seq: int
    header: HeaderView
    series: tuple[SeriesPoint, ...]
    """Downsampled for drawing; covers all history the source has."""
    current_rss_bytes: int
    peak_rss_bytes: int
    alert_threshold_bytes: int | None
    verdict: VerdictView
    allocators: tuple[AllocatorRow, ...] = ()
    objects: tuple[ObjectRow, ...] = ()
    gc: GcView | None = None
    events: tuple[str, ...] = ()
    baseline_at_s: float | None = None
    unavailable: tuple[str, ...] = field(default_factory=tuple)
    """Panes this source cannot fill ('allocators', 'objects', 'gc')."""
    objects_base_s: float | None = None
    """When the object counts' Delta and Rate start (the first census seen, or ``b``)."""
    markers: tuple[tuple[float, str], ...] = ()
    """Labelled instants (``m``, ``memtui.mark``): (seconds since the first sample, label)."""


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The outcome of a monitor command, for a notification."""

    ok: bool
    message: str
    path: str | None = None
    pending: bool = False
    """The file at ``path`` is still being written (a heap dump that outlasted the wait)."""


class Source(Protocol):
    """What the monitor needs from whatever it watches. Calls may block: run them in workers."""

    def poll(self, max_points: int = 600) -> MonitorFrame:
        """The latest frame (pulls new data first)."""
        ...

    def take_snapshot(self) -> CommandResult: ...

    def set_baseline(self) -> CommandResult: ...

    def collect_garbage(self) -> CommandResult: ...

    def set_tracing(self, on: bool) -> CommandResult: ...

    def dump_heap(self, out_dir: str) -> CommandResult: ...

    def mark(self, label: str) -> CommandResult:
        """Record a labelled instant that the chart and the reports show."""
        ...

    def export_report(self, out_dir: str) -> CommandResult:
        """Write the documented JSON report into ``out_dir``; the path in the result."""
        ...

    def close(self) -> None:
        """Leave the target running with its agent and history."""
        ...
