"""Provides DumpScreen, the heap-dump explorer, and ChainsScreen, "why is it still alive?".

The analysis runs in a bounded child process (memtui.tui.dumps.jobs) from a worker thread;
the screen shows its progress and never blocks the event loop. esc goes back to the monitor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.events import Resize
from textual.screen import ModalScreen, Screen
from textual.timer import Timer
from textual.widgets import Footer, Label, Static, TabbedContent, TabPane

from memtui.tui.dumps.jobs import (
    WAIT_FOR_FILE_S,
    AnalysisFailed,
    limit_mb,
    run_analysis,
    wait_for_file,
)
from memtui.tui.dumps.tables import (
    DiffRetainersTable,
    DiffTypesTable,
    DumpRecord,
    DumpsTable,
    RetainersTable,
    Row,
    RowTable,
    TypesTable,
)
from memtui.tui.units import format_bytes, format_count

NARROW_WIDTH = 120


def title_text(record: DumpRecord, index: int) -> Text:
    text = Text()
    text.append(f"Dump #{index + 1}: {record.path}", style="bold")
    a = record.analysis
    if a is not None:
        s, m = a["summary"], a.get("meta", {})
        unreachable = s["unreferenced_size"] + s["unrooted_size"]
        text.append(
            f"\npid {m.get('pid')}, Python {m.get('python')}: {format_count(s['objects'])} "
            f"objects, {format_bytes(s['total_size'])} ({format_bytes(unreachable)} not "
            f"reachable from a root); the {m.get('writer', '?')} writer paused the target "
            f"{float(m.get('pause_s', 0)) * 1e3:.1f} ms"
        )
    return text


class DumpScreen(Screen[None]):
    """One dump's analysis: retained size by type, largest retainers, diff, the dump list."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Back"),
        Binding("1", "tab('heap')", "Heap"),
        Binding("2", "tab('diff')", "Diff"),
        Binding("3", "tab('dumps')", "Dumps"),
        Binding("tab", "app.focus_next", "Next table", show=False),
    ]

    def __init__(self, records: list[DumpRecord], index: int) -> None:
        super().__init__()
        self.records = records
        """This session's dumps (shared with the app, which appends new ones)."""
        self.index = index
        self.cancel = threading.Event()
        self._started = 0.0
        self._progress: Timer | None = None
        self._doing = ""

    @property
    def record(self) -> DumpRecord:
        return self.records[self.index]

    @property
    def previous(self) -> DumpRecord | None:
        return self.records[self.index - 1] if self.index > 0 else None

    def compose(self) -> ComposeResult:
        yield Static(title_text(self.record, self.index), id="dump-title")
        yield Static("", id="dump-status")
        with TabbedContent(initial="heap", id="dump-tabs"):
            with TabPane("1 Types and retainers", id="heap"), Horizontal(id="dump-heap"):
                with Vertical(classes="dump-half"):
                    yield Label("Retained size by type (enter: chains)", classes="dump-heading")
                    yield TypesTable(id="dump-types")
                with Vertical(classes="dump-half"):
                    yield Label("Largest retainers (enter: chains)", classes="dump-heading")
                    yield RetainersTable(id="dump-retainers")
            with TabPane("2 Diff vs previous", id="diff"):
                yield Static("", id="diff-status")
                yield Label("Types that grew", classes="dump-heading")
                yield DiffTypesTable(id="diff-types")
                yield Label("Retainers that grew", classes="dump-heading")
                yield DiffRetainersTable(id="diff-retainers")
            with TabPane("3 This session's dumps", id="dumps"):
                yield DumpsTable(id="dump-list")
        yield Footer(compact=True)

    def on_resize(self, event: Resize) -> None:
        self.set_class(event.size.width < NARROW_WIDTH, "-narrow")

    def on_mount(self) -> None:
        self.set_class(self.size.width < NARROW_WIDTH, "-narrow")
        self._show_list()
        if self.record.analysis is not None:
            self._show_analysis()
        elif self.record.state != "failed":
            self._start("analysis", self._analyze)
        else:
            self._status(f"Analysis failed: {self.record.error}", error=True)
        self.query_one(TypesTable).focus()

    def on_unmount(self) -> None:
        self.cancel.set()  # kills a running analysis child

    # -- progress --------------------------------------------------------------------------

    def _status(self, text: str, error: bool = False) -> None:
        status = self.query_one("#dump-status", Static)
        status.update(Text(text, style="bold red" if error else "italic"))
        status.set_class(not text, "-empty")

    def _start(self, doing: str, job: Callable[[], None]) -> None:
        self._doing = doing
        self._started = time.monotonic()
        self._tick()
        if self._progress is None:
            self._progress = self.set_interval(1.0, self._tick)
        else:
            self._progress.resume()
        self.run_worker(job, thread=True, group="dump-analysis", exit_on_error=False)

    def _tick(self) -> None:
        elapsed = time.monotonic() - self._started
        record = self.record
        if self._doing == "analysis" and record.state == "waiting":
            what = "waiting for the target to finish writing the dump"
        else:
            what = f"{self._doing} in a child process (bound {limit_mb():,} MiB)"
        self._status(f"{what}... {elapsed:.0f} s")

    def _done(self) -> None:
        if self._progress is not None:
            self._progress.pause()
        self._status("")

    # -- jobs (worker threads) -------------------------------------------------------------

    def _analyze(self) -> None:
        record = self.record
        try:
            wait_for_file(record.path, self.cancel, WAIT_FOR_FILE_S if record.pending else 0.0)
            record.state = "analyzing"
            record.analysis = run_analysis(["analyze", record.path], self.cancel)
            record.state = "ready"
        except AnalysisFailed as exc:
            if self.cancel.is_set():
                record.state = "waiting"  # opened again, it starts over
                return
            record.state, record.error = "failed", str(exc)
        self.app.call_from_thread(self._analysis_done)

    def _diff(self) -> None:
        previous = self.previous
        assert previous is not None
        record = self.record
        try:
            record.diff = run_analysis(["diff", previous.path, record.path], self.cancel)
        except AnalysisFailed as exc:
            if self.cancel.is_set():
                return
            self.app.call_from_thread(self._diff_failed, str(exc))
            return
        self.app.call_from_thread(self._diff_done)

    # -- results ---------------------------------------------------------------------------

    def _analysis_done(self) -> None:
        self._done()
        self._show_list()
        if self.record.state == "failed":
            self._status(f"Analysis failed: {self.record.error}", error=True)
            return
        self._show_analysis()
        if self.query_one(TabbedContent).active == "diff":
            self._ensure_diff()

    def _show_analysis(self) -> None:
        a = self.record.analysis
        assert a is not None
        self.query_one("#dump-title", Static).update(title_text(self.record, self.index))
        self.query_one(TypesTable).set_rows(a["top_objects"])
        self.query_one(RetainersTable).set_rows(a["largest_retainers"])
        self._show_diff()

    def _show_list(self) -> None:
        rows = [{"n": i + 1, "record": r} for i, r in enumerate(self.records)]
        self.query_one(DumpsTable).set_rows(rows)

    def _show_diff(self) -> None:
        previous, diff = self.previous, self.record.diff
        status = self.query_one("#diff-status", Static)
        if previous is None:
            status.update("The first dump of this session: `d` again later, then compare here.")
        elif diff is None:
            status.update(f"Compared with dump #{self.index} ({previous.name}) once shown.")
        else:
            grown = diff["total_after"] - diff["total_before"]
            status.update(
                f"Since dump #{self.index} ({previous.name}): heap {format_bytes(grown)} "
                f"({'+' if grown >= 0 else ''}{grown / max(1, diff['total_before']):.0%})"
            )
            self.query_one(DiffTypesTable).set_rows(diff["types"])
            self.query_one(DiffRetainersTable).set_rows(diff["retainers"])

    def _ensure_diff(self) -> None:
        if self.previous is None or self.record.diff is not None or self.record.analysis is None:
            return
        if any(not w.is_finished for w in self.workers if w.group == "dump-analysis"):
            return
        self._start("diff against the previous dump", self._diff)

    def _diff_done(self) -> None:
        self._done()
        self._show_diff()

    def _diff_failed(self, why: str) -> None:
        self._done()
        self._status(f"Diff failed: {why}", error=True)

    @on(TabbedContent.TabActivated, "#dump-tabs")
    def _tab_shown(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id == "diff":
            self._ensure_diff()
        table = event.pane.query(RowTable)
        if table:
            table.first().focus()

    # -- keys ------------------------------------------------------------------------------

    def action_back(self) -> None:
        self.app.pop_screen()

    def action_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab

    @on(RowTable.Explain)
    def _explain(self, event: RowTable.Explain) -> None:
        row = event.row
        if isinstance(event.table, DumpsTable):
            index = int(row["n"]) - 1
            if index != self.index:
                self.app.switch_screen(DumpScreen(self.records, index))
            return
        self.app.push_screen(ChainsScreen(self.record, str(row["type"]), row))


def chains_text(type_name: str, chains: Row, row: Row) -> Text:
    """The object (a retainer row) if one was picked, then the chains to its type, samples."""
    text = Text()
    if "chain" in row:
        size = row.get("retained_size", row.get("retained_after"))
        text.append("Selected: ", style="bold")
        text.append(f"{row['chain']}\n")
        text.append(f"  retains {format_bytes(size)}")
        if "address" in row:
            text.append(
                f" in {format_count(row.get('retained_objects'))} objects at {row['address']}"
            )
        text.append("\n\n")
    sampled = " (the largest 20,000 traced)" if chains.get("sampled") else ""
    text.append(
        f"Reference chains from roots to {type_name}: "
        f"{format_count(chains.get('instances'))} instances{sampled}\n",
        style="bold",
    )
    rows = chains.get("chains") or []
    if not rows:
        text.append("no instance of this type in the dump\n", style="italic")
    for c in rows:
        text.append(f"{format_count(c['count']):>10} ")
        text.append(f"{format_bytes(c['retained_size']):>10}  ", style="bold")
        text.append(f"{c['chain']}\n")
    if rows:
        text.append("\nSample objects (the largest of each chain)\n", style="bold")
        for c in rows[:5]:
            text.append(f"  {c['example_address']}  {c['example']}\n")
    text.rstrip()
    return text


class ChainsScreen(ModalScreen[None]):
    """Reference chains from roots to a type's instances (and to a picked object)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,enter", "dismiss", "Close")]

    def __init__(self, record: DumpRecord, type_name: str, row: Row) -> None:
        super().__init__()
        self.record = record
        self.type_name = type_name
        self.row = row
        self.cancel = threading.Event()

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="chains-body") as body:
            body.border_title = f"Why is {self.type_name} alive?"
            body.border_subtitle = "esc closes"
            yield Static(Text("finding reference chains...", style="italic"), id="chains-text")

    def on_mount(self) -> None:
        cached = self.record.chains.get(self.type_name)
        if cached is not None:
            self._show(cached)
        else:
            self.run_worker(self._find, thread=True, exit_on_error=False)

    def on_unmount(self) -> None:
        self.cancel.set()

    def _find(self) -> None:
        args = ["--type", self.type_name, "--top", "10", "analyze", self.record.path]
        try:
            result: Any = run_analysis(args, self.cancel)
        except AnalysisFailed as exc:
            if not self.cancel.is_set():
                self.app.call_from_thread(self._failed, str(exc))
            return
        chains = result.get("chains") or {}
        self.record.chains[self.type_name] = chains
        self.app.call_from_thread(self._show, chains)

    def _show(self, chains: Row) -> None:
        self.query_one("#chains-text", Static).update(chains_text(self.type_name, chains, self.row))

    def _failed(self, why: str) -> None:
        self.query_one("#chains-text", Static).update(Text(f"Failed: {why}", style="bold red"))

    async def action_dismiss(self, result: None = None) -> None:
        self.dismiss(result)
