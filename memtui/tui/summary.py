"""Provides summary_line: the one line printed after the monitor closes."""

from __future__ import annotations

from memtui.engine.monitor.frame import MonitorFrame
from memtui.tui.units import format_bytes, format_percent, format_rate_mib_per_hour, format_uptime

_VERDICT = {
    "ok": "no leak detected",
    "suspected": "leak suspected",
    "leak": "LEAK",
    "insufficient_data": "too little data for a verdict",
}


def summary_line(frame: MonitorFrame | None) -> str:
    """``pid 4242: LEAK at +40 MiB/h (confidence 94%); RSS 214 MiB, peak 220 MiB over 1h 00m``."""
    if frame is None:
        return "memtui: no data was received from the target"
    verdict = frame.verdict
    text = f"pid {frame.header.pid}: {_VERDICT.get(verdict.state, verdict.state)}"
    if verdict.state != "ok":
        text += (
            f" at {format_rate_mib_per_hour(verdict.rate_mb_per_hour)}"
            f" (confidence {format_percent(verdict.confidence)})"
        )
    text += (
        f"; RSS {format_bytes(frame.current_rss_bytes)}, peak {format_bytes(frame.peak_rss_bytes)}"
        f" over {format_uptime(frame.header.uptime_s)}"
    )
    if frame.header.status == "exited" and frame.header.exit_code is not None:
        text += f"; target exited with code {frame.header.exit_code}"
    return text
