"""Provides `memtui exporter`: memtui's figures for every agent on the host, for Prometheus.

Why: teams with many hosts watch them with Prometheus, not a terminal per process. A
background poller pulls each agent (one ``frame`` request per interval, what the agent
already collected: no census, no tracing, no work per scrape) and runs the leak detector
here; scrapes are served by prometheus-client from the poller's last snapshot, so a scrape
never waits on an agent, and an agent never waits on a scrape. A process that exits drops out
of the next snapshot, and so do its series.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from memtui.engine.facts.metrics import HISTORY_FIELDS, MemoryMetrics
from memtui.errors import MemtuiError, UsageError
from memtui.probe.history import History
from memtui.remote.client import AgentClient
from memtui.remote.discovery import agent_sockets
from memtui.remote.session import AgentSession

DEFAULT_LISTEN: str = "127.0.0.1:9464"
DEFAULT_INTERVAL_S: float = 2.0
DEFAULT_TOP_TYPES: int = 20
CLIENT_TIMEOUT_S: float = 2.0
"""An agent that does not answer within this is skipped for this round (never waited on)."""
MAX_AGENTS: int = 512
COMMAND_CHARS: int = 200
LEAK_STATES: dict[str, int] = {"ok": 0, "suspected": 1, "leak": 2}
EXPORTER_TIERS: tuple[tuple[float, int], ...] = ((10.0, 360),)


@dataclass(frozen=True, slots=True)
class AgentFigures:
    """What one agent's process looks like at the poller's last round (immutable)."""

    pid: int
    command: str
    rss_bytes: int
    traced_bytes: int
    leak_state: int
    leak_rate_mb_per_hour: float
    gc_collections: tuple[int, int, int]
    gc_seconds: float
    objects: tuple[tuple[str, int], ...]
    started_at: float


@dataclass(frozen=True, slots=True)
class PollSnapshot:
    figures: tuple[AgentFigures, ...] = ()
    poll_seconds: float = 0.0
    polled_at: float = 0.0
    errors_total: int = 0


def parse_listen(text: str) -> tuple[str, int]:
    """'HOST:PORT', '[::1]:PORT' or ':PORT' (all interfaces) -> (host, port); UsageError."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UsageError(f"--listen {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if host and not _valid_host(host):
        raise UsageError(f"--listen {text!r}: {host!r} is not an IP address or host name")
    return host or "0.0.0.0", int(port_text)


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        labels = host.split(".")
        return all(lbl and len(lbl) < 64 and lbl.replace("-", "").isalnum() for lbl in labels)


class AgentPoller:
    """Keeps one AgentSession per reachable agent and a snapshot of their figures."""

    def __init__(
        self,
        *,
        interval_s: float = DEFAULT_INTERVAL_S,
        top_types: int = DEFAULT_TOP_TYPES,
        growth_threshold_mb_per_hour: float = 10.0,
        discover: Callable[[], dict[int, str]] = agent_sockets,
    ) -> None:
        self.interval_s = interval_s
        self.top_types = top_types
        self.growth_threshold = growth_threshold_mb_per_hour
        self._discover = discover
        self._sessions: dict[int, AgentSession] = {}
        self._refused: dict[int, float] = {}
        """pid -> monotonic time until which we do not retry (a full or broken agent)."""
        self.snapshot = PollSnapshot()
        """Replaced whole after each round: readers never see a half-made one."""
        self._errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self.poll_once()
        self._thread = threading.Thread(target=self._loop, name="memtui-exporter", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(CLIENT_TIMEOUT_S * 2)
        for session in self._sessions.values():
            session.close()
        self._sessions.clear()

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.poll_once()
            except Exception:  # keep serving the last snapshot rather than die
                self._errors += 1

    def _connect(self, found: dict[int, str]) -> None:
        now = time.monotonic()
        for pid, path in found.items():
            if pid in self._sessions or self._refused.get(pid, 0.0) > now:
                continue
            if len(self._sessions) >= MAX_AGENTS:
                break
            try:
                client = AgentClient(path, CLIENT_TIMEOUT_S)
            except MemtuiError:
                self._errors += 1
                self._refused[pid] = now + 30.0
                continue
            session = AgentSession(client, self.growth_threshold, None)
            # No chart here: an hour at 10 s instead of a week's tiers (the detector keeps
            # its own bounded state), so the exporter stays small however long it runs.
            session.analysis.metrics = MemoryMetrics(History(HISTORY_FIELDS, EXPORTER_TIERS))
            self._sessions[pid] = session
        for pid in [p for p in self._refused if p not in found]:
            del self._refused[pid]

    def poll_once(self) -> PollSnapshot:
        """One round: discover, pull every agent, drop the gone ones, publish the snapshot."""
        t0 = time.perf_counter()
        found = self._discover()
        for pid in [p for p in self._sessions if p not in found]:
            self._sessions.pop(pid).close()  # its socket is gone: the process ended
        self._connect(found)
        figures = []
        for pid, session in list(self._sessions.items()):
            try:
                alive = session.poll()
            except MemtuiError:
                alive = False
            if not alive:
                self._sessions.pop(pid).close()
                self._errors += 1
                continue
            figures.append(self._figures(session))
        snap = PollSnapshot(
            figures=tuple(figures),
            poll_seconds=time.perf_counter() - t0,
            polled_at=time.time(),
            errors_total=self._errors,
        )
        self.snapshot = snap
        return snap

    def _figures(self, s: AgentSession) -> AgentFigures:
        m = s.metrics
        gc = s.gc
        counts = s.census.counts if s.census is not None else {}
        top = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: self.top_types]
        verdict = s.detector.verdict
        return AgentFigures(
            pid=s.pid,
            command=" ".join(s.argv)[:COMMAND_CHARS],
            rss_bytes=m.current_bytes,
            traced_bytes=m.traced_bytes,
            leak_state=LEAK_STATES.get(verdict.state, 0),
            leak_rate_mb_per_hour=float(verdict.rate_mb_per_hour or 0.0),
            gc_collections=gc.collections if gc is not None else (0, 0, 0),
            gc_seconds=sum(gc.time_s) if gc is not None else 0.0,
            objects=tuple(top),
            started_at=s.started_wall,
        )


class MemtuiCollector(Collector):
    """Turns the poller's snapshot into metric families (called by prometheus-client)."""

    def __init__(self, poller: AgentPoller) -> None:
        self.poller = poller

    def collect(self) -> Iterator[Metric]:
        snap = self.poller.snapshot
        rss = GaugeMetricFamily(
            "memtui_rss_bytes", "Resident set size of the process", labels=["pid", "command"]
        )
        traced = GaugeMetricFamily(
            "memtui_traced_bytes",
            "Bytes traced by tracemalloc (0 unless continuous tracing is on)",
            labels=["pid"],
        )
        state = GaugeMetricFamily(
            "memtui_leak_state", "Leak verdict: 0 ok, 1 suspected, 2 leak", labels=["pid"]
        )
        rate = GaugeMetricFamily(
            "memtui_leak_rate_mb_per_hour",
            "Growth rate of the memory floor, MiB per hour",
            labels=["pid"],
        )
        collections = CounterMetricFamily(
            "memtui_gc_collections",
            "Garbage collections since the agent started, per generation",
            labels=["pid", "generation"],
        )
        gc_seconds = CounterMetricFamily(
            "memtui_gc_seconds", "Seconds spent in garbage collection", labels=["pid"]
        )
        objects = GaugeMetricFamily(
            "memtui_objects",
            f"Live objects of the {self.poller.top_types} most numerous types",
            labels=["pid", "type"],
        )
        started = GaugeMetricFamily(
            "memtui_agent_start_time_seconds", "When the agent started (Unix time)", labels=["pid"]
        )
        for f in snap.figures:
            pid = str(f.pid)
            rss.add_metric([pid, f.command], f.rss_bytes)
            traced.add_metric([pid], f.traced_bytes)
            state.add_metric([pid], f.leak_state)
            rate.add_metric([pid], f.leak_rate_mb_per_hour)
            for gen, n in enumerate(f.gc_collections):
                collections.add_metric([pid, str(gen)], n)
            gc_seconds.add_metric([pid], f.gc_seconds)
            for type_name, count in f.objects:
                objects.add_metric([pid, type_name], count)
            started.add_metric([pid], f.started_at)
        yield from (rss, traced, state, rate, collections, gc_seconds, objects, started)
        yield GaugeMetricFamily(
            "memtui_exporter_agents", "Agents polled in the last round", value=len(snap.figures)
        )
        yield GaugeMetricFamily(
            "memtui_exporter_poll_seconds",
            "Duration of the last polling round",
            value=snap.poll_seconds,
        )
        yield CounterMetricFamily(
            "memtui_exporter_errors",
            "Agents that could not be reached or stopped answering",
            value=snap.errors_total,
        )


def registry_for(poller: AgentPoller) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(MemtuiCollector(poller))
    return registry


@dataclass
class Exporter:
    """A running exporter: the poller and the HTTP server that serves its snapshot."""

    poller: AgentPoller
    host: str
    port: int
    _server: object
    _thread: threading.Thread

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        shutdown = getattr(self._server, "shutdown", None)
        if shutdown is not None:
            shutdown()
        close = getattr(self._server, "server_close", None)
        if close is not None:
            close()
        self.poller.stop()


def start_exporter(listen: str, poller: AgentPoller) -> Exporter:
    """Bind ``listen`` (HOST:PORT; port 0 picks one), start polling and serving.

    Raises MemtuiError (one line) when the address is bad or the port is taken.
    """
    from prometheus_client import start_http_server

    host, port = parse_listen(listen)
    registry = registry_for(poller)
    try:
        server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise MemtuiError(f"cannot listen on {listen}: {reason}") from None
    poller.start()
    bound_port = int(server.server_address[1])
    return Exporter(poller, host, bound_port, server, thread)
