"""Provides MemtuiApp, the live monitor, and run_monitor, the entry point the CLI calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar, Final

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.reactive import reactive
from textual.timer import Timer
from textual.widgets import Footer, Input, Label, Tab, Tabs
from textual.worker import Worker, WorkerState

from memtui.engine.monitor.frame import CommandResult, MonitorFrame, Source
from memtui.errors import MemtuiError
from memtui.tui.details import DetailActions
from memtui.tui.dumps.tables import DumpRecord
from memtui.tui.keys import AGENT_COMMANDS, COMMAND_TITLES, help_rows
from memtui.tui.messages import CommandFinished, FrameReceived
from memtui.tui.screens.help_screen import HelpScreen
from memtui.tui.screens.quit_screen import QuitScreen
from memtui.tui.summary import summary_line
from memtui.tui.units import local_clock
from memtui.tui.widgets.allocators_table import AllocatorsTable
from memtui.tui.widgets.gc_panel import GcPanel
from memtui.tui.widgets.header_bar import HeaderBar
from memtui.tui.widgets.leak_panel import LeakPanel, SuspectsTable
from memtui.tui.widgets.object_counts import ObjectCounts
from memtui.tui.widgets.rss_chart import WINDOWS, RssChart

NARROW_WIDTH: Final = 120
NARROW_HEIGHT: Final = 32
PANES: Final = (
    ("memory", "Memory"),
    ("leak", "Leak"),
    ("allocators", "Allocators"),
    ("objects", "Objects"),
    ("gc", "GC"),
)
"""Pane ids (without the ``-pane`` suffix) and tab labels, in tab order for narrow terminals."""


@dataclass(frozen=True)
class MonitorOutcome:
    """What the CLI prints, and does, once the terminal is restored."""

    report_path: str | None
    """Absolute path of the report saved on quit (None if it could not be written)."""
    summary: str
    """One line: the target, the verdict, the peak."""
    stop_target: bool
    """True only when memtui launched the target and the user answered y."""


class MemtuiApp(DetailActions, App[MonitorOutcome]):
    """The live monitor: polls a ``Source`` on a timer and renders its ``MonitorFrame``s."""

    CSS_PATH: ClassVar[str] = str(Path(__file__).with_name("memtui.tcss"))
    TITLE = "memtui"
    ENABLE_COMMAND_PALETTE: ClassVar[bool] = False
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "request_quit", "Quit"),
        Binding("question_mark,f1", "help", "Help"),
        Binding("p,space", "pause", "Pause"),
        Binding("p,space", "resume", "Resume"),
        Binding("d", "dump_heap", "Dump"),
        Binding("D", "dumps", "Dumps", show=False),
        Binding("m", "mark", "Mark"),
        Binding("e", "export_report", "Export"),
        Binding("s", "take_snapshot", "Snap"),
        Binding("b", "set_baseline", "Base"),
        Binding("g", "collect_garbage", "GC"),
        Binding("t", "toggle_tracing", "Trace"),
        Binding("slash", "filter", "Filter"),
        Binding("n", "next_pane", "Pane"),
        Binding("N", "previous_pane", "Previous pane", show=False),
        *(
            Binding(str(i + 1), f"window({i})", f"Window {label}", show=False)
            for i, (label, _) in enumerate(WINDOWS)
        ),
        Binding("escape", "close_filter", "Close filter", show=False),
        Binding("ctrl+c,ctrl+q", "request_quit", "Quit", show=False, priority=True),
    ]

    state: reactive[str] = reactive("waiting", bindings=True)
    """waiting (no frame yet), live, exited or disconnected."""
    paused: reactive[bool] = reactive(False, bindings=True)
    """True while the user paused: no polling, no redrawing."""
    source_kind: reactive[str] = reactive("agent", bindings=True)
    """agent, outside or in-process (what the commands can reach)."""
    tracing_on: reactive[bool] = reactive(False)
    """Whether tracemalloc runs in the target."""
    dumping: reactive[bool] = reactive(False, bindings=True)
    """A heap dump is being written."""
    narrow: reactive[bool] = reactive(False, bindings=True)
    """One pane at a time, picked with tabs (small terminals)."""
    active_pane: reactive[str] = reactive("memory")
    """The pane shown when narrow."""

    def __init__(
        self,
        source: Source,
        *,
        out_dir: str = ".",
        launched: bool = False,
        refresh_s: float = 1.0,
        max_points: int = 600,
        wall_clock: Callable[[], float] = time.time,
        clock_format: Callable[[float], str] = local_clock,
    ) -> None:
        super().__init__()
        self.source = source
        self.out_dir = out_dir
        self.launched = launched
        self.refresh_s = refresh_s
        self.max_points = max_points
        self._wall_clock = wall_clock
        self._clock_format = clock_format
        self.frame: MonitorFrame | None = None
        """The frame on screen."""
        self.last_report_path: str | None = None
        self.first_frame_at: float | None = None
        """``time.perf_counter()`` when the first frame was drawn (for the benchmark)."""
        self._timer: Timer | None = None
        self._poll_worker: Worker[None] | None = None
        self._commands: dict[Worker[None], str] = {}
        self._panes_ready = False
        self.dumps: list[DumpRecord] = []
        """This session's heap dumps, oldest first (the explorer lists them)."""
        self._dump_started: float | None = None

    # -- layout ----------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield HeaderBar(clock=self._clock_format, id="header")
        yield Tabs(*(Tab(label, id=f"tab-{pane}") for pane, label in PANES), id="pane-tabs")
        with Horizontal(id="body"):
            with Vertical(id="left", classes="column"):
                yield RssChart(id="memory-pane", classes="pane")
                with Vertical(id="allocators-pane", classes="pane") as allocators:
                    allocators.border_title = "Top allocators"
                    allocators.border_subtitle = "enter: stack  o: sort  r: by growth  /: filter"
                    yield Input(placeholder="filter by file or function", id="filter")
                    yield AllocatorsTable(id="allocators")
                    yield Label("", classes="unavailable")
            with Vertical(id="right", classes="column"):
                leak = LeakPanel(id="leak-pane", classes="pane")
                leak.border_title = "Leak verdict"
                leak.border_subtitle = "enter: suspect detail"
                yield leak
                with Vertical(id="objects-pane", classes="pane") as objects:
                    objects.border_title = "Object counts"
                    objects.border_subtitle = "o: sort  r: by growth  b: re-base"
                    yield ObjectCounts(id="objects")
                    yield Label("", classes="unavailable")
                gc_panel = GcPanel(id="gc-pane", classes="pane")
                gc_panel.border_title = "GC"
                yield gc_panel
        yield Footer(compact=True)

    def on_mount(self) -> None:
        self._panes_ready = True
        self.narrow = self._is_narrow(self.size.width, self.size.height)
        self._apply_pane()
        self.query_one(AllocatorsTable).focus()
        self._timer = self.set_interval(self.refresh_s, self._tick)
        self._start_poll()

    @staticmethod
    def _is_narrow(width: int, height: int) -> bool:
        return width < NARROW_WIDTH or height < NARROW_HEIGHT

    def on_resize(self, event: Resize) -> None:
        self.narrow = self._is_narrow(event.size.width, event.size.height)

    def watch_narrow(self, narrow: bool) -> None:
        self.set_class(narrow, "-narrow")
        self._apply_pane()

    def watch_active_pane(self) -> None:
        self._apply_pane()

    def _apply_pane(self) -> None:
        if not self._panes_ready:
            return
        for pane, _ in PANES:
            self.query_one(f"#{pane}-pane").set_class(pane == self.active_pane, "-active")
        column = "left" if self.active_pane in ("memory", "allocators") else "right"
        for name in ("left", "right"):
            self.query_one(f"#{name}").set_class(name == column, "-active")
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{self.active_pane}":
            tabs.active = f"tab-{self.active_pane}"

    @on(Tabs.TabActivated, "#pane-tabs")
    def _tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id is not None:
            self.active_pane = event.tab.id.removeprefix("tab-")
        if self.narrow:
            self._tab_focus()

    # -- polling ---------------------------------------------------------------------------

    def _tick(self) -> None:
        # Resizes seen while another screen was on top reach no handler of ours: check here.
        self.narrow = self._is_narrow(self.size.width, self.size.height)
        if self._dump_started is not None:
            self._update_busy()  # the dump's elapsed seconds
        if self._poll_worker is None or self._poll_worker.is_finished:
            self._start_poll()

    def _start_poll(self) -> None:
        self._poll_worker = self._poll()

    @work(thread=True, exclusive=True, group="poll", exit_on_error=False)
    def _poll(self) -> None:
        frame = self.source.poll(self.max_points)
        self.post_message(FrameReceived(frame))

    def on_frame_received(self, message: FrameReceived) -> None:
        frame = message.frame
        if self.paused or frame == self.frame:
            return
        self.frame = frame
        header = self.query_one(HeaderBar)
        with self.batch_update():
            header.frame = frame
            header.error = None
            self.query_one(RssChart).frame = frame
            self.query_one(LeakPanel).verdict = frame.verdict
            self._show_table("allocators", frame)
            self._show_table("objects", frame)
            gc_panel = self.query_one(GcPanel)
            gc_panel.gc = frame.gc
            gc_panel.unavailable = self._unavailable_text("gc", frame)
        self.source_kind = frame.header.kind
        self.tracing_on = frame.header.tracing != "off"
        self.state = "exited" if frame.header.status == "exited" else "live"
        if frame.header.status == "disconnected":
            self.state = "disconnected"
        if self.first_frame_at is None:
            self.first_frame_at = time.perf_counter()
        if self.state == "exited" and self._timer is not None:
            # Panes freeze and the clock stops: nothing new will come.
            self._timer.pause()

    def _unavailable_text(self, pane: str, frame: MonitorFrame) -> str:
        if pane not in frame.unavailable:
            return ""
        why = frame.header.why_limited or "this source does not collect it"
        return f"Not available: {why}"

    def _show_table(self, pane: str, frame: MonitorFrame) -> None:
        container = self.query_one(f"#{pane}-pane")
        text = self._unavailable_text(pane, frame)
        container.set_class(bool(text), "-unavailable")
        label = container.query_one(".unavailable", Label)
        if str(label.content) != text:
            label.update(text)  # a layout refresh: only when the text changes
        if pane == "allocators":
            self.query_one(AllocatorsTable).set_rows(frame.allocators)
        else:
            self.query_one(ObjectCounts).set_rows(frame.objects)

    # -- commands --------------------------------------------------------------------------

    def _command(self, name: str, call: Callable[[], CommandResult], start: str = "") -> None:
        if start:
            self.notify(start, title=COMMAND_TITLES.get(name, name))
        worker = self._run_command(name, call)
        self._commands[worker] = name
        self._update_busy()

    @work(thread=True, group="commands", exit_on_error=False)
    def _run_command(self, name: str, call: Callable[[], CommandResult]) -> None:
        self.post_message(CommandFinished(name, call()))

    def _update_busy(self) -> None:
        names = [n for w, n in self._commands.items() if not w.is_finished]
        self.dumping = "dump_heap" in names
        if not self.dumping:
            self._dump_started = None
        elif self._dump_started is None:
            self._dump_started = time.monotonic()
        running = []
        for name in names:
            text = COMMAND_TITLES.get(name, name).lower()
            if name == "dump_heap" and self._dump_started is not None:
                text += f" {time.monotonic() - self._dump_started:.0f} s"
            running.append(text)
        self.query_one(HeaderBar).busy = ", ".join(running)

    def on_command_finished(self, message: CommandFinished) -> None:
        result = message.result
        if message.command == "export_report" and result.ok and result.path:
            self.last_report_path = result.path
        if message.command == "dump_heap" and result.ok and result.path:
            self.dumps.append(DumpRecord(result.path, self._wall_clock(), result.pending))
            self._open_dump(len(self.dumps) - 1)
        self.notify(
            result.message,
            title=COMMAND_TITLES.get(message.command, message.command),
            severity="information" if result.ok else "error",
            markup=False,
        )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if worker in self._commands and event.state in (
            WorkerState.SUCCESS,
            WorkerState.ERROR,
            WorkerState.CANCELLED,
        ):
            name = self._commands.pop(worker)
            self._update_busy()
            if event.state == WorkerState.ERROR:
                self.notify(
                    f"{COMMAND_TITLES.get(name, name)} failed: {worker.error}",
                    title="Error",
                    severity="error",
                    markup=False,
                )
        elif worker.group == "poll" and event.state == WorkerState.ERROR:
            self._disconnected(str(worker.error))

    def _disconnected(self, reason: str) -> None:
        header = self.query_one(HeaderBar)
        if self.state != "disconnected":
            self.notify(f"Lost the target: {reason}", title="Disconnected", severity="error")
        header.error = reason
        if self.state != "exited":
            self.state = "disconnected"

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        alive = self.state in ("live", "waiting")
        if action == "pause":
            return alive and not self.paused
        if action == "resume":
            return alive and self.paused
        if action == "dump_heap":
            return alive and self.source_kind != "outside" and not self.dumping
        if action in AGENT_COMMANDS:
            return alive and self.source_kind != "outside"
        if action == "mark":
            return alive
        if action in ("next_pane", "previous_pane"):
            return self.narrow
        if action == "close_filter":
            return self.query_one("#allocators-pane").has_class("-filtering")
        return True

    def action_dump_heap(self) -> None:
        self._command(
            "dump_heap",
            lambda: self.source.dump_heap(self.out_dir),
            start="Writing a heap dump in the target...",
        )

    def action_export_report(self) -> None:
        self._command("export_report", lambda: self.source.export_report(self.out_dir))

    def action_take_snapshot(self) -> None:
        self._command("take_snapshot", self.source.take_snapshot)

    def action_set_baseline(self) -> None:
        self._command("set_baseline", self.source.set_baseline)

    def action_collect_garbage(self) -> None:
        self._command("collect_garbage", self.source.collect_garbage)

    def action_toggle_tracing(self) -> None:
        on = not self.tracing_on
        self._command("set_tracing", lambda: self.source.set_tracing(on))

    def action_pause(self) -> None:
        self.paused = True
        if self._timer is not None:
            self._timer.pause()
        self.query_one(HeaderBar).paused_at = self._wall_clock()

    def action_resume(self) -> None:
        self.paused = False
        self.query_one(HeaderBar).paused_at = None
        if self._timer is not None:
            self._timer.resume()
        self._tick()

    def action_window(self, index: int) -> None:
        self.query_one(RssChart).window = index

    def action_next_pane(self, step: int = 1) -> None:
        names = [pane for pane, _ in PANES]
        self.active_pane = names[(names.index(self.active_pane) + step) % len(names)]
        self._tab_focus()

    def action_previous_pane(self) -> None:
        self.action_next_pane(-1)

    def _tab_focus(self) -> None:
        if self.active_pane in ("allocators", "objects"):
            self.query_one(f"#{self.active_pane}").focus()
        elif self.active_pane == "leak":
            self.query_one(SuspectsTable).focus()

    # -- filter, overlays, quit ------------------------------------------------------------

    def action_filter(self) -> None:
        if self.narrow:
            self.active_pane = "allocators"
        self.query_one("#allocators-pane").add_class("-filtering")
        self.query_one("#filter", Input).focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(AllocatorsTable).filter_text = event.value

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        if not event.value:
            self.action_close_filter()
        else:
            self.query_one(AllocatorsTable).focus()

    def action_close_filter(self) -> None:
        self.query_one("#filter", Input).value = ""
        self.query_one(AllocatorsTable).filter_text = ""
        self.query_one("#allocators-pane").remove_class("-filtering")
        self.query_one(AllocatorsTable).focus()
        self.refresh_bindings()

    def help_rows(self) -> list[tuple[str, str]]:
        """Every binding of the monitor, for the help overlay."""
        return help_rows(self.BINDINGS)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_rows()))

    def action_request_quit(self) -> None:
        if isinstance(self.screen, QuitScreen):
            return
        if self.launched and self.state != "exited":
            pid = self.frame.header.pid if self.frame is not None else None
            self.push_screen(QuitScreen(pid), self._quit_answered)
        else:
            self.exit(self.outcome(stop_target=False))

    def _quit_answered(self, answer: bool | None) -> None:
        if answer is not None:
            self.exit(self.outcome(stop_target=answer))

    def outcome(self, *, stop_target: bool) -> MonitorOutcome:
        """The outcome as of now (the report path is filled in once the report is saved)."""
        return MonitorOutcome(
            report_path=self.last_report_path,
            summary=summary_line(self.frame),
            stop_target=stop_target,
        )


def run_monitor(
    source: Source, *, out_dir: str = ".", launched: bool = False, refresh_s: float = 1.0
) -> MonitorOutcome:
    """Run the monitor in this terminal until the user quits; then save the JSON report.

    Args:
        source: What to watch. It is not closed here: the caller decides what happens next.
        out_dir: Where dumps and reports go.
        launched: memtui started the target, so quitting asks whether to stop it too.
        refresh_s: Seconds between polls.

    Returns:
        The summary line, the absolute path of the report saved on quit, and whether the user
        asked to stop the target.
    """
    app = MemtuiApp(source, out_dir=out_dir, launched=launched, refresh_s=refresh_s)
    outcome = app.run()
    return save_report(outcome or app.outcome(stop_target=False), source, out_dir)


def save_report(outcome: MonitorOutcome, source: Source, out_dir: str) -> MonitorOutcome:
    """Export the report on quit (nothing is lost on ``q``); a failure goes into the summary."""
    try:
        result = source.export_report(out_dir)
    except (MemtuiError, OSError) as exc:
        return replace(outcome, summary=f"{outcome.summary}; report not saved: {exc}")
    if not result.ok or result.path is None:
        return replace(outcome, summary=f"{outcome.summary}; report not saved: {result.message}")
    return replace(outcome, report_path=str(Path(result.path).resolve()))
