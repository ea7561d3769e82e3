"""Provides the budget for what watch windows leak in CPython's tracemalloc before 3.13.

Before 3.13, tracemalloc.stop() clears its table of tracebacks without freeing them: each
window leaks about 64 + 16 x frames bytes per distinct traceback it saw, forever (45-60 KB a
window for the soak's Flask app, measured with glibc's mallinfo2 in
benchmarks/soak/malloc_growth.py; flat on 3.13). Windows stop once the estimate reaches the
budget, so what memtui leaves in the target is bounded. Standard library only.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable

from memtui.probe.tracing import TraceKey

LEAKY_STOP: bool = sys.implementation.name == "cpython" and sys.version_info < (3, 13)
"""CPython before 3.13 never frees tracemalloc's tracebacks when tracing stops: each window
leaks ~64 + 16 x frames bytes per distinct traceback seen (45-60 KB a window for a Flask app;
benchmarks/soak/malloc_growth.py). There, windows stop once LEAK_BUDGET_BYTES are spent."""
LEAK_BUDGET_BYTES: int = 8 * 1024 * 1024
"""About 160 windows of that app: 40 minutes at the default period, then the ranking stays."""
LEAK_FACTOR: float = 6.0
"""Leaked / estimated from the end snapshot's distinct tracebacks (live blocks only; blocks
freed inside the window had theirs too): 5.8 measured on the soak's Flask app."""


def leak_bytes(tracebacks: Iterable[TraceKey]) -> int:
    """What tracemalloc keeps for these distinct tracebacks once it stops (LEAKY_STOP)."""
    return sum(64 + 16 * len(tb) for tb in tracebacks)


def stopped_note(leaked: int, budget: int) -> str:
    """Why windows stopped ('' while the budget is not spent, or there is none)."""
    if budget and leaked >= budget:
        return (
            f"watch windows stopped: this Python's tracemalloc keeps ~{leaked / 2**20:.0f} MB "
            "of tracebacks the windows left (a CPython leak, fixed in 3.13)"
        )
    return ""
