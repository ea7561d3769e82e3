"""Provides the reports: the spec's JSON structure, and a writer that picks the format by extension.

Imported lazily, so that the writer (and `memtui --help`) do not pull in numpy.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SCHEMA_VERSION", "build_report", "write_report"]


def __getattr__(name: str) -> Any:
    if name in ("SCHEMA_VERSION", "build_report"):
        from memtui.engine.report import json_report

        return getattr(json_report, name)
    if name == "write_report":
        from memtui.engine.report.writer import write_report

        return write_report
    raise AttributeError(f"module 'memtui.engine.report' has no attribute {name!r}")
