"""Provides FakeSource: a scripted Source for the monitor's tests, screenshots and benchmark."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from memtui.engine.monitor.frame import (
    AllocatorRow,
    CommandResult,
    GcView,
    HeaderView,
    MonitorFrame,
    ObjectRow,
    SeriesPoint,
    SuspectView,
    VerdictView,
)

MIB = 1024 * 1024


class FakeSource:
    """Returns scripted frames one poll at a time (the last one repeats) and records commands.

    Args:
        frames: The frames to return, in order.
        command_delay_s: How long every command blocks, to simulate a slow target.
        fail: Command names that fail with ``ok=False``; "poll" makes ``poll`` raise OSError.
        real_dumps: ``dump_heap`` writes a real heap dump of a real child process that grows
            an ``ORDER_LOG`` (each dump holds more), instead of naming a file that is not there.
    """

    def __init__(
        self,
        frames: Sequence[MonitorFrame],
        *,
        command_delay_s: float = 0.0,
        fail: Sequence[str] = (),
        real_dumps: bool = False,
    ) -> None:
        if not frames:
            raise ValueError("FakeSource needs at least one frame")
        self.frames = list(frames)
        self.command_delay_s = command_delay_s
        self.fail = set(fail)
        self.real_dumps = real_dumps
        self.dumps = 0
        self.marks: list[str] = []
        self.polls = 0
        self.commands: list[str] = []
        self.closed = False
        self.exit_code: int | None = None
        self.ended_at: float | None = None
        self._lock = threading.Lock()
        self._index = 0

    def exit(self, code: int = 0, at: float = 1_700_000_000.0) -> None:
        """From the next poll on, the target has exited with ``code`` at wall time ``at``."""
        self.exit_code = code
        self.ended_at = at

    def poll(self, max_points: int = 600) -> MonitorFrame:
        with self._lock:
            self.polls += 1
            if "poll" in self.fail:
                raise OSError("agent socket closed (fake)")
            frame = self.frames[min(self._index, len(self.frames) - 1)]
            self._index += 1
        if self.exit_code is not None:
            header = dataclasses.replace(
                frame.header, status="exited", exit_code=self.exit_code, ended_at=self.ended_at
            )
            frame = dataclasses.replace(frame, header=header)
        return frame

    def _command(self, name: str, message: str, path: str | None = None) -> CommandResult:
        with self._lock:
            self.commands.append(name)
        if self.command_delay_s:
            time.sleep(self.command_delay_s)
        if name in self.fail:
            return CommandResult(ok=False, message=f"{name} failed (fake)")
        return CommandResult(ok=True, message=message, path=path)

    def take_snapshot(self) -> CommandResult:
        return self._command("take_snapshot", "Snapshot 1 taken")

    def set_baseline(self) -> CommandResult:
        return self._command("set_baseline", "Baseline set")

    def collect_garbage(self) -> CommandResult:
        return self._command("collect_garbage", "gc.collect() freed 1,234 objects")

    def set_tracing(self, on: bool) -> CommandResult:
        return self._command("set_tracing", f"tracemalloc {'on' if on else 'off'}")

    def dump_heap(self, out_dir: str) -> CommandResult:
        if not self.real_dumps:
            path = str(Path(out_dir).resolve() / "memtui-4242.heap")
            return self._command("dump_heap", f"Heap dump written to {path}", path)
        self.dumps += 1
        n = self.dumps
        while (Path(out_dir) / f"heapdump-4242-{n}.mtdump").exists():
            n += 1
        path = str(Path(out_dir).resolve() / f"heapdump-4242-{n}.mtdump")
        result = self._command("dump_heap", f"Heap dump written to {path}", path)
        if result.ok:
            write_real_dump(path, orders=2000 * self.dumps)
        return result

    def mark(self, label: str) -> CommandResult:
        self.marks.append(label)
        return self._command("mark", f"Marker recorded: {label}")

    def export_report(self, out_dir: str) -> CommandResult:
        path = str(Path(out_dir).resolve() / "memtui-report-4242.json")
        result = self._command("export_report", f"Report written to {path}", path)
        if result.ok:
            Path(path).write_text('{"schema_version": 1}\n')
        return result

    def close(self) -> None:
        self.closed = True


_DUMPER = textwrap.dedent("""\
    import sys
    from memtui.probe.heap.dump import write_heap_dump

    ORDER_LOG = []
    ORDER_LOG.extend({"id": i, "note": "order-%08d" % i * 4} for i in range(int(sys.argv[2])))
    write_heap_dump(sys.argv[1], "fork")
    """)


def write_real_dump(path: str, orders: int) -> None:
    """A real dump of a real interpreter whose ``__main__.ORDER_LOG`` holds ``orders`` dicts."""
    subprocess.run([sys.executable, "-c", _DUMPER, path, str(orders)], check=True, timeout=120)


def demo_frames(
    count: int = 1,
    *,
    start_s: float = 3600.0,
    step_s: float = 1.0,
    kind: str = "agent",
    with_baseline: bool = True,
) -> list[MonitorFrame]:
    """Realistic frames of a leaky order service: ``count`` frames, ``step_s`` apart.

    Fully deterministic, so snapshot tests and screenshots never change between runs.
    """
    return [
        _demo_frame(i, start_s + i * step_s, kind=kind, with_baseline=with_baseline)
        for i in range(count)
    ]


def _rss_at(t: float) -> float:
    """RSS of the demo: 180 MiB base, +40 MiB/h leak after 10 min, a GC sawtooth."""
    saw = 6 * MIB * ((t % 97.0) / 97.0)
    leak = 40 * MIB * max(0.0, t - 600.0) / 3600.0
    return 180 * MIB + leak + saw


def _demo_frame(seq: int, now_s: float, *, kind: str, with_baseline: bool) -> MonitorFrame:
    n_points = 600
    first = max(0.0, now_s - 24 * 3600)
    step = (now_s - first) / (n_points - 1)
    series = tuple(
        SeriesPoint(
            t_s=first + i * step,
            rss_bytes=_rss_at(first + i * step),
            uss_bytes=_rss_at(first + i * step) - 22 * MIB if kind != "in-process" else None,
            traced_bytes=(_rss_at(first + i * step) - 150 * MIB) if kind != "outside" else None,
        )
        for i in range(n_points)
    )
    hours = now_s / 3600.0
    rss = int(_rss_at(now_s))
    base = with_baseline and kind != "outside"
    allocators = tuple(
        AllocatorRow(
            file=file,
            line=line,
            function=function,
            size_bytes=int(size * MIB + (rate * MIB * hours if rate > 0 else 0)),
            count=count + int(rate * 1000 * hours),
            growth_bytes=int(rate * MIB * hours) if base else None,
            growth_mb_per_hour=rate if base else None,
            size_kind="window" if kind != "outside" else "held",
            traceback=(
                "app/server.py:88 in serve_forever",
                "app/handlers.py:41 in handle_request",
                f"{file}:{line} in {function}",
            ),
        )
        for file, line, function, size, count, rate in _SITES
    )
    leaking = now_s > 1200
    watched_h = (now_s - 60.0) / 3600.0  # counts are compared with the first census, at 1 min
    objects = tuple(
        ObjectRow(
            type_name=name,
            count=count + int(per_hour * hours),
            delta=int(per_hour * watched_h) if kind != "outside" else None,
            per_hour=per_hour if kind != "outside" else None,
            tracked=tracked,
            leaking=leaking and name == "dict",
        )
        for name, count, per_hour, tracked in _TYPES
    )
    gc = GcView(
        collections=(1842 + seq, 167, 12),
        collected=(912_004, 55_120, 3_410),
        uncollectable=(0, 0, 2),
        total_time_s=4.215,
        recent_time_fraction=0.012,
        thresholds=(700, 10, 10),
        garbage_count=2,
    )
    rate_mb_h = 40.0
    verdict = VerdictView(
        state="leak" if leaking else "ok",
        rate_mb_per_hour=rate_mb_h if leaking else 0.4,
        confidence=0.94 if leaking else 0.12,
        projected_oom_hours=(1024 - rss / MIB) / rate_mb_h if leaking else None,
        memory_limit_source="cgroup memory.max, 1 GiB",
        reason="RSS grows steadily for 50 min (fit r=0.97)" if leaking else "no sustained growth",
        suspects=(
            "app/orders.py:57 cache_order: +40 MiB/h",
            "dict: +52,000/h (tracked)",
            "app/audit.py:23 record_event: +3.1 MiB/h",
        )
        if leaking
        else (),
        suspect_rows=_suspects(now_s) if leaking and kind != "outside" else (),
        trend_start_s=600.0 if leaking else None,
        trend_intercept_bytes=_rss_at(600.0) if leaking else None,
    )
    header = HeaderView(
        pid=4242,
        command="python -m app.server --port 8080 --workers 4",
        python_version="3.11.7" if kind != "outside" else None,
        kind=kind,  # type: ignore[arg-type]  # the demo passes one of SourceKind's values
        why_limited=""
        if kind != "outside"
        else "no agent: pid 4242 is not a CPython process; RSS, USS and maps only",
        uptime_s=now_s + 12.0,
        sample_interval_s=1.0,
        status="live",
        tracing="watch" if kind != "outside" else "off",
    )
    unavailable = ("allocators", "objects", "gc") if kind == "outside" else ()
    return MonitorFrame(
        seq=seq,
        header=header,
        series=series,
        current_rss_bytes=rss,
        peak_rss_bytes=int(max(p.rss_bytes for p in series)),
        alert_threshold_bytes=512 * MIB,
        verdict=verdict,
        allocators=allocators if kind != "outside" else (),
        objects=objects if kind != "outside" else (),
        gc=gc if kind != "outside" else None,
        events=("baseline set at 10m",) if base else (),
        baseline_at_s=600.0 if base else None,
        unavailable=unavailable,
        objects_base_s=60.0 if kind != "outside" else None,
        markers=((1500.0, "deploy 42"), (6000.0, "cache warm")) if now_s > 6000 else (),
    )


def _suspects(now_s: float) -> tuple[SuspectView, ...]:
    """The demo service's culprits, growing since 10 min, as the culprit engine names them."""
    minutes = max(0.0, now_s - 600.0) / 60.0
    growth = tuple(
        (t, 900.0 * max(0.0, t - 600.0) / 60.0, 520.0 * 900.0 * max(0.0, t - 600.0) / 60.0)
        for t in (600.0 + (now_s - 600.0) * i / 11 for i in range(12))
    )
    return (
        SuspectView(
            kind="unbounded_collection",
            path="app.orders.ORDER_LOG",
            detail=f"list app.orders.ORDER_LOG grew to {int(900 * minutes):,} items",
            holds="dict",
            items=int(900 * minutes),
            items_per_min=900.0,
            mb_per_min=0.45,
            retained_bytes=int(520 * 900 * minutes),
            first_seen_s=660.0,
            chain="module app.orders → global ORDER_LOG → list",
            growth=growth,
            samples=(
                "{'id': 1041, 'side': 'B', 'note': 'order-00001041order-00001041…'}",
                "{'id': 1042, 'side': 'S', 'note': 'order-00001042order-00001042…'}",
                "{'id': 1043, 'side': 'B', 'note': 'order-00001043order-00001043…'}",
            ),
        ),
        SuspectView(
            kind="event_listeners",
            path="app.events.BUS.handlers",
            detail="app.events.BUS.handlers: 3,120 bound methods, never unsubscribed",
            holds="method",
            items=3120,
            items_per_min=12.0,
            mb_per_min=0.006,
            retained_bytes=3120 * 640,
            first_seen_s=900.0,
            chain="module app.events → global BUS → EventBus → dict → list",
            growth=tuple((t, 12.0 * t / 60.0, 640 * 12.0 * t / 60.0) for t, _, _ in growth),
            samples=("<bound method Client.handler of <app.clients.Client object>>",),
        ),
        SuspectView(
            kind="lru_cache",
            path="app.prices.quote",
            detail="lru_cache app.prices.quote (maxsize=None): 41,000 entries",
            holds="tuple",
            items=41_000,
            items_per_min=35.0,
            mb_per_min=0.004,
            retained_bytes=41_000 * 180,
            first_seen_s=1100.0,
            chain="module app.prices → global quote → functools._lru_cache_wrapper",
        ),
    )


_SITES = (
    ("app/orders.py", 57, "cache_order", 38.2, 41_200, 40.0),
    ("app/audit.py", 23, "record_event", 12.7, 90_310, 3.1),
    ("app/models.py", 112, "Order.__init__", 9.4, 61_008, 0.0),
    ("/usr/lib/python3.11/json/decoder.py", 353, "raw_decode", 6.1, 22_870, 0.0),
    ("app/handlers.py", 74, "parse_body", 3.3, 8_145, -0.2),
    ("app/db.py", 201, "fetch_rows", 2.8, 5_512, 0.0),
    ("/usr/lib/python3.11/re/_compiler.py", 759, "compile", 1.9, 3_220, 0.0),
    ("app/templates.py", 40, "render", 1.2, 1_904, 0.0),
    ("app/metrics.py", 18, "observe", 0.6, 12_003, 0.1),
    ("/usr/lib/python3.11/logging/__init__.py", 1566, "makeRecord", 0.4, 910, 0.0),
)

_TYPES = (
    ("dict", 412_330, 52_000.0, True),
    ("str", 398_112, 8_100.0, False),
    ("tuple", 120_554, 0.0, False),
    ("function", 38_021, 0.0, False),
    ("list", 31_090, 1_200.0, True),
    ("app.orders.Order", 20_600, 20_000.0, True),
    ("cell", 9_870, 0.0, False),
    ("type", 4_112, 0.0, False),
    ("weakref", 3_904, 0.0, False),
    ("set", 1_022, -4.0, False),
)
