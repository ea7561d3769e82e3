"""Provides render_html: the detailed HTML report, one self-contained file that opens offline.

Charts are drawn by plotly with plotly.js inlined once (about 4.7 MB), so the file opens from a
CI artifact on a laptop without network, and a week-long chart can be zoomed and hovered.
Everything else is plain HTML built from the JSON report (the same dict `build_report` makes),
so an HTML report can be made again from a JSON one.
"""

from __future__ import annotations

import datetime as dt
import html
import math
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

from memtui.engine.report.html_charts import COLORS, esc, figure_html, memory_chart, wall_time

_CSS = """
:root { --fg:#0f172a; --muted:#64748b; --line:#e2e8f0; --bg:#f8fafc; --card:#fff;
        --bad:#dc2626; --warn:#d97706; --ok:#16a34a; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
       color:var(--fg); background:var(--bg); }
main { max-width:1180px; margin:0 auto; padding:24px 28px 48px; }
h1 { font-size:22px; margin:0 0 2px; } h2 { font-size:17px; margin:30px 0 10px; }
.sub { color:var(--muted); font-size:13px; word-break:break-all; }
.verdict { margin:18px 0; padding:14px 18px; border-radius:10px; border-left:6px solid;
           background:var(--card); box-shadow:0 1px 2px #0001; }
.verdict.leak { border-color:var(--bad); } .verdict.suspected { border-color:var(--warn); }
.verdict.ok { border-color:var(--ok); }
.verdict .state { font-size:19px; font-weight:650; }
.leak .state { color:var(--bad); } .suspected .state { color:var(--warn); }
.ok .state { color:var(--ok); }
.cards { display:grid; grid-template-columns:repeat(auto-fill,minmax(150px,1fr)); gap:10px; }
.card { background:var(--card); border:1px solid var(--line); border-radius:8px;
        padding:10px 12px; }
.card .k { color:var(--muted); font-size:12px; }
.card .v { font-size:17px; font-weight:600; white-space:nowrap; }
.panel { background:var(--card); border:1px solid var(--line); border-radius:8px;
         padding:6px 8px; }
table { width:100%; border-collapse:collapse; background:var(--card); font-size:13px;
        border:1px solid var(--line); border-radius:8px; overflow:hidden; }
th,td { text-align:left; padding:6px 10px; border-bottom:1px solid var(--line);
        vertical-align:top; }
th { background:#f1f5f9; font-weight:600; } td.n, th.n { text-align:right;
     font-variant-numeric:tabular-nums; white-space:nowrap; }
code { font:12px ui-monospace,SFMono-Regular,Menlo,monospace; word-break:break-all; }
.note { color:var(--muted); margin:6px 0; } .grid2 { display:grid; grid-template-columns:1fr 1fr;
        gap:12px; } @media (max-width:900px) { .grid2 { grid-template-columns:1fr; } }
.pos { color:var(--bad); } .neg { color:var(--ok); }
footer { margin-top:36px; color:var(--muted); font-size:12px; }
"""


def _f(value: Any, digits: int = 1, unit: str = "", sign: bool = False) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    try:
        x = float(value)
    except (TypeError, ValueError):
        return esc(value)
    text = f"{x:+,.{digits}f}" if sign else f"{x:,.{digits}f}"
    return f"{text}{unit}"


def _hours(seconds: Any) -> str:
    if seconds is None:
        return "–"
    s = float(seconds)
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 3 * 86400:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d ({s / 3600:.0f} h)"


def _table(
    head: Sequence[str], rows: Sequence[Sequence[str]], numeric: set[int] | None = None
) -> str:
    numeric = numeric or set()
    th = "".join(
        f'<th class="n">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head)
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="n">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(r)
        )
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


# -- sections -----------------------------------------------------------------------------------
def _verdict(report: Mapping[str, Any], start: float) -> str:
    leak = report.get("leak_detection") or {}
    state = str(leak.get("state") or ("leak" if leak.get("leak_detected") else "ok"))
    title = {
        "leak": "Memory leak detected",
        "suspected": "Growth suspected, not yet sustained",
        "insufficient_data": "Inconclusive: too little data for a verdict",
    }.get(state, "No leak detected")
    facts = [
        f"rate <b>{_f(leak.get('leak_rate_mb_per_hour'), 2, ' MB/h', sign=True)}</b>",
        f"confidence <b>{_f((leak.get('confidence') or 0) * 100, 0, '%')}</b>",
        f"R² {_f(leak.get('r_squared'), 3)}",
    ]
    onset = leak.get("onset_seconds")
    if onset is not None:
        facts.append(
            f"started <b>{_hours(onset)}</b> into the run "
            f"({wall_time(start, float(onset)):%Y-%m-%d %H:%M} UTC)"
        )
    if leak.get("first_detected_at_seconds") is not None:
        facts.append(f"first alerted after {_hours(leak['first_detected_at_seconds'])}")
    if leak.get("projected_oom_hours") is not None:
        facts.append(
            f"projected out of memory in <b>{_f(leak['projected_oom_hours'], 1, ' h')}</b>"
        )
    return (
        f'<section class="verdict {html.escape(state)}"><div class="state">{title}</div>'
        f'<div>{esc(leak.get("reason"))}</div><div class="note">{" · ".join(facts)}</div></section>'
    )


def _cards(report: Mapping[str, Any]) -> str:
    s = report.get("summary") or {}
    items = [
        ("duration", _hours((s.get("duration_hours") or 0) * 3600)),
        ("start", _f(s.get("start_memory_mb"), 1, " MB")),
        ("end", _f(s.get("end_memory_mb"), 1, " MB")),
        ("peak", _f(s.get("peak_memory_mb"), 1, " MB")),
        ("average", _f(s.get("average_memory_mb"), 1, " MB")),
        ("trend", _f(s.get("growth_rate_mb_per_hour"), 2, " MB/h", sign=True)),
        ("net growth", _f(s.get("net_growth_mb_per_hour"), 2, " MB/h", sign=True)),
        ("samples", _f(s.get("samples"), 0)),
    ]
    if s.get("peak_traced_memory_mb") is not None:
        items.append(("peak traced", _f(s["peak_traced_memory_mb"], 1, " MB")))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="k">{k}</div><div class="v">{v}</div></div>'
            for k, v in items
        )
        + "</div>"
    )


def _suspects(report: Mapping[str, Any]) -> str:
    leak = report.get("leak_detection") or {}
    out = []
    suspects = leak.get("suspects") or []
    if suspects:
        rows = [
            [
                esc(x.get("kind")),
                f"<code>{esc(x.get('path') or x.get('name'))}</code>"
                + (f"<br><small>{esc(x.get('chain'))}</small>" if x.get("chain") else ""),
                esc(x.get("holds") or ""),
                esc(x.get("detail")),
                _f(x.get("items_per_hour") or x.get("per_hour"), 1, sign=True),
                _f((x.get("bytes_per_hour") or 0) / (1 << 20), 2, sign=True)
                if x.get("bytes_per_hour") is not None
                else "",
                _f((x.get("retained_bytes") or 0) / (1 << 20), 2)
                if x.get("retained_bytes") is not None
                else "",
            ]
            for x in suspects
        ]
        out.append(
            _table(
                ["kind", "path", "holds", "evidence", "items / h", "MiB / h", "retained MiB"],
                rows,
                {4, 5, 6},
            )
        )
    else:
        out.append(
            '<p class="note">No named suspect: no container, cache, type or resource '
            "grew consistently.</p>"
        )
    triage = leak.get("triage")
    if isinstance(triage, Mapping) and triage.get("explanation"):
        out.append(
            f"<p><b>What grows:</b> {esc(triage.get('verdict'))} — "
            f"{esc(triage.get('explanation'))}</p>"
        )
    events = leak.get("events") or []
    if events:
        rows = [
            [_hours(e.get("at_seconds")), esc(e.get("kind")), esc(e.get("message"))]
            for e in events[-30:]
        ]
        out.append("<h3>Detector events</h3>" + _table(["at", "event", "message"], rows))
    return "".join(out)


def _allocators(report: Mapping[str, Any]) -> str:
    top = report.get("top_allocators") or []
    leaking = {
        (a.get("file"), a.get("line")): a
        for a in (report.get("leak_detection") or {}).get("leaking_allocators") or []
    }
    if not top and not leaking:
        why = (report.get("source") or {}).get(
            "note"
        ) or "tracemalloc was off or no site was recorded"
        return f'<p class="note">No allocation sites: {esc(why)}.</p>'
    rows = []
    for a in (top or list(leaking.values()))[:25]:
        g = leaking.get((a.get("file"), a.get("line")), {})
        rate = a.get("growth_mb_per_hour")
        rate = rate if rate is not None else g.get("growth_mb_per_hour")
        window = a.get("size_kind") == "window"
        rows.append(
            [
                f"<code>{esc(a.get('file'))}:{esc(a.get('line'))}</code>"
                + (" <b>leaking</b>" if g else ""),
                esc(a.get("function")),
                _f(a.get("size_mb"), 3) + (" (window)" if window else ""),
                _f(a.get("count"), 0),
                _f(a.get("growth_mb"), 3, sign=True) if a.get("growth_mb") is not None else "–",
                _f(rate, 2, sign=True) if rate is not None else "–",
            ]
        )
    header = ["site", "function", "size MB", "blocks", "growth MB", "growth MB/h"]
    parts = [_table(header, rows, {2, 3, 4, 5})]
    if any(a.get("size_kind") == "window" for a in top):
        parts.append(
            '<p class="note">Sizes marked (window) are what a short tracing window saw the line '
            "allocate and keep, not what it holds; growth is its window growth rate times the "
            "time watched.</p>"
        )
    series = report.get("allocator_timeline") or []
    start = float((report.get("timeline") or {}).get("start_wall") or 0.0)
    if any(len(s.get("t_s") or []) >= 2 for s in series):
        fig = go.Figure()
        for i, s in enumerate(series):
            fig.add_trace(
                go.Scatter(
                    x=[wall_time(start, t) for t in s["t_s"]],
                    y=s["size_mb"],
                    mode="lines+markers",
                    name=str(s.get("site"))[-48:],
                    line={"color": COLORS[i % len(COLORS)]},
                    marker={"size": 4},
                )
            )
        fig.update_yaxes(title_text="MB held", rangemode="tozero")
        parts.append("<h3>Top sites over time</h3>" + figure_html(fig, "allocators-chart", 320))
    return "".join(parts)


def _objects(report: Mapping[str, Any]) -> str:
    snaps = [s for s in report.get("snapshots") or [] if s.get("top_types")]
    if not snaps:
        return '<p class="note">No object census in this run.</p>'
    first, last = snaps[0]["top_types"], snaps[-1]["top_types"]
    names = sorted(last, key=lambda k: -(last[k] - first.get(k, 0)))
    rows = []
    for name in sorted(last, key=lambda k: -last[k])[:20]:
        a, b = first.get(name), last[name]
        change = b - (a or 0)
        cls = "pos" if change > 0 else "neg" if change < 0 else ""
        rows.append(
            [
                f"<code>{esc(name)}</code>",
                _f(a, 0),
                _f(b, 0),
                f'<span class="{cls}">{change:+,}</span>',
                _f(100.0 * change / a, 1, "%", sign=True) if a else "new",
            ]
        )
    parts = [_table(["type", "first", "last", "change", "change %"], rows, {1, 2, 3, 4})]
    if len(snaps) >= 2:
        fig = go.Figure()
        x = [s["timestamp"] for s in snaps]
        for i, name in enumerate(names[:8]):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=[s["top_types"].get(name) for s in snaps],
                    mode="lines",
                    name=name[-40:],
                    line={"color": COLORS[i % len(COLORS)]},
                )
            )
        fig.update_yaxes(title_text="live objects", rangemode="tozero")
        parts.append(figure_html(fig, "objects-chart", 320))
    return "".join(parts)


def _gc(report: Mapping[str, Any]) -> str:
    g = report.get("gc_statistics") or {}
    if not g.get("available"):
        return (
            '<p class="note">No GC statistics in this run (watched from outside the process).</p>'
        )
    per_min = g.get("collections_per_minute") or [None] * 3
    rows = [
        [
            f"gen {i}",
            _f(g.get(f"gen{i}_collections"), 0),
            _f(per_min[i], 2),
            _f((g.get("collected") or [None] * 3)[i], 0),
            _f((g.get("uncollectable") or [None] * 3)[i], 0),
        ]
        for i in range(3)
    ]
    parts = [
        _table(
            ["generation", "collections", "per minute", "collected", "uncollectable"],
            rows,
            {1, 2, 3, 4},
        ),
        f'<p class="note">GC time {_f(g.get("total_gc_time_seconds"), 3, " s")} '
        f"({_f((g.get('gc_time_fraction') or 0) * 100, 3, '%')} of wall time), longest pause "
        f"{_f((g.get('max_pause_seconds') or 0) * 1000, 2, ' ms')}, "
        f"gc.garbage {_f(g.get('garbage_objects'), 0)}, "
        f"thresholds {esc(g.get('thresholds'))}</p>",
    ]
    tl = report.get("gc_timeline") or {}
    t, c = tl.get("t_s") or [], tl.get("collections") or []
    if len(t) >= 3:
        start = float((report.get("timeline") or {}).get("start_wall") or 0.0)
        fig = go.Figure()
        for gen in range(3):
            rate = [
                max(c[i][gen] - c[i - 1][gen], 0) / max((t[i] - t[i - 1]) / 60.0, 1e-9)
                for i in range(1, len(t))
            ]
            fig.add_trace(
                go.Scatter(
                    x=[wall_time(start, v) for v in t[1:]],
                    y=rate,
                    mode="lines",
                    name=f"gen {gen}",
                    line={"color": COLORS[gen]},
                )
            )
        fig.update_yaxes(title_text="collections / min", rangemode="tozero")
        parts.append(figure_html(fig, "gc-chart", 280))
    return "".join(parts)


def _dumps(report: Mapping[str, Any]) -> str:
    dumps = report.get("heap_dumps") or []
    if not dumps:
        return ""
    rows = []
    for d in dumps:
        summary = d.get("summary") or {}
        text = (
            ", ".join(f"{esc(k)}: {esc(v)}" for k, v in list(summary.items())[:8])
            if isinstance(summary, Mapping)
            else esc(summary)
        )
        rows.append([esc(d.get("timestamp")), f"<code>{esc(d.get('path'))}</code>", text])
    return "<h2>Heap dumps</h2>" + _table(["taken", "file", "summary"], rows)


def render_html(
    report: Mapping[str, Any],
    series: Mapping[str, Any] | None = None,
    markers: Sequence[Mapping[str, Any]] | None = None,
) -> str:
    """The detailed report for ``report`` (build_report's dict) as one HTML document.

    ``series`` (the memory timeline) and ``markers`` default to the report's "timeline" and
    "markers" keys, so ``render_html(build_report(data))`` is all a writer needs.
    """
    series = series if series is not None else report.get("timeline") or {}
    if not series.get("t_s"):
        series = _fallback_series(report)
    markers = list(markers if markers is not None else report.get("markers") or [])
    src = report.get("source") or {}
    summary = report.get("summary") or {}
    start = float(series.get("start_wall") or 0.0)
    window = f"{esc(summary.get('started_at'))} → {esc(summary.get('ended_at'))} UTC"
    python = esc(src.get("python_version") or "?")
    who = f"pid {esc(src.get('pid'))} · {esc(src.get('kind'))} · Python {python}"
    note = f'<p class="note">{esc(src.get("note"))}</p>' if src.get("note") else ""
    marker_table = ""
    if markers:
        rows = [
            [
                esc(m.get("timestamp") or _hours(m.get("at_seconds"))),
                _hours(m.get("at_seconds")),
                esc(m.get("label")),
                esc(m.get("source")),
            ]
            for m in markers
        ]
        marker_table = "<h2>Markers</h2>" + _table(
            ["time (UTC)", "into the run", "label", "from"], rows
        )
    rec = report.get("recording") or {}
    foot = (
        f"recording {esc(rec.get('path'))} ({_f((rec.get('size_bytes') or 0) / 1e6, 2, ' MB')}) · "
        if rec
        else ""
    )
    generated = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>memtui report · pid {esc(src.get("pid"))}</title><style>{_CSS}</style>
<script type="text/javascript">{get_plotlyjs()}</script></head>
<body><main>
<h1>memtui memory report</h1>
<div class="sub"><code>{esc(src.get("command") or "(command unknown)")}</code></div>
<div class="sub">{who} · {window}</div>{note}
{_verdict(report, start)}
{_cards(report)}
<h2>Memory over time</h2>
{memory_chart(report, series, markers)}
<h2>Leak suspects</h2>
{_suspects(report)}
<h2>Top allocators</h2>
{_allocators(report)}
<h2>Object counts</h2>
{_objects(report)}
<h2>Garbage collector</h2>
{_gc(report)}
{_dumps(report)}
{marker_table}
<footer>{foot}report schema {esc(report.get("schema_version"))} · generated {generated}
by memtui</footer>
</main></body></html>
"""


def _fallback_series(report: Mapping[str, Any]) -> dict[str, Any]:
    """Without a timeline: the snapshots' memory readings (coarse, but a chart)."""
    snaps = report.get("snapshots") or []
    walls = []
    for s in snaps:
        try:
            walls.append(
                dt.datetime.fromisoformat(str(s["timestamp"]))
                .replace(tzinfo=dt.timezone.utc)
                .timestamp()
            )
        except (KeyError, ValueError):
            continue
    if not walls:
        return {"start_wall": 0.0, "t_s": [], "rss_mb": []}
    start = walls[0]
    mb = [float(s.get("memory_mb") or 0.0) for s in snaps[: len(walls)]]
    return {
        "start_wall": start,
        "t_s": [w - start for w in walls],
        "rss_mb": mb,
        "rss_min_mb": mb,
        "rss_max_mb": mb,
    }
