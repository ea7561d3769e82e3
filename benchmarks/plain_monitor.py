"""Provides PlainApp: the benchmark's baseline, a plain Textual screen of the monitor's panes.

What a first version would do: on every frame, rebuild the plot, refill both tables and
re-render every text pane. Same frames, same layout, same 1 Hz as the real monitor.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from memtui.engine.monitor.frame import Source
from memtui.tui.messages import FrameReceived
from memtui.tui.units import MIB, format_bytes, format_count
from memtui.tui.widgets.leak_panel import verdict_text

CSS = """
#head { height: 3; background: $panel; }
#left { width: 1fr; }
#right { width: 66; }
#chart { height: 3fr; }
#alloc { height: 2fr; }
#leak { height: auto; max-height: 20; }
#objects { height: 1fr; }
#gc { height: auto; }
.pane { border: round $primary 50%; }
"""


class PlainApp(App[None]):
    CSS = CSS
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("p", "pause", "Pause"),
    ]

    def __init__(self, source: Source, **_: Any) -> None:
        super().__init__()
        self.source = source
        self.paused = False

    def compose(self) -> ComposeResult:
        yield Static(id="head")
        with Horizontal():
            with Vertical(id="left"):
                yield PlotextPlot(id="chart", classes="pane")
                yield DataTable(id="alloc", classes="pane")
            with Vertical(id="right"):
                yield Static(id="leak", classes="pane")
                yield DataTable(id="objects", classes="pane")
                yield Static(id="gc", classes="pane")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#alloc", DataTable).add_columns(
            "Location", "Function", "Size", "Growth", "Count"
        )
        self.query_one("#objects", DataTable).add_columns("Type", "Count", "Delta", "Rate")
        self.set_interval(1.0, self._poll)
        self._poll()

    def action_pause(self) -> None:
        self.paused = not self.paused

    @work(thread=True, exclusive=True)
    def _poll(self) -> None:
        if not self.paused:
            self.post_message(FrameReceived(self.source.poll()))

    def on_frame_received(self, message: FrameReceived) -> None:
        f = message.frame
        h = f.header
        self.query_one("#head", Static).update(
            f"pid {h.pid}  {h.command}\nPython {h.python_version}  up {h.uptime_s:.0f}s\n"
            f"{'EXITED' if h.status == 'exited' else 'LIVE'}  RSS "
            f"{format_bytes(f.current_rss_bytes)}  at {time.strftime('%H:%M:%S')}"
        )
        plot = self.query_one(PlotextPlot)
        plot.plt.clear_figure()
        plot.plt.plot([p.t_s for p in f.series], [p.rss_bytes / MIB for p in f.series])
        plot.refresh()
        alloc = self.query_one("#alloc", DataTable)
        alloc.clear()
        for r in f.allocators:
            alloc.add_row(
                f"{r.file}:{r.line}", r.function, format_bytes(r.size_bytes),
                format_bytes(r.growth_bytes), format_count(r.count),
            )  # fmt: skip
        objects = self.query_one("#objects", DataTable)
        objects.clear()
        for o in f.objects:
            objects.add_row(o.type_name, format_count(o.count), str(o.delta), str(o.per_hour))
        self.query_one("#leak", Static).update(verdict_text(f.verdict))
        gc = f.gc
        self.query_one("#gc", Static).update(
            f"collections {gc.collections}\ncollected {gc.collected}" if gc else "no GC"
        )
