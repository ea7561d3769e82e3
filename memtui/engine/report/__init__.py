"""Provides the reports: the spec's JSON structure, and a writer that picks the format by extension."""

from __future__ import annotations

from memtui.engine.report.json_report import SCHEMA_VERSION, build_report
from memtui.engine.report.writer import write_report

__all__ = ["SCHEMA_VERSION", "build_report", "write_report"]
