"""Provides RssChart: RSS (and USS, traced memory) over time, the alert line and the leak trend."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final

from rich.text import Text
from textual import events
from textual.app import RenderResult
from textual.geometry import Region
from textual.reactive import reactive
from textual_plotext import PlotextPlot

from memtui.engine.monitor.frame import MonitorFrame
from memtui.tui.units import MIB, format_bytes, format_elapsed_tick

WINDOWS: Final[tuple[tuple[str, float | None], ...]] = (
    ("5 min", 300.0),
    ("1 h", 3600.0),
    ("24 h", 86400.0),
    ("all", None),
)
"""The time windows keys 1-4 pick: a label and a span in seconds (None: all history)."""

_TIME_STEPS: Final = (
    1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200,
    86400, 172800, 432000, 864000,
)  # fmt: skip


def nice_time_step(span_s: float, ticks: int = 5) -> float:
    """A round tick step (1 s ... 10 d) giving about ``ticks`` ticks over ``span_s``."""
    target = max(span_s, 1.0) / ticks
    return float(next((s for s in _TIME_STEPS if s >= target), _TIME_STEPS[-1]))


def nice_step(span: float, ticks: int = 4) -> float:
    """A 1-2-5 step giving about ``ticks`` ticks over ``span``."""
    raw = max(span, 1e-9) / ticks
    mag = 10 ** math.floor(math.log10(raw))
    return float(next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw))


@dataclass(frozen=True)
class ChartView:
    """What to draw, in display units, already downsampled; equal views draw the same picture."""

    unit: str
    x_lim: tuple[float, float]
    y_lim: tuple[float, float]
    x_ticks: tuple[float, ...]
    y_ticks: tuple[float, ...]
    series: tuple[tuple[str, tuple[tuple[int, int], ...]], ...]
    """(name, pixels) per series: the picture's fingerprint, used to skip redraws."""
    lines: tuple[tuple[str, tuple[float, ...], tuple[float, ...]], ...] = field(compare=False)
    """(name, xs, ys) per series to plot."""
    threshold: float | None
    trend: tuple[tuple[float, float], tuple[float, float]] | None = field(compare=False)
    markers: tuple[tuple[float, str], ...] = ()
    """(t_s, label) of the markers inside the window."""


def _downsample(
    points: Sequence[tuple[float, float]], x_lim: tuple[float, float], columns: int
) -> list[tuple[float, float]]:
    """Keep the first, min and max point of each pixel column (peaks and dips stay visible)."""
    if len(points) <= 2 * columns:
        return list(points)
    lo, hi = x_lim
    width = (hi - lo) / columns or 1.0
    out: list[tuple[float, float]] = []
    bucket: list[tuple[float, float]] = []
    current = None
    for p in points:
        col = int((p[0] - lo) / width)
        if col != current and bucket:
            out.extend(sorted({min(bucket, key=lambda q: q[1]), max(bucket, key=lambda q: q[1])}))
            bucket = []
        current = col
        bucket.append(p)
    if bucket:
        out.extend(sorted({min(bucket, key=lambda q: q[1]), max(bucket, key=lambda q: q[1])}))
    return out


def chart_view(
    frame: MonitorFrame, window_s: float | None, width: int, height: int
) -> ChartView | None:
    """Compute what the chart shows for ``frame`` in a ``width`` x ``height`` cell area.

    The x and y ranges move in round steps, so a new sample usually changes a few pixels
    and often none: then the view equals the last one and nothing is redrawn.
    """
    series = frame.series
    if not series:
        return None
    t_end = series[-1].t_s
    if window_s is None:
        t_first = series[0].t_s
        step = nice_time_step(t_end - t_first)
        x_lo = math.floor(t_first / step) * step
        x_hi = max(math.ceil(t_end / step) * step, x_lo + step)
    else:
        step = nice_time_step(window_s, 10)
        x_hi = max(math.ceil(t_end / step) * step, window_s)
        x_lo = x_hi - window_s
    x_ticks = tuple(_ticks(x_lo, x_hi, nice_time_step(x_hi - x_lo)))
    visible = [p for p in series if p.t_s >= x_lo]
    if not visible:
        visible = [series[-1]]

    names: list[tuple[str, list[tuple[float, float]]]] = [
        ("RSS", [(p.t_s, p.rss_bytes) for p in visible]),
    ]
    uss = [(p.t_s, p.uss_bytes) for p in visible if p.uss_bytes is not None]
    if uss:
        names.append(("USS", uss))
    traced = [(p.t_s, p.traced_bytes) for p in visible if p.traced_bytes is not None]
    if traced:
        names.append(("traced", traced))

    verdict = frame.verdict
    trend_bytes: list[tuple[float, float]] = []
    if (
        verdict.state != "ok"
        and verdict.trend_start_s is not None
        and verdict.trend_intercept_bytes is not None
    ):
        start = max(verdict.trend_start_s, x_lo)
        for t in (start, t_end):
            grown = verdict.rate_mb_per_hour * MIB * (t - verdict.trend_start_s) / 3600.0
            trend_bytes.append((t, max(0.0, verdict.trend_intercept_bytes + grown)))

    values = [v for _, pts in names for _, v in pts] + [v for _, v in trend_bytes]
    top = max(values)
    threshold = frame.alert_threshold_bytes
    if threshold is not None and threshold <= 2 * top:
        values.append(float(threshold))
    else:
        threshold = None
    top = max(values)
    scale, unit = (1024.0 * MIB, "GiB") if top >= 1024 * MIB else (MIB, "MiB")
    y_min, y_max = min(values) / scale, top / scale
    y_step = nice_step(y_max - y_min)
    y_lo = max(0.0, math.floor(y_min / y_step) * y_step)
    y_hi = math.ceil(y_max / y_step) * y_step
    if y_hi <= y_lo:
        y_hi = y_lo + y_step
    y_ticks = tuple(_ticks(y_lo, y_hi, y_step))

    columns = max(1, (width - 10) * 2)  # braille: 2 dots per cell, minus the y-axis labels
    rows = max(1, (height - 4) * 4)
    lines = []
    pixels = []
    for name, pts in names:
        pts_down = _downsample([(t, v / scale) for t, v in pts], (x_lo, x_hi), columns)
        lines.append((name, tuple(t for t, _ in pts_down), tuple(v for _, v in pts_down)))
        pixels.append((name, _pixels(pts_down, (x_lo, x_hi), (y_lo, y_hi), columns, rows)))

    trend = None
    if trend_bytes:
        (x0, y0), (x1, y1) = ((t, v / scale) for t, v in trend_bytes)
        trend = ((x0, y0), (x1, y1))
        pixels.append(("trend", _pixels(trend, (x_lo, x_hi), (y_lo, y_hi), columns, rows)))

    return ChartView(
        unit=unit,
        x_lim=(x_lo, x_hi),
        y_lim=(y_lo, y_hi),
        x_ticks=x_ticks,
        y_ticks=y_ticks,
        series=tuple(pixels),
        lines=tuple(lines),
        threshold=None if threshold is None else threshold / scale,
        trend=trend,
        markers=tuple((t, label) for t, label in frame.markers if x_lo <= t <= x_hi),
    )


def _pixels(
    points: Sequence[tuple[float, float]],
    x_lim: tuple[float, float],
    y_lim: tuple[float, float],
    columns: int,
    rows: int,
) -> tuple[tuple[int, int], ...]:
    """The dots ``points`` land on, without repeats: the picture's fingerprint."""
    out: list[tuple[int, int]] = []
    for t, v in points:
        dot = (
            int((t - x_lim[0]) / (x_lim[1] - x_lim[0]) * columns),
            int((v - y_lim[0]) / (y_lim[1] - y_lim[0]) * rows),
        )
        if not out or out[-1] != dot:
            out.append(dot)
    return tuple(out)


MIN_REPAINT_S: Final = 4.0
"""Data-only changes repaint the chart at most this often (a repaint is ~9 KB at 160x45)."""


def repaint_interval(view: ChartView, width: int) -> float:
    """Seconds one braille dot column spans, between MIN_REPAINT_S and 30."""
    columns = max(1, (width - 10) * 2)
    return min(30.0, max(MIN_REPAINT_S, (view.x_lim[1] - view.x_lim[0]) / columns))


def _same_frame(a: ChartView, b: ChartView) -> bool:
    """Same axes, alert line and markers: only the data dots differ."""
    return (a.unit, a.x_lim, a.y_lim, a.threshold, a.markers) == (
        b.unit,
        b.x_lim,
        b.y_lim,
        b.threshold,
        b.markers,
    )


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    first = math.ceil(lo / step) * step
    count = int((hi - first) / step + 1e-9) + 1
    return [first + i * step for i in range(count)]


def _y_label(value: float, unit: str) -> str:
    return f"{value:.4g} {unit}"


# Each series differs by marker as well as colour, so it reads without colour (NO_COLOR).
_STYLE: Final = {
    "RSS": ("braille", "cyan"),
    "USS": ("dot", "green"),
    "traced": ("braille", "magenta"),
}


class RssChart(PlotextPlot):
    """The memory chart. Redraws only when the picture would change (see ``chart_view``)."""

    frame: reactive[MonitorFrame | None] = reactive(None, init=False, repaint=False)
    """The frame to draw."""
    window: reactive[int] = reactive(3, init=False, repaint=False)
    """Index into ``WINDOWS`` (default: all history)."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._view: ChartView | None = None
        self._drawn_at = 0.0
        self._lines: list[str] = []
        self._text: Text | None = None
        self._text_size = (0, 0)
        self.clock: Callable[[], float] = time.monotonic
        """Seconds, for the repaint interval (tests replace it)."""
        self.redraws = 0
        """How many times the plot was rebuilt (the benchmark and tests read it)."""

    @property
    def view(self) -> ChartView | None:
        """What is drawn now."""
        return self._view

    @property
    def window_s(self) -> float | None:
        """The span of the current window in seconds (None: all)."""
        return WINDOWS[self.window][1]

    def watch_frame(self, old: MonitorFrame | None, new: MonitorFrame | None) -> None:
        # A change of status (exited, disconnected) is drawn at once: no frame may follow.
        status = (old.header.status, new.header.status) if old and new else ("", "")
        self.replot(force=status[0] != status[1])

    def watch_window(self) -> None:
        self.replot(force=True)

    def _title(self) -> str:
        title = f"Memory - window {WINDOWS[self.window][0]}"
        frame = self.frame
        if (
            frame is not None
            and frame.alert_threshold_bytes is not None
            and self._view is not None
            and self._view.threshold is None
        ):
            title += f" - alert at {format_bytes(frame.alert_threshold_bytes)} (off scale)"
        return title

    def on_mount(self) -> None:
        super().on_mount()
        self.border_title = self._title()
        self.border_subtitle = "1: 5 min  2: 1 h  3: 24 h  4: all"

    def on_resize(self, event: events.Resize) -> None:
        self.replot(force=True)

    def replot(self, force: bool = False) -> None:
        """Rebuild the plot if the picture changed, then refresh.

        When only the data moved (same axes, same marks), the plot is rebuilt at most once
        per the time one dot column spans (4 s at 5 min, 30 s at 24 h): over SSH a repaint
        of the whole chart costs kilobytes, and a sub-column change is hardly visible.
        """
        if self.frame is None or not self.size.width or not self.size.height:
            return
        view = chart_view(self.frame, self.window_s, self.size.width, self.size.height)
        if view == self._view:
            return
        now = self.clock()
        if (
            not force
            and view is not None
            and self._view is not None
            and _same_frame(view, self._view)
        ) and now - self._drawn_at < repaint_interval(view, self.size.width):
            return
        self._view = view
        self._drawn_at = now
        self.redraws += 1
        self.border_title = self._title()
        plt = self.plt
        plt.clear_figure()
        if view is None:
            plt.title("no samples yet")
            self._paint()
            return
        for name, xs, ys in view.lines:
            marker, color = _STYLE[name]
            plt.plot(list(xs), list(ys), marker=marker, color=color, label=name)
        if view.threshold is not None:
            plt.plot(
                list(view.x_lim),
                [view.threshold, view.threshold],
                marker="-",
                color="red",
                label="alert",
            )
        if view.trend is not None:
            (x0, y0), (x1, y1) = view.trend
            plt.plot([x0, x1], [y0, y1], marker=".", color="yellow", label="trend")
        for t, label in view.markers:
            # A dotted vertical line and its label at the top: visible without colour.
            y_top = view.y_lim[1] - (view.y_lim[1] - view.y_lim[0]) * 0.04
            plt.plot([t, t], list(view.y_lim), marker="│", color="yellow")
            right_half = t > (view.x_lim[0] + view.x_lim[1]) / 2
            plt.text(
                label[:24], t, y_top, color="yellow", alignment="right" if right_half else "left"
            )
        plt.xlim(*view.x_lim)
        plt.ylim(*view.y_lim)
        plt.xticks(list(view.x_ticks), [format_elapsed_tick(t) for t in view.x_ticks])
        plt.yticks(list(view.y_ticks), [_y_label(v, view.unit) for v in view.y_ticks])
        plt.xlabel("time since first sample")
        self._paint()

    def _paint(self) -> None:
        """Build the picture now and mark only the rows that differ from the last one dirty.

        With a fixed time axis a new sample changes a few rows; only those go to the terminal.
        """
        width, height = self.size.width, self.size.height
        plt = self.plt
        plt.plotsize(width, height)
        plt._set_size(width, height)  # as PlotextPlot.render does (textual-plotext issue 5)
        plt.theme(self._get_plotext_theme_name(self.app.theme))
        lines = plt.build().split("\n")
        old = self._lines if self._text_size == (width, height) else []
        changed = [i for i in range(len(lines)) if i >= len(old) or lines[i] != old[i]] + list(
            range(len(lines), len(old))
        )
        self._lines = lines
        self._text = Text.from_ansi("\n".join(lines))
        self._text_size = (width, height)
        if not old or len(changed) > height // 2:
            self.refresh()
        else:
            for row in changed:
                self.refresh(Region(0, row, width, 1))

    def render(self) -> RenderResult:
        if self._text is not None and self._text_size == (self.size.width, self.size.height):
            return self._text
        return super().render()
