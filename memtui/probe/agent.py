"""Provides the in-target agent: the process's collector in a thread, and a private Unix-socket
server (pull only).

The collector (memtui.probe.collector) samples memory, takes censuses on a budget, runs heap
summaries and the tracing controller. The server answers the commands of
``memtui.probe.protocol`` on a socket in a private directory; it never pushes, and the
collector never waits on a connection. Standard library only.
"""

from __future__ import annotations

import atexit
import gc
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from memtui.probe import follow as _fork_follow
from memtui.probe import protocol
from memtui.probe.census import take_census
from memtui.probe.clock import Clock, SystemClock
from memtui.probe.collector import HISTORY_FIELDS, CensusBudget, Collector, history_point
from memtui.probe.follow import child_record_path, follow_forks
from memtui.probe.heap.dump import (
    SUFFIX,
    WRITERS,
    HeapDumpFailed,
    start_heap_dump,
    unique_path,
)
from memtui.probe.heap.headroom import is_memtui_fork
from memtui.probe.heap.summary import HeapSummaries, summaries_from_env
from memtui.probe.recorder import (
    Recorder,
    RecorderError,
    add_marker_sink,
    default_meta,
    emit_marker,
    remove_marker_sink,
)
from memtui.probe.server import AgentError, AgentServer
from memtui.probe.watch import DEFAULT_PERIOD_S, DEFAULT_WINDOW_S, TraceController

CENSUS_BUDGET: float = 0.01
"""Census time is kept under this share of wall time by spacing censuses further apart."""
REPORT_HISTORY_POINTS: int = 5000
MAX_SNAPSHOTS: int = 50

Reply = dict[str, Any]
__all__ = [
    "Agent",
    "AgentError",
    "current_agent",
    "follow_forks",
    "start_agent",
    "start_agent_from_env",
]


class CommandError(Exception):
    """A command's arguments are wrong; the reply says so and the connection stays open."""


def _dump_target(message: dict[str, Any], pid: int) -> str:
    path, out_dir = message.get("path"), message.get("out_dir")
    for name, value in (("path", path), ("out_dir", out_dir)):
        if value is not None and (not isinstance(value, str) or not value or "\0" in value):
            raise CommandError(f"{name!r} must be a non-empty path, got {value!r}")
    if path is not None:
        if not str(path).endswith(SUFFIX):
            raise CommandError(f"'path' must name a {SUFFIX} file, got {path!r}")
        return str(path)
    if out_dir is None:
        raise CommandError("heap_dump needs 'out_dir' (a directory) or 'path' (a file)")
    return unique_path(os.path.abspath(out_dir), pid)


def _int_arg(message: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    value = message.get(name, default)
    if type(value) is not int or not low <= value <= high:
        raise CommandError(f"{name!r} must be an integer from {low} to {high}, got {value!r}")
    return value


class Agent:
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
        period_s: float = DEFAULT_PERIOD_S,
        clock: Clock | None = None,
        record_path: str | None = None,
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
            tracer=TraceController(trace_mode, trace_frames, window_s, period_s, self.clock),
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
    def tracer(self) -> TraceController:
        tracer = self.collector.tracer
        assert tracer is not None
        return tracer

    @property
    def summaries(self) -> HeapSummaries:
        return self.collector.summaries

    @property
    def recorder(self) -> Recorder | None:
        return self.collector.recorder

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
        handler = _COMMANDS.get(cmd) if isinstance(cmd, str) else None
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
    def cmd_hello(self, message: dict[str, Any]) -> Reply:
        capabilities = ["rss", "vms", "gc", "census", "allocated_blocks", "history"]
        capabilities += ["tracemalloc", "watch", "baseline", "report_data", "heap_dump"]
        capabilities += ["recording", "markers", "heap_summary", "malloc_free"]
        rec = self.recorder
        return {
            "version": protocol.PROTOCOL_VERSION,
            "pid": self.pid,
            "python": "{}.{}.{}".format(*sys.version_info[:3]),
            "implementation": sys.implementation.name,
            "argv": list(sys.argv),
            "executable": sys.executable,
            "started_at": self.started_at,
            "capabilities": capabilities,
            "sample_interval_s": self.sample_interval_s,
            "census_interval_s": self.census_interval_s,
            "trace_mode": self.tracer.base_mode,
            "recording": rec.path if rec is not None and not rec.closed else None,
        }

    def _sites(self, limit: int = 50) -> list[dict[str, Any]] | None:
        rows = self.tracer.sites(limit)
        base = self._baseline
        if rows is None or base is None:
            return rows
        before: dict[tuple[tuple[str, int], ...], int] = base["sites"]
        out = []
        for row in rows:
            key = tuple((f, n) for f, n in row["frames"])
            out.append({**row, "delta_bytes": row["size_bytes"] - before.get(key, 0)})
        return out

    def _census_view(self, summary: dict[str, Any] | None) -> dict[str, Any] | None:
        base = self._baseline
        if summary is None or base is None:
            return summary
        counts: dict[str, int] = base["counts"]
        delta = {k: v - counts.get(k, 0) for k, v in summary["counts"].items()}
        return {**summary, "delta": delta, "total_delta": summary["total_objects"] - base["total"]}

    def _agent_stats(self) -> dict[str, Any]:
        return {
            **self.collector.stats(),
            "viewers": self.server.viewers,
            "refused_peers": self.server.refused,
        }

    def cmd_frame(self, message: dict[str, Any]) -> Reply:
        since = _int_arg(message, "since", 0, -(2**62), 2**62)
        collector = self.collector
        reply = collector.frame(
            since,
            message.get("summary_seq", 0),
            census=self._census_view(collector.latest_census),
            sites=self._sites(),
        )
        reply["baseline"] = {"at": self._baseline["at"]} if self._baseline else None
        reply["agent"] = self._agent_stats()
        return reply

    def cmd_heap_summary(self, message: dict[str, Any]) -> Reply:
        """Take a heap summary soon (the monitor's detector suspects a leak)."""
        self.summaries.request_now()
        return {"requested": True, "seq": self.summaries.seq, **self.summaries.state()}

    def cmd_mark(self, message: dict[str, Any]) -> Reply:
        """A marker from the monitor (a key in the TUI): ``label`` at the target's now."""
        label = str(message.get("label", ""))[:200]
        emit_marker(label, self.clock.time(), "monitor")
        return {"marked": label}

    def _fresh_sites(self) -> list[dict[str, Any]] | None:
        tracer = self.tracer
        mode = tracer.mode
        if mode in ("continuous", "external"):
            tracer.refresh_full()
        elif mode == "watch" and tracer.state()["windows"] == 0:
            tracer.run_window()  # nothing ranked yet: one window now (window_s of tracing)
        return self._sites()

    def cmd_snapshot(self, message: dict[str, Any]) -> Reply:
        census = self._census_view(self.collector.census())
        sites = self._fresh_sites()
        taken_at = self.clock.time()
        ring = self.collector.ring
        self._snapshots.append(
            {
                "taken_at": taken_at,
                "total_objects": census["total_objects"] if census else 0,
                "counts": dict(list((census or {}).get("counts", {}).items())[:20]),
                "sites": (sites or [])[:20],
                "rss_bytes": ring[-1][2] if ring else 0,
            }
        )
        return {
            "taken_at": taken_at,
            "census": census,
            "sites": sites,
            "tracing": self.tracer.state(),
        }

    def cmd_tracemalloc(self, message: dict[str, Any]) -> Reply:
        on = message.get("on")
        if type(on) is not bool:
            raise CommandError(f"'on' must be true or false, got {on!r}")
        frames = _int_arg(message, "frames", self.tracer.frames, 1, 1000)
        try:
            self.tracer.set_continuous(on, frames)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        return {"tracing": self.tracer.state()}

    def cmd_gc_collect(self, message: dict[str, Any]) -> Reply:
        started = time.perf_counter()
        collected = gc.collect()
        return {"collected": collected, "duration_s": round(time.perf_counter() - started, 6)}

    def cmd_set_baseline(self, message: dict[str, Any]) -> Reply:
        result = take_census(largest=0)
        rows = self.tracer.sites(200) or []
        at = self.clock.time()
        self._baseline = {
            "at": at,
            "counts": dict(result.counts),
            "total": result.total_objects,
            "sites": {tuple((f, n) for f, n in r["frames"]): r["size_bytes"] for r in rows},
        }
        return {"baseline_at": at}

    def cmd_heap_dump(self, message: dict[str, Any]) -> Reply:
        """Dump the heap to ``path`` (a file) or a new file under ``out_dir`` (relative paths:
        the target's working directory). ``writer``: auto|fork|inplace. Waits up to ``wait_s``
        (default 8, under the client's timeout) for the file; later replies say pending."""
        target = _dump_target(message, self.pid)
        writer = message.get("writer")
        if writer is not None and writer not in WRITERS:
            raise CommandError(f"'writer' must be one of {', '.join(WRITERS)}, got {writer!r}")
        wait_s = message.get("wait_s", 8.0)
        if type(wait_s) not in (int, float) or not 0 <= wait_s <= 3600:
            raise CommandError(f"'wait_s' must be a number of seconds up to 3600, got {wait_s!r}")
        try:
            job = start_heap_dump(target, writer)
            finished = job.wait(float(wait_s))
            if not finished:
                return {"path": job.path, "writer": job.writer, "pending": True,
                        "pause_s": round(job.pause_s, 6)}  # fmt: skip
            done = job.result().to_dict()
            rec = self.recorder
            if rec is not None:
                rec.add_dump(self.clock.time(), str(done.get("path", job.path)), done)
            return {**done, "pending": False}
        except HeapDumpFailed as exc:
            raise CommandError(str(exc)) from None

    def cmd_report_data(self, message: dict[str, Any]) -> Reply:
        hello = self.cmd_hello(message)
        collector = self.collector
        with collector.lock:
            points = collector.history.points(max_points=REPORT_HISTORY_POINTS)
            samples = [list(s) for s in list(collector.ring)[-600:]]
        return {
            **{k: hello[k] for k in ("pid", "python", "argv", "executable", "started_at")},
            "now": self.clock.time(),
            "uptime_s": collector.uptime_s(),
            "history_fields": list(HISTORY_FIELDS),
            "history": [history_point(p) for p in points],
            "samples": samples,
            "first_census": collector.first_census,
            "latest_census": self._census_view(collector.latest_census),
            "gc": collector.gc_state(),
            "sites": self._sites(100),
            "tracing": self.tracer.state(),
            "snapshots": list(self._snapshots),
            "baseline": {"at": self._baseline["at"]} if self._baseline else None,
            "agent": self._agent_stats(),
        }


_COMMANDS: dict[str, Callable[[Agent, dict[str, Any]], Reply]] = {
    "hello": Agent.cmd_hello,
    "frame": Agent.cmd_frame,
    "snapshot": Agent.cmd_snapshot,
    "tracemalloc": Agent.cmd_tracemalloc,
    "gc_collect": Agent.cmd_gc_collect,
    "set_baseline": Agent.cmd_set_baseline,
    "heap_dump": Agent.cmd_heap_dump,
    "report_data": Agent.cmd_report_data,
    "mark": Agent.cmd_mark,
    "heap_summary": Agent.cmd_heap_summary,
    "detach": Agent.cmd_hello,  # answered in _dispatch (the reply goes out before the stop)
}
assert set(_COMMANDS) == protocol.COMMANDS

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
    period_s: float = DEFAULT_PERIOD_S,
    clock: Clock | None = None,
    record_path: str | None = None,
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
        period_s=_env_number("MEMTUI_WATCH_PERIOD", DEFAULT_PERIOD_S),
        record_path=record,
    )


def _at_exit() -> None:
    agent = _agent
    if agent is not None and agent.pid == os.getpid():
        agent.stop(join_s=0.05)  # daemon threads: the exit must not wait for them


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
