"""Provides write_report: picks the format from the file extension and writes atomically."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from memtui.errors import ReportError

FORMATS: dict[str, str] = {".json": "json", ".html": "html"}


def render_report(report: dict[str, Any], fmt: str = "json") -> str:
    """The report as text in ``fmt`` ('json', or 'html': the detailed, self-contained report)."""
    if fmt == "html":
        from memtui.engine.report.html_report import render_html

        return render_html(report)
    if fmt != "json":
        raise ReportError(f"unknown report format {fmt!r}; use json or html")
    return json.dumps(report, indent=2, allow_nan=False) + "\n"


def format_for(path: str) -> str:
    """Format name for ``path``: '-' is stdout (JSON); otherwise by extension."""
    if path == "-":
        return "json"
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise ReportError(
            f"unknown report extension {ext or '(none)'!r} in {path!r}; use .json or .html"
        )
    return FORMATS[ext]


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


def write_report(report: dict[str, Any], path: str) -> str:
    """Write ``report`` to ``path`` ('-' for stdout); returns the absolute path written.

    The file appears complete or not at all: written under a temporary name, then renamed.
    """
    text = render_report(report, format_for(path))
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return "-"
    target = Path(path).expanduser().resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        # mkstemp makes the file 0600; a report is an ordinary file, so follow the umask.
        os.fchmod(fd, 0o666 & ~_umask())
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    except OSError as exc:
        raise ReportError(
            f"cannot write report to {str(target)!r}: {exc.strerror or exc}"
        ) from None
    return str(target)
