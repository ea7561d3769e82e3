"""Provides RunBudget: a share of the target's run time that one costly mechanism may spend.

Why a share of the whole run and not a fixed period: a mechanism's cost (a tracing window, a
forked heap summary) is nearly the same in a 3-second program as in a service up for a week,
so a fixed cadence that is cheap for the service is a large slowdown of the short program.
Charging each use and letting the next one start only once the total stays under ``share``
of the time watched puts the first use late in a short run (a 3-s program never pays for
it) and keeps the long-run cost at the share, whatever the machine and the heap.
"""

from __future__ import annotations

import os

MIN_CPU_WEIGHT: float = 0.1
"""What a child's CPU costs the target even on an idle core: shared caches, memory bandwidth."""


def cpu_weight() -> float:
    """How much of a forked child's CPU time the target pays, from the machine's load: with a
    core nobody waits for, little (MIN_CPU_WEIGHT); on a saturated machine (a 2-core server
    under load) all of it, since the child's core is taken from the program or its peers."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return 1.0
    spare = cores - load
    return min(1.0, max(MIN_CPU_WEIGHT, 1.0 - spare))


def process_age_s() -> float:
    """Seconds since this process started (0.0 when /proc cannot say): an agent attached to a
    service up for hours counts those hours, so its first window or summary need not wait."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        with open("/proc/uptime", "rb") as f:
            uptime = float(f.read().split()[0])
        return max(0.0, uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return 0.0


class RunBudget:
    """``share`` of the seconds since ``started_s`` (one monotonic clock's) for one mechanism."""

    def __init__(self, share: float, started_s: float) -> None:
        if not 0.0 < share <= 1.0:
            raise ValueError(f"a run budget's share must be in (0, 1], not {share!r}")
        self.share = share
        self.started_s = started_s
        self.spent_s = 0.0
        self.uses = 0

    def charge(self, cost_s: float) -> None:
        """One use of the mechanism cost the target ``cost_s`` seconds."""
        self.spent_s += max(0.0, cost_s)
        self.uses += 1

    def earliest_s(self, expected_s: float, share: float | None = None) -> float:
        """The monotonic time from which a use expected to cost ``expected_s`` keeps the total
        within the share (``share`` overrides it, e.g. while a leak is suspected)."""
        return self.started_s + (self.spent_s + max(0.0, expected_s)) / (share or self.share)

    def restart(self, started_s: float) -> None:
        """A forked worker: its own run, nothing spent yet."""
        self.started_s = started_s
        self.spent_s = 0.0
        self.uses = 0
