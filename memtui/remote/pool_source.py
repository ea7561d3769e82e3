"""Provides PoolSource: the monitor's Source for a whole pool, one process shown at a time.

Why: the monitor's panes show one process; a pool needs the list of its processes (a
PoolScreen over ``pool_rows``) and a way to show any one of them with today's panes
(``select``). Every poll pulls the whole pool (Fleet.poll) and returns the selected
process's frame; commands go to the selected process's agent; the report written on quit is
the pool report (the root's sections plus ``processes``).
"""

from __future__ import annotations

import subprocess
import threading

from memtui.engine.monitor.frame import CommandResult, MonitorFrame
from memtui.engine.report.json_report import add_processes, build_report
from memtui.engine.report.writer import write_report
from memtui.errors import MemtuiError
from memtui.remote.fleet import Fleet, PoolRow, PoolSummary
from memtui.remote.sources import AgentSource, _report_path


class PoolSource:
    """A Source over a Fleet: frames of the selected process, rows of all of them."""

    def __init__(
        self,
        fleet: Fleet,
        sample_interval_s: float = 1.0,
        process: subprocess.Popen[bytes] | None = None,
    ) -> None:
        self.fleet = fleet
        self.sample_interval_s = sample_interval_s
        self._root = AgentSource(fleet.root, sample_interval_s, process)
        self._sources: dict[int, AgentSource] = {fleet.root_pid: self._root}
        self._selected = fleet.root_pid
        self._lock = threading.Lock()  # poll (a worker) and select (the UI) meet here

    @property
    def pid(self) -> int:
        return self._selected

    @property
    def selected_pid(self) -> int:
        return self._selected

    def select(self, pid: int) -> bool:
        """Show ``pid`` from the next poll on; False when it is not (or no longer) watched."""
        with self._lock:
            if pid not in self._sources:
                session = self.fleet.sessions().get(pid)
                if session is None:
                    return False
                self._sources[pid] = AgentSource(session, self.sample_interval_s)
            self._selected = pid
            return True

    def _current(self) -> AgentSource:
        with self._lock:
            return self._sources[self._selected]

    def poll(self, max_points: int = 600) -> MonitorFrame:
        current = self._current()
        self.fleet.poll(skip=current.pid)  # the selected one is pulled by its AgentSource
        frame = current.poll(max_points)
        self.fleet.refresh_rows()
        with self._lock:  # forget the sources of ended processes nobody looks at
            live = self.fleet.sessions()
            for pid in [p for p in self._sources if p not in live and p != self._selected]:
                if pid != self.fleet.root_pid:
                    del self._sources[pid]
        return frame

    def pool_rows(self) -> tuple[PoolRow, ...]:
        return self.fleet.rows()

    def pool_summary(self) -> PoolSummary:
        return self.fleet.summary()

    def take_snapshot(self) -> CommandResult:
        return self._current().take_snapshot()

    def set_baseline(self) -> CommandResult:
        return self._current().set_baseline()

    def collect_garbage(self) -> CommandResult:
        return self._current().collect_garbage()

    def set_tracing(self, on: bool) -> CommandResult:
        return self._current().set_tracing(on)

    def dump_heap(self, out_dir: str) -> CommandResult:
        return self._current().dump_heap(out_dir)

    def mark(self, label: str) -> CommandResult:
        return self._current().mark(label)

    def export_report(self, out_dir: str) -> CommandResult:
        """The pool report: the root's sections, ``processes`` and ``pool``."""
        fleet = self.fleet
        try:
            report = build_report(fleet.root.report_input())
            if fleet.seen_total > 1:  # a single process keeps the report it always had
                add_processes(report, fleet.processes(), fleet.seen_total)
            path = write_report(report, _report_path(out_dir, fleet.root_pid))
        except MemtuiError as exc:
            return CommandResult(False, str(exc))
        return CommandResult(True, f"Report written to {path}", path)

    def close(self) -> None:
        self.fleet.close()
        self._root.close()
