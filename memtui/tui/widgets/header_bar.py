"""Provides HeaderBar: who is watched, how, and whether the view is live, paused or frozen."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import RenderResult
from textual.reactive import reactive

from memtui.engine.monitor.frame import HeaderView, MonitorFrame
from memtui.tui.units import (
    format_bytes,
    format_percent,
    format_rate_mib_per_hour,
    format_uptime,
    local_clock,
)
from memtui.tui.widgets.diff_refresh import DiffRefresh

KIND_LABELS = {"agent": "agent", "outside": "outside-only", "in-process": "in-process"}
VERDICT_LABELS = {"ok": "OK", "suspected": "SUSPECTED", "leak": "LEAK", "insufficient_data": "WAIT"}


def status_text(
    header: HeaderView | None,
    paused_at: float | None,
    error: str | None,
    clock: Callable[[float], str] = local_clock,
) -> str:
    """The status words: ``LIVE``, ``PAUSED at 12:00:03``, ``EXITED at ... (exit code 1)``."""
    if header is None:
        return "CONNECTING" if error is None else f"DISCONNECTED: {error}"
    if header.status == "exited":
        at = f" at {clock(header.ended_at)}" if header.ended_at is not None else ""
        code = f" (exit code {header.exit_code})" if header.exit_code is not None else ""
        return f"TARGET EXITED{at}{code}"
    if error is not None or header.status == "disconnected":
        return f"DISCONNECTED: {error}" if error else "DISCONNECTED"
    if paused_at is not None:
        return f"PAUSED at {clock(paused_at)}"
    return "LIVE"


class HeaderBar(DiffRefresh):
    """Three lines: the target; the source and sampling; the status and the verdict in brief."""

    frame: reactive[MonitorFrame | None] = reactive(None, repaint=False)
    """The latest frame."""
    paused_at: reactive[float | None] = reactive(None, repaint=False)
    """Wall time the user paused at (None: not paused)."""
    error: reactive[str | None] = reactive(None, repaint=False)
    """Why the source cannot be reached (None: it can)."""
    busy: reactive[str] = reactive("", repaint=False)
    """Commands still running, e.g. ``heap dump``."""

    def __init__(
        self, *, clock: Callable[[float], str] = local_clock, id: str | None = None
    ) -> None:
        self._clock = clock
        super().__init__(id=id)

    @property
    def status(self) -> str:
        """The status words shown now."""
        header = self.frame.header if self.frame is not None else None
        return status_text(header, self.paused_at, self.error, self._clock)

    def _sync_classes(self) -> None:
        status = self.status
        self.set_class(status.startswith("PAUSED"), "-paused")
        self.set_class(status.startswith("TARGET EXITED"), "-exited")
        self.set_class(status.startswith(("DISCONNECTED", "CONNECTING")), "-disconnected")

    def watch_frame(self) -> None:
        self._sync_classes()
        self.refresh_changed()

    def watch_paused_at(self) -> None:
        self._sync_classes()
        self.refresh_changed()

    def watch_error(self) -> None:
        self._sync_classes()
        self.refresh_changed()

    def watch_busy(self) -> None:
        self.refresh_changed()

    def render(self) -> RenderResult:
        frame = self.frame
        header = frame.header if frame is not None else None
        status = self.status
        text = Text(no_wrap=True, overflow="ellipsis")
        if header is None:
            text.append("memtui", style="bold")
            text.append(f"  {status}\nwaiting for the first frame...")
            return text
        text.append(f"pid {header.pid}", style="bold")
        text.append(f"  {header.command}\n")
        python = f"Python {header.python_version}  " if header.python_version else ""
        kind = KIND_LABELS.get(header.kind, header.kind)
        text.append(
            f"{python}up {format_uptime(header.uptime_s)}  source {kind}  "
            f"every {header.sample_interval_s:g} s  tracing {header.tracing}"
        )
        if header.why_limited:
            text.append(f"  ({header.why_limited})", style="italic")
        text.append("\n")
        text.append(f" {status} ", style="reverse bold")
        assert frame is not None
        verdict = frame.verdict
        text.append("  verdict ")
        text.append(VERDICT_LABELS.get(verdict.state, verdict.state), style="bold")
        if verdict.state != "ok":
            text.append(
                f" {format_rate_mib_per_hour(verdict.rate_mb_per_hour)}"
                f" ({format_percent(verdict.confidence)})"
            )
        text.append(
            f"  RSS {format_bytes(frame.current_rss_bytes)}"
            f"  peak {format_bytes(frame.peak_rss_bytes)}"
        )
        if self.busy:
            text.append(f"  working: {self.busy}...", style="italic")
        return text
