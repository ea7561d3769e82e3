"""Provides MemoryProfiler, the spec's in-process API (memory_profiler), and its helpers:
the user's callbacks on their event loop (alerts) and the run's recording (run_recording)."""

from __future__ import annotations

from memtui.engine.profiler.memory_profiler import MemoryProfiler

__all__ = ["MemoryProfiler"]
