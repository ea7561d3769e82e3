"""memtui: a memory profiler and live terminal monitor for Python processes.

``from memtui import MemoryProfiler`` gives the spec's in-process API.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "LeakDetector",
    "MemoryMetrics",
    "MemoryProfiler",
    "MemorySnapshot",
    "__version__",
    "analyze_snapshot_growth",
    "mark",
    "validate_consistency",
]


def __getattr__(name: str) -> Any:
    """Import the engine lazily, so `python -m memtui --help` and the probe stay light."""
    if name == "mark":
        from memtui.markers import mark

        return mark
    if name == "MemoryProfiler":
        from memtui.engine.profiler import MemoryProfiler

        return MemoryProfiler
    if name == "MemorySnapshot":
        from memtui.engine.facts.snapshot import MemorySnapshot

        return MemorySnapshot
    if name == "MemoryMetrics":
        from memtui.engine.facts.metrics import MemoryMetrics

        return MemoryMetrics
    if name == "LeakDetector":
        from memtui.engine.detect.detector import LeakDetector

        return LeakDetector
    if name in ("analyze_snapshot_growth", "validate_consistency"):
        from memtui.engine.culprits import growth

        return getattr(growth, name)
    raise AttributeError(f"module 'memtui' has no attribute {name!r}")
