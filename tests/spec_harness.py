"""What the spec's examples assume exists around them, made real for tests/test_spec_examples.py.

The spec's code blocks are run as written; only the import path changes (``tests.stress.
memory_profiler`` -> ``memtui``) and durations are compressed: blocks that do not import the
profiler themselves get a `MemoryProfiler` on a `LeakyClock` (simulated time, a real workload
that leaks real objects as time passes, and a synthetic RSS series that grows or stays flat), so
"7 days" take seconds. The names the examples use without defining (``run_trading_system``,
``send_alert``, ``OrderBook`` ...) are small real implementations here.
"""

from __future__ import annotations

import asyncio
import json
import mmap
import re
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from memtui import MemoryProfiler as RealProfiler
from memtui import analyze_snapshot_growth, validate_consistency
from memtui.probe.clock import FakeClock
from memtui.probe.memory import MemoryReading

MIB = 1024 * 1024
APP_STATE: list[Any] = []


def leak_step(n: int) -> None:
    """The simulated application's leak: real objects kept forever."""
    for _ in range(n):
        APP_STATE.append({"order": len(APP_STATE), "payload": bytes(200)})  # THE APP'S LEAK


class LeakyClock(FakeClock):
    """Simulated time; every simulated minute the application leaks a few real objects."""

    def __init__(self, leak_objects_per_minute: int) -> None:
        super().__init__()
        self.per_minute = leak_objects_per_minute
        self._minutes_done = 0

    def advance(self, seconds: float) -> None:
        super().advance(seconds)
        minutes = int(self.monotonic() // 60)
        if self.per_minute and minutes > self._minutes_done:
            leak_step(min(minutes - self._minutes_done, 60) * self.per_minute)
        self._minutes_done = minutes


class Scenario:
    """A leaking (RSS +rate MB/h from a 300 MB base) or a flat simulated application."""

    def __init__(self, leak_mb_per_hour: float) -> None:
        self.rate = leak_mb_per_hour
        self.clock = LeakyClock(2 if leak_mb_per_hour > 0 else 0)
        self.profilers: list[RealProfiler] = []

    def rss(self) -> MemoryReading:
        mb = 300.0 + self.rate * self.clock.monotonic() / 3600.0
        rss = int(mb * MIB) // 4096 * 4096
        return MemoryReading(rss_bytes=rss, vms_bytes=2 * rss)

    def profiler_class(self) -> type[RealProfiler]:
        scenario = self

        class MemoryProfiler(RealProfiler):
            """memtui's MemoryProfiler on simulated time (samples >= 60 s, snapshots >= 4 h
            apart, the census off: a simulated week stays a few seconds of real work)."""

            def __init__(self, *args: Any, **kwargs: Any) -> None:
                kwargs.setdefault("clock", scenario.clock)
                kwargs.setdefault("sample_interval", 60.0)
                kwargs.setdefault("enable_census", False)
                super().__init__(*args, **kwargs)
                self.snapshot_interval = max(self.snapshot_interval, 4 * 3600.0)
                scenario.profilers.append(self)

            async def monitor_continuous(
                self,
                days: float = 0.0,
                hours: float = 0.0,
                minutes: float = 0.0,
                seconds: float = 0.0,
            ) -> None:
                # At most ~24 snapshots per simulated run: a week stays seconds of real work.
                total = days * 86400.0 + hours * 3600.0 + minutes * 60.0 + seconds
                self.snapshot_interval = max(self.snapshot_interval, total / 24.0)
                await super().monitor_continuous(days, hours, minutes, seconds)

            def _read_memory(self, full: bool = False) -> MemoryReading:
                # RSS follows the simulated application; everything else is this process.
                return scenario.rss()

        return MemoryProfiler

    async def sleep(self, seconds: float) -> None:
        """asyncio.sleep for the examples: simulated time, with the profilers' due work done."""
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            self.clock.advance(min(60.0, end - self.clock.monotonic()))
            for p in self.profilers:
                p.poll()
        await asyncio.sleep(0)


class OrderBook:
    """The spec's example domain object."""

    def __init__(self) -> None:
        self.orders: list[int] = []


class Order:
    __slots__ = ("id", "price", "quantity", "side")


class ObjectPool:
    """The spec's object pool: acquire() reuses released instances."""

    def __init__(self, cls: type, size: int) -> None:
        self.cls = cls
        self.free = [cls() for _ in range(size)]

    def acquire(self) -> Any:
        return self.free.pop() if self.free else self.cls()

    def release(self, obj: Any) -> None:
        self.free.append(obj)


class EventBus:
    def __init__(self) -> None:
        self.handlers: list[Callable[..., Any]] = []

    def subscribe(self, handler: Callable[..., Any]) -> None:
        self.handlers.append(handler)


class Client:
    def handler(self, event: Any) -> None:
        pass


def _snapshot_buffer(size: int) -> mmap.mmap:
    """An order-book snapshot in fresh anonymous pages, all touched. Not bytes: once a test
    frees large buffers, glibc raises its mmap threshold and serves the next ones from freed
    heap, so RSS would not grow with the leak."""
    buf = mmap.mmap(-1, size)
    buf.write(b"s" * size)
    return buf


async def run_trading_system(seconds: float = 5.0) -> None:
    """A real, short run of the 'application' in real time: it leaks about 13 MB/s, mostly as
    order-book snapshots in fresh pages, so RSS grows steadily with the leak even in a test
    process whose heap has free room left by earlier tests (a leak of small objects alone
    first refills those free pools, and RSS stays flat, then steps up)."""
    loop = asyncio.get_running_loop()
    end = loop.time() + seconds
    step = 0
    while loop.time() < end:
        leak_step(50)
        if step % 2 == 0:
            APP_STATE.append(_snapshot_buffer(256 * 1024))  # THE APP'S LEAK, too
        step += 1
        await asyncio.sleep(0.01)


def namespace(scenario: Scenario, tmp: Path, sent: list[str]) -> dict[str, Any]:
    """Globals for one example: the names it uses without defining them."""

    async def send_alert(message: str) -> None:
        sent.append(message)

    async def save_report(report: dict[str, Any], name: str) -> None:
        (tmp / name).write_text(json.dumps(report))

    async def noop() -> None:
        await scenario.sleep(600)

    fake_asyncio = types.SimpleNamespace(sleep=scenario.sleep, run=asyncio.run)
    return {
        "__name__": "spec_example",
        "MemoryProfiler": scenario.profiler_class(),
        "asyncio": fake_asyncio,
        "run_trading_system": run_trading_system,
        "send_alert": send_alert,
        "save_report": save_report,
        "apply_change": noop,
        "generate_production_load": noop,
        "OrderBook": OrderBook,
        "Order": Order,
        "ObjectPool": ObjectPool,
        "event_bus": EventBus(),
        "clients": [Client() for _ in range(5)],
        "message_stream": [f"message {i}" for i in range(100)],
        "large_order_list": list(range(100)),
        "process": lambda order: order,
        "is_idle": lambda: True,
        "validate_consistency": validate_consistency,
        "analyze_snapshot_growth": analyze_snapshot_growth,
    }


IMPORT_RE = re.compile(r"from tests\.stress\.memory_profiler import")
CLI_RE = re.compile(r"python -m tests\.stress\.memory_profiler")


def python_source(code: str) -> str:
    """The example with only its import path changed."""
    return IMPORT_RE.sub("from memtui import", code)


def compress_cli(command: str, memtui: str, max_s: float = 3.0) -> str:
    """The CLI example with memtui's name and a compressed --duration (N s -> N/1800, <= 3 s)."""
    command = CLI_RE.sub(memtui, command.replace("\\\n", " "))

    def short(m: re.Match[str]) -> str:
        return f"--duration {min(float(m.group(1)) / 1800.0, max_s):g}"

    return re.sub(r"--duration (\d+)", short, command)
