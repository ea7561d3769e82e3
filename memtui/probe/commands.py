"""Provides AgentCommands: the agent's answers to the protocol's commands (memtui.probe.protocol).

Each ``cmd_*`` reads the collector (memtui.probe.collector) or acts on the process (a census
now, a heap dump, a GC, tracing on/off) and returns the reply's fields; a wrong argument is a
CommandError whose text goes back to the viewer, and the connection stays open. The agent
(memtui.probe.agent) owns the lifecycle and the socket. Standard library only.
"""

from __future__ import annotations

import gc
import os
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from memtui.probe import protocol
from memtui.probe.census import take_census
from memtui.probe.clock import Clock
from memtui.probe.collector import HISTORY_FIELDS, Collector, history_point
from memtui.probe.heap.summary import HeapSummaries
from memtui.probe.recorder import Recorder, emit_marker
from memtui.probe.server import AgentServer
from memtui.probe.watch import TraceController

REPORT_HISTORY_POINTS: int = 5000
Reply = dict[str, Any]


class CommandError(Exception):
    """A command's arguments are wrong; the reply says so and the connection stays open."""


def _dump_target(message: dict[str, Any], pid: int) -> str:
    from memtui.probe.heap.dump import SUFFIX, unique_path  # loaded by the first dump only

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


class AgentCommands:
    """The protocol's commands, answered from the agent's collector."""

    pid: int
    clock: Clock
    collector: Collector
    server: AgentServer
    sample_interval_s: float
    census_interval_s: float
    started_at: float
    _baseline: dict[str, Any] | None
    _snapshots: deque[dict[str, Any]]

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

    def cmd_hello(self, message: dict[str, Any]) -> Reply:
        capabilities = ["rss", "vms", "gc", "census", "allocated_blocks", "history"]
        capabilities += ["tracemalloc", "watch", "baseline", "report_data", "heap_dump"]
        capabilities += ["recording", "markers", "heap_summary"]
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
        """What is new since sample ``since``. The site ranking (most of a frame's bytes) is
        sent only when it changed since the viewer's ``sites_version``."""
        since = _int_arg(message, "since", 0, -(2**62), 2**62)
        collector = self.collector
        base_at = self._baseline["at"] if self._baseline else None
        version = f"{self.tracer.version}:{base_at}"
        fresh = message.get("sites_version") != version
        reply = collector.frame(
            since,
            message.get("summary_seq", 0),
            census=self._census_view(collector.latest_census),
            sites=self._sites() if fresh else None,
            include_sites=fresh,
        )
        reply["sites_version"] = version
        reply["baseline"] = {"at": base_at} if base_at is not None else None
        reply["agent"] = self._agent_stats()
        return reply

    def cmd_heap_summary(self, message: dict[str, Any]) -> Reply:
        """Take a heap summary soon, and a tracing window (the monitor's detector suspects a
        leak)."""
        self.summaries.request_now()
        self.tracer.leak_suspected()
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
        from memtui.probe.heap.dump import WRITERS, HeapDumpFailed, start_heap_dump

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


COMMANDS: dict[str, Callable[[AgentCommands, dict[str, Any]], Reply]] = {
    "hello": AgentCommands.cmd_hello,
    "frame": AgentCommands.cmd_frame,
    "snapshot": AgentCommands.cmd_snapshot,
    "tracemalloc": AgentCommands.cmd_tracemalloc,
    "gc_collect": AgentCommands.cmd_gc_collect,
    "set_baseline": AgentCommands.cmd_set_baseline,
    "heap_dump": AgentCommands.cmd_heap_dump,
    "report_data": AgentCommands.cmd_report_data,
    "mark": AgentCommands.cmd_mark,
    "heap_summary": AgentCommands.cmd_heap_summary,
    "detach": AgentCommands.cmd_hello,  # answered in _dispatch (the reply goes out before the stop)
}
assert set(COMMANDS) == protocol.COMMANDS
