"""Provides MemtuiError and one subclass per domain, each with the CLI exit code it maps to."""

from __future__ import annotations

from typing import ClassVar


class MemtuiError(Exception):
    """A failure the user can act on: the CLI prints it on one line and exits non-zero."""

    exit_code: ClassVar[int] = 1
    title: ClassVar[str] = "memtui error"


class UsageError(MemtuiError, ValueError):
    """Nonsense flag values or an impossible combination of options."""

    exit_code = 2
    title = "usage error"


class TargetProcessError(MemtuiError):
    """The process to watch is unknown, gone, or not ours to read."""

    title = "target process"


class TracingError(MemtuiError):
    """A bad profiler state transition (start twice, stop before start) or tracemalloc trouble."""

    title = "tracing"


class ReportError(MemtuiError):
    """A report could not be written (bad extension, unwritable path, full disk)."""

    title = "report"


class SeriesError(MemtuiError):
    """A recorded memory series (CSV) is missing, unreadable or malformed."""

    title = "memory series"


class HeapDumpError(MemtuiError):
    """Heap dumps are unavailable, or a dump file is corrupt, truncated or foreign."""

    title = "heap dump"
