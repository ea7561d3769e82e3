"""Provides Fleet: one AgentSession per agent-equipped process of a tree (a worker pool).

Why: services run as pools (gunicorn, uvicorn --workers, celery prefork, multiprocessing) and
the leaks live in the workers, which come and go. Each poll finds the tree's new processes
that have an agent (the root's agent follows forks, see memtui.probe.agent.follow_forks),
pulls every live one, and turns each process that ended into a small report entry at once,
closing its connection: a pool that recycles workers for weeks keeps at most MAX_ENDED
entries, and no socket, thread or file per dead worker.
"""

from __future__ import annotations

import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psutil

from memtui.engine.report.json_report import build_report, process_entry
from memtui.errors import MemtuiError
from memtui.probe.heap.headroom import is_memtui_child
from memtui.remote.client import AgentClient, AgentUnavailable, find_socket
from memtui.remote.discovery import prune_stale_sockets
from memtui.remote.session import AgentSession

MAX_ENDED: int = 200
"""Entries of ended processes kept for the report; older ones are only counted."""
MAX_LIVE: int = 128
"""Processes watched at once (each is one connection to its agent)."""
CLIENT_TIMEOUT_S: float = 5.0
MIB: float = 1024.0 * 1024.0

Attacher = Callable[[int], str | None]
"""attach --children: inject the agent into pid; the socket path, or None when it failed."""


@dataclass(frozen=True, slots=True)
class PoolRow:
    """One process of the pool as the process list shows it."""

    pid: int
    ppid: int
    role: str
    """'root', 'worker' (forked: same command as its parent) or 'child' (exec'ed)."""
    command: str
    rss_bytes: int
    state: str
    """Leak verdict: 'ok', 'suspected' or 'leak' ('exited' once gone)."""
    rate_mb_per_hour: float
    suspect: str
    alive: bool


@dataclass(frozen=True, slots=True)
class PoolSummary:
    live: int
    ended: int
    rss_bytes: int
    leaking: int
    suspected: int

    def line(self) -> str:
        """'pool: 3 live, 2 exited · RSS 212 MiB · 1 leak, 0 suspected'."""
        return (
            f"pool: {self.live} live, {self.ended} exited · RSS {self.rss_bytes / MIB:,.0f} MiB"
            f" · {self.leaking} leak, {self.suspected} suspected"
        )


@dataclass
class _Member:
    session: AgentSession
    ppid: int
    role: str
    started_at: float


def _memtui_child(proc: psutil.Process) -> bool:
    """A heap summary's or dump's forked walker: never a member of the pool."""
    try:
        return is_memtui_child(proc.name())
    except psutil.Error:
        return True


def _role(pid: int, root_pid: int, argv: list[str], parent_argv: list[str] | None) -> str:
    if pid == root_pid:
        return "root"
    return "worker" if parent_argv is not None and argv == parent_argv else "child"


class Fleet:
    """The sessions of a process tree rooted at ``root``'s process; poll() from one thread."""

    def __init__(
        self,
        root: AgentSession,
        *,
        attacher: Attacher | None = None,
        max_ended: int = MAX_ENDED,
    ) -> None:
        self.root = root
        self.root_pid = root.pid
        self._thresholds = (
            root.growth_threshold_mb_per_hour,
            root.alert_threshold_mb,
            root.trace_limit,
        )
        self._attacher = attacher
        self._members: dict[int, _Member] = {root.pid: _Member(root, 0, "root", root.started_wall)}
        self._ended: deque[dict[str, Any]] = deque(maxlen=max_ended)
        self._ended_rows: deque[PoolRow] = deque(maxlen=max_ended)
        self.ended_total = 0
        self._tried: dict[int, float] = {}
        """pid -> when we first saw it without an agent (given up on after a while)."""
        self._rows: tuple[PoolRow, ...] = ()

    # -- the root's session stands for the fleet in the CLI's watch loop ---------------------
    @property
    def pid(self) -> int:
        return self.root_pid

    @property
    def ended(self) -> bool:
        return self.root.ended

    @ended.setter
    def ended(self, value: bool) -> None:
        self.root.ended = value

    @property
    def seen_total(self) -> int:
        """Processes seen with an agent, ended ones included."""
        return len(self._members) + self.ended_total

    def sessions(self) -> dict[int, AgentSession]:
        return {pid: m.session for pid, m in self._members.items()}

    # -- polling ---------------------------------------------------------------------------
    def poll(self, skip: int | None = None) -> bool:
        """Find new processes, pull every live one (but ``skip``); False once the root is gone."""
        self._discover()
        for pid, member in list(self._members.items()):
            if pid != skip and not member.session.ended:
                member.session.poll()
            if member.session.ended and pid != self.root_pid:
                self._retire(pid)
        self.refresh_rows()
        return not self.root.ended

    def refresh_rows(self) -> None:
        """Recompute the rows (after a session was pulled by someone else, e.g. the monitor)."""
        self._rows = self._make_rows()

    def _descendants(self) -> list[psutil.Process]:
        try:
            kids = psutil.Process(self.root_pid).children(recursive=True)
        except psutil.Error:
            return []
        return [p for p in kids if not _memtui_child(p)]  # heap summaries' walkers

    def _discover(self) -> None:
        now = time.monotonic()
        seen: set[int] = set()
        for proc in self._descendants():
            pid = proc.pid
            seen.add(pid)
            if pid in self._members or len(self._members) >= MAX_LIVE:
                continue
            first = self._tried.setdefault(pid, now)
            if now - first > 30.0:
                continue  # no agent after 30 s: not Python, or started with -I/-E/-S
            path = find_socket(pid)
            if path is None and self._attacher is not None and now == first:
                path = self._attacher(pid)
            if path is None:
                continue
            try:
                client = AgentClient(path, CLIENT_TIMEOUT_S)
            except AgentUnavailable:
                continue  # bound but not listening yet: next poll
            growth, alert, limit = self._thresholds
            session = AgentSession(client, growth, alert, limit)
            ppid = 0
            with contextlib.suppress(psutil.Error):
                ppid = proc.ppid()
            parent = self._members.get(ppid)
            role = _role(pid, self.root_pid, session.argv, parent.session.argv if parent else None)
            self._members[pid] = _Member(session, ppid, role, session.started_wall)
        for pid in [p for p in self._tried if p not in seen]:
            del self._tried[pid]
        if seen or self._members:
            prune_stale_sockets()

    def _retire(self, pid: int) -> None:
        member = self._members.pop(pid)
        self.ended_total += 1
        with contextlib.suppress(MemtuiError, ValueError, ZeroDivisionError):
            self._ended.append(self._entry(pid, member, ended=True))  # else: too little seen
        self._ended_rows.append(self._row(pid, member, alive=False))
        member.session.close()

    def finish(self) -> None:
        """The watch is over: one last pull of every process but the root (whose end the
        caller decides), so that those that exited meanwhile are reported as exited."""
        for pid, member in list(self._members.items()):
            if pid != self.root_pid and not member.session.ended:
                member.session.poll()
            if member.session.ended and pid != self.root_pid:
                self._retire(pid)
        self.refresh_rows()

    # -- views -----------------------------------------------------------------------------
    def _row(self, pid: int, member: _Member, alive: bool) -> PoolRow:
        s = member.session
        verdict = s.detector.verdict
        suspects = s.culprits.suspects(1)
        suspect = suspects[0].detail if suspects else ""
        if not suspect and verdict.state != "ok":
            top = s.top_allocators(1)  # no named culprit yet: where the memory comes from
            if top:
                frame = top[0].traceback.frames[0]  # the allocating line
                suspect = f"{frame[0].rsplit('/', 1)[-1]}:{frame[1]}"
        return PoolRow(
            pid=pid,
            ppid=member.ppid,
            role=member.role,
            command=" ".join(s.argv),
            rss_bytes=s.metrics.current_bytes,
            state=verdict.state if alive else "exited",
            rate_mb_per_hour=float(verdict.rate_mb_per_hour or 0.0),
            suspect=suspect,
            alive=alive and not s.ended,
        )

    def _make_rows(self) -> tuple[PoolRow, ...]:
        live = [self._row(pid, m, alive=not m.session.ended) for pid, m in self._members.items()]
        return (*live, *self._ended_rows)

    def rows(self) -> tuple[PoolRow, ...]:
        """The rows of the last poll (an immutable tuple: safe to read from another thread)."""
        return self._rows

    def summary(self) -> PoolSummary:
        live = [r for r in self._rows if r.alive]
        return PoolSummary(
            live=len(live),
            ended=self.ended_total,
            rss_bytes=sum(r.rss_bytes for r in live),
            leaking=sum(r.state == "leak" for r in live),
            suspected=sum(r.state == "suspected" for r in live),
        )

    def _entry(self, pid: int, member: _Member, ended: bool) -> dict[str, Any]:
        report = build_report(member.session.report_input())
        return process_entry(
            report,
            ppid=member.ppid,
            role=member.role,
            started_wall=member.started_at,
            ended=ended,
        )

    def processes(self) -> list[dict[str, Any]]:
        """The report's ``processes``: the root first, then live ones, then the ended ones."""
        out = []
        for pid, member in self._members.items():
            with contextlib.suppress(MemtuiError, ValueError, ZeroDivisionError):
                out.append(self._entry(pid, member, ended=member.session.ended))
        return out + list(self._ended)

    def close(self) -> None:
        for pid, member in list(self._members.items()):
            if pid != self.root_pid:
                member.session.close()
