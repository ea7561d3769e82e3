"""Provides memory_chart: the HTML report's plotly chart of a run (RSS, floor, trend, markers)."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go

COLORS = ("#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f")


PLOT_CONFIG = {"displaylogo": False, "responsive": True, "modeBarButtonsToRemove": ["lasso2d"]}


MAX_MARKER_LINES = 60


def esc(value: Any) -> str:
    return html.escape("" if value is None else str(value))


def wall_time(start: float, seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(start + seconds, tz=dt.timezone.utc).replace(tzinfo=None)


def figure_html(fig: go.Figure, div_id: str, height: int) -> str:
    fig.update_layout(
        height=height,
        margin={"l": 60, "r": 20, "t": 30, "b": 40},
        paper_bgcolor="white",
        plot_bgcolor="white",
        font={"family": "system-ui, sans-serif", "size": 12},
        legend={"orientation": "h", "y": 1.08, "x": 0, "traceorder": "normal"},
        hovermode="x unified",
    )
    fig.update_xaxes(showgrid=True, gridcolor="#eef2f7", linecolor="#cbd5e1")
    fig.update_yaxes(showgrid=True, gridcolor="#eef2f7", linecolor="#cbd5e1", zeroline=False)
    body: str = fig.to_html(
        full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG
    )
    return f'<div class="panel chart">{body}</div>'


# -- the memory chart -------------------------------------------------------------------------
def _trend(
    t_s: list[float], lows: list[float], rate: float, onset: float | None
) -> tuple[list[float], list[float]] | None:
    """A line of the verdict's slope through the floor (20% quantile of the residuals)."""
    start = onset if onset is not None else (t_s[0] if t_s else 0.0)
    pts = [(t, y) for t, y in zip(t_s, lows, strict=False) if t >= start]
    if len(pts) < 2:
        return None
    per_s = rate / 3600.0
    resid = sorted(y - per_s * t for t, y in pts)
    base = resid[int(0.2 * (len(resid) - 1))]
    t_a, t_b = pts[0][0], pts[-1][0]
    return [t_a, t_b], [base + per_s * t_a, base + per_s * t_b]


def memory_chart(
    report: Mapping[str, Any], series: Mapping[str, Any], markers: Sequence[Mapping[str, Any]]
) -> str:
    start = float(series.get("start_wall") or 0.0)
    t_s = [float(x) for x in series.get("t_s") or []]
    x = [wall_time(start, t) for t in t_s]
    fig = go.Figure()
    lo, hi = series.get("rss_min_mb") or [], series.get("rss_max_mb") or []
    if lo and hi and lo != hi:
        fig.add_trace(
            go.Scatter(
                x=x, y=hi, mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip"
            )
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=lo,
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor="rgba(37,99,235,0.15)",
                name="RSS min–max",
                hoverinfo="skip",
            )
        )
    fig.add_trace(
        go.Scatter(
            x=x,
            y=series.get("rss_mb") or [],
            mode="lines",
            name="RSS",
            line={"color": COLORS[0], "width": 1.6},
        )
    )
    traced = series.get("traced_mb")
    if traced:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=traced,
                mode="lines",
                name="traced (tracemalloc)",
                line={"color": COLORS[3], "width": 1.2},
            )
        )
    leak = report.get("leak_detection") or {}
    rate = leak.get("leak_rate_mb_per_hour")
    if rate is not None and t_s:
        line = _trend(
            t_s, list(lo or series.get("rss_mb") or []), float(rate), leak.get("onset_seconds")
        )
        if line is not None:
            color = COLORS[1] if leak.get("leak_detected") else "#64748b"
            fig.add_trace(
                go.Scatter(
                    x=[wall_time(start, t) for t in line[0]],
                    y=line[1],
                    mode="lines",
                    name=f"trend {float(rate):+.1f} MB/h",
                    line={"color": color, "width": 2.2, "dash": "dash"},
                )
            )
    threshold = leak.get("alert_threshold_mb")
    peak = max([*hi, *(series.get("rss_mb") or [0.0])], default=0.0)
    if threshold is not None and t_s:
        if threshold <= 1.6 * max(peak, 1.0):
            fig.add_hline(
                y=float(threshold),
                line={"color": COLORS[4], "dash": "dot", "width": 1.5},
                annotation_text=f"alert threshold {float(threshold):,.0f} MB",
                annotation_position="top left",
            )
        else:
            fig.add_annotation(
                xref="paper",
                yref="paper",
                x=1,
                y=1.0,
                showarrow=False,
                xanchor="right",
                text=f"alert threshold {float(threshold):,.0f} MB (above the chart)",
                font={"color": COLORS[4], "size": 11},
            )
    for i, m in enumerate(markers[:MAX_MARKER_LINES]):
        when = wall_time(start, float(m.get("at_seconds", 0.0)))
        fig.add_shape(
            type="line",
            x0=when,
            x1=when,
            yref="paper",
            y0=0,
            y1=1,
            line={"color": "#0f766e", "width": 1.2, "dash": "dashdot"},
        )
        fig.add_annotation(
            x=when,
            yref="paper",
            y=1 - 0.07 * (i % 4),
            text=esc(m.get("label", "")),
            showarrow=False,
            xanchor="left",
            bgcolor="rgba(240,253,250,0.9)",
            bordercolor="#0f766e",
            borderwidth=1,
            font={"size": 11, "color": "#0f766e"},
        )
    fig.update_yaxes(title_text="MB", rangemode="tozero")
    fig.update_xaxes(title_text="time (UTC)")
    return figure_html(fig, "memory-chart", 440)
