"""Provides the in-target agent: the process's collector in a thread, and a private Unix-socket
server (pull only).

The collector (memtui.probe.collector) samples memory, takes censuses on a budget, runs heap
summaries and the tracing controller. The server answers the commands of
``memtui.probe.protocol`` (memtui.probe.commands) on a socket in a private directory; it
never pushes, and the collector never waits on a connection. Standard library only.
"""

from __future__ import annotations

import atexit
import os
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from memtui.probe import follow as _fork_follow
from memtui.probe import protocol
from memtui.probe.clock import Clock, SystemClock
from memtui.probe.collector import CensusBudget, Collector
from memtui.probe.commands import COMMANDS, AgentCommands, CommandError, Reply
from memtui.probe.follow import child_record_path, follow_forks
from memtui.probe.heap.headroom import is_memtui_fork
from memtui.probe.heap.summary import summaries_from_env
from memtui.probe.overhead import process_age_s
from memtui.probe.recorder import (
    Recorder,
    RecorderError,
    add_marker_sink,
    default_meta,
    remove_marker_sink,
)
from memtui.probe.server import AgentError, AgentServer
from memtui.probe.watch import DEFAULT_PERIOD_S, DEFAULT_WINDOW_S, WINDOW_SHARE, TraceController

CENSUS_BUDGET: float = 0.01
"""Census time is kept under this share of wall time by spacing censuses further apart."""
MAX_SNAPSHOTS: int = 50
__all__ = [
    "Agent",
    "AgentError",
    "current_agent",
    "follow_forks",
    "start_agent",
    "start_agent_from_env",
]


class Agent(AgentCommands):
    """The agent of this process; make it with start_agent() (one per process).

    It runs the process's Collector (memtui.probe.collector) in a thread and answers the
    protocol's commands from it on a private socket; the collector never waits on a viewer.
    """

    def __init__(
        self,
        *,
        sample_interval_s: float = 1.0,
        census_interval_s: float = 30.0,
        trace_mode: str = "watch",
        trace_frames: int = 1,
        sock_dir: str | None = None,
        window_s: float = DEFAULT_WINDOW_S,
        period_s: float | None = None,
        clock: Clock | None = None,
        record_path: str | None = None,
        attached: bool = False,
    ) -> None:
        if not sample_interval_s > 0 or not census_interval_s > 0:
            raise AgentError("memtui: sample and census intervals must be positive")
        self.pid = os.getpid()
        self.clock: Clock = clock or SystemClock()
        self.sample_interval_s = float(sample_interval_s)
        self.census_interval_s = float(census_interval_s)
        self.sock_dir = sock_dir or protocol.socket_dir()
        self.sock_path = os.path.join(self.sock_dir, f"agent-{self.pid}.sock")
        self.collector = Collector(
            clock=self.clock,
            sample_interval_s=self.sample_interval_s,
            census=CensusBudget(self.census_interval_s, CENSUS_BUDGET),
            tracer=TraceController(
                trace_mode,
                trace_frames,
                window_s,
                DEFAULT_PERIOD_S if period_s is None else period_s,
                self.clock,
                # The default period is stretched by the windows' cost; an asked one is kept.
                budget_share=WINDOW_SHARE if period_s is None else None,
                run_age_s=process_age_s() if self.clock.realtime else 0.0,
                # Attached on request: the user wants to look now (gdb stopped it longer).
                first_unbudgeted=attached,
            ),
            summaries=summaries_from_env(self.clock.time),
        )
        """What is collected (samples, censuses, heap summaries, tracing, markers)."""
        self.started_at = self.collector.started_at
        self._stop = threading.Event()
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.server = AgentServer(self.sock_path, self._dispatch, self.collector.note_error)
        self._baseline: dict[str, Any] | None = None
        self._snapshots: deque[dict[str, Any]] = deque(maxlen=MAX_SNAPSHOTS)
        self.record_path = record_path

    @property
    def errors(self) -> int:
        return self.collector.errors

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return not self._stopped and self.pid == os.getpid()

    def start(self) -> None:
        """Listen (AgentError when the socket directory is unsafe), then start collecting."""
        self.server.start()
        try:
            self.collector.start()
        except OSError as exc:
            self.collector.note_error(exc)  # no /proc: samples carry zeros for RSS/VMS
        if self.record_path:
            try:
                self.collector.recorder = Recorder(
                    self.record_path,
                    {
                        **default_meta(),
                        "role": "agent",
                        "kind": "in-process",
                        "started_at": self.started_at,
                        "sample_interval_s": self.sample_interval_s,
                    },
                )
            except (RecorderError, OSError) as exc:
                self.collector.note_error(exc)  # profiling goes on without a recording
        add_marker_sink(self.collector.add_marker)
        self._thread = threading.Thread(
            target=self._collect_loop, name="memtui-agent-collector", daemon=True
        )
        self._thread.start()

    def stop(self, join_s: float = 2.0) -> None:
        """Stop threads, close connections, stop our tracing, remove the socket; idempotent."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        self._stop.set()
        self.server.stop(join_s)
        self.collector.stop(join_s)
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(join_s)
        remove_marker_sink(self.collector.add_marker)
        rec = self.recorder
        if rec is not None:
            try:
                self.collector.sample()  # the recording reaches the end of the run
            except Exception as exc:
                self.collector.note_error(exc)
            rec.close()
        self.collector.close()
        _forget(self)

    def after_fork_in_child(self) -> None:
        """In a forked child: this agent is the parent's; disable it without touching its files."""
        self._stopped = True
        self._stop.set()
        self.server.after_fork_in_child()
        remove_marker_sink(self.collector.add_marker)
        self.collector.after_fork_in_child()

    # -- collection ------------------------------------------------------------------------
    def _collect_loop(self) -> None:
        collector = self.collector
        while not self._stop.is_set():
            try:
                due = collector.poll()
            except Exception as exc:
                # Runs inside the target: record the failure and keep collecting rather than
                # let a surprise from /proc or the census end the agent's thread.
                collector.note_error(exc)
                due = self.clock.monotonic() + self.sample_interval_s
            if self.clock.wait(max(0.0, due - self.clock.monotonic()), self._stop):
                break

    def _dispatch(
        self, cmd: object, message: dict[str, Any]
    ) -> tuple[Reply, Callable[[], None] | None]:
        handler = COMMANDS.get(cmd) if isinstance(cmd, str) else None
        if handler is None:
            return {"ok": False, "error": f"unknown command {cmd!r}"}, None
        if cmd == "detach":
            return {"ok": True, "detached": True}, self.stop
        try:
            return {"ok": True, **handler(self, message)}, None
        except CommandError as exc:
            return {"ok": False, "error": str(exc)}, None
        except Exception as exc:
            # A command runs inside the target: report the failure to the viewer and keep
            # serving rather than let it end the connection thread with a traceback.
            self.collector.note_error(exc)
            return {"ok": False, "error": f"{cmd} failed: {type(exc).__name__}: {exc}"}, None

    # -- commands --------------------------------------------------------------------------


# -- the one agent of this process -----------------------------------------------------------
_agent: Agent | None = None
_start_lock = threading.Lock()


def _forget(agent: Agent) -> None:
    global _agent
    if _agent is agent:
        _agent = None


def current_agent() -> Agent | None:
    """The running agent of this process, if any."""
    agent = _agent
    return agent if agent is not None and agent.running else None


def start_agent(
    *,
    sample_interval_s: float = 1.0,
    census_interval_s: float = 30.0,
    trace_mode: str = "watch",
    trace_frames: int = 1,
    sock_dir: str | None = None,
    window_s: float = DEFAULT_WINDOW_S,
    period_s: float | None = None,
    clock: Clock | None = None,
    record_path: str | None = None,
    attached: bool = False,
) -> Agent:
    """Start this process's agent, or return the one already running.

    Raises AgentError (one line) when it cannot start safely, e.g. the socket directory is
    not ours or is open to other users.
    """
    global _agent
    with _start_lock:
        if _agent is not None and _agent.running:
            return _agent
        try:
            agent = Agent(
                sample_interval_s=sample_interval_s,
                census_interval_s=census_interval_s,
                trace_mode=trace_mode,
                trace_frames=trace_frames,
                sock_dir=sock_dir,
                window_s=window_s,
                period_s=period_s,
                clock=clock,
                record_path=record_path,
                attached=attached,
            )
        except ValueError as exc:
            raise AgentError(f"memtui: {exc}") from None
        agent.start()
        _agent = agent
        return agent


def _env_number(name: str, default: float, cast: Callable[[str], float] = float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = cast(raw)
    except ValueError:
        raise AgentError(f"memtui: {name}={raw!r} is not a number") from None
    if not value > 0:
        raise AgentError(f"memtui: {name}={raw!r} must be positive")
    return value


def start_agent_from_env() -> Agent:
    """start_agent() configured by MEMTUI_* variables (what `memtui run`'s bootstrap calls).

    MEMTUI_SAMPLE_INTERVAL (s), MEMTUI_TRACE (off|watch|continuous), MEMTUI_TRACE_FRAMES,
    MEMTUI_SOCKET_DIR, MEMTUI_RECORD (the SQLite recording to write), MEMTUI_CHILDREN=1
    (forked children start their own agent, see follow_forks), and for tuning
    MEMTUI_CENSUS_INTERVAL, MEMTUI_WATCH_WINDOW and MEMTUI_WATCH_PERIOD (seconds).
    """
    record = os.environ.get("MEMTUI_RECORD") or None
    if os.environ.get("MEMTUI_CHILDREN", "").strip() == "1":
        follow_forks(True)
        root = os.environ.setdefault("MEMTUI_TREE_ROOT", str(os.getpid()))
        if record and root != str(os.getpid()):  # an exec'ed descendant: its own recording
            record = child_record_path(record, os.getpid())
    mode = os.environ.get("MEMTUI_TRACE", "").strip().lower() or "watch"
    if mode not in ("off", "watch", "continuous"):
        raise AgentError(f"memtui: MEMTUI_TRACE={mode!r}; use off, watch or continuous")
    return start_agent(
        sample_interval_s=_env_number("MEMTUI_SAMPLE_INTERVAL", 1.0),
        census_interval_s=_env_number("MEMTUI_CENSUS_INTERVAL", 30.0),
        trace_mode=mode,
        trace_frames=int(_env_number("MEMTUI_TRACE_FRAMES", 1, int)),
        sock_dir=os.environ.get("MEMTUI_SOCKET_DIR") or None,
        window_s=_env_number("MEMTUI_WATCH_WINDOW", DEFAULT_WINDOW_S),
        period_s=_env_number("MEMTUI_WATCH_PERIOD", 0.0) or None,
        record_path=record,
    )


def _at_exit() -> None:
    agent = _agent
    if agent is not None and agent.pid == os.getpid():
        # Daemon threads: the exit must not wait for them (a little, for a recording's end).
        agent.stop(join_s=0.05 if agent.recorder is not None else 0.0)


def _after_fork_in_child() -> None:
    global _agent, _start_lock
    _start_lock = threading.Lock()  # another thread of the parent may have held it
    agent, _agent = _agent, None
    if agent is not None:
        # Heap dumps' and summaries' children are frozen copies that must not change: never
        # an agent of their own (memtui.probe.heap.headroom.memtui_fork marks them).
        follow = _fork_follow.following() and not is_memtui_fork()
        if follow:
            _fork_follow.reset_locks_in_child()
        agent.after_fork_in_child()
        if follow:
            _fork_follow.restart_in_child(agent)


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
