"""Provides tests of collect_signals: naming, safety against hostile objects, JSON round trip."""

from __future__ import annotations

import asyncio
import functools
import glob
import json
import logging
import os
import subprocess
import sys
import threading
import types
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import pytest

from memtui.probe.signals import LeakSignals, collect_signals

ROOT = Path(__file__).resolve().parent.parent
CALLS: list[str] = []


class Hostile:
    """Every hook records that it ran; collect_signals must trigger none of them."""

    def __getattr__(self, name: str) -> object:
        CALLS.append(f"getattr {name}")
        raise RuntimeError(name)

    def __len__(self) -> int:
        CALLS.append("len")
        raise RuntimeError("len")

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        CALLS.append("__class__")
        raise RuntimeError("__class__")

    @property
    def __dict__(self) -> dict[str, object]:  # type: ignore[override]
        CALLS.append("__dict__")
        raise RuntimeError("__dict__")


class HostileList(list[int]):
    def __len__(self) -> int:
        CALLS.append("list len")
        raise RuntimeError("len")


class Bus:
    def __init__(self) -> None:
        self.handlers: list[object] = []


class Listener:
    def on_event(self) -> None:
        pass


@pytest.fixture
def fake_module() -> Iterator[types.ModuleType]:
    """A module 'fakeapp.handlers' in sys.modules with the patterns to be named."""
    mod = types.ModuleType("fakeapp.handlers")
    mod.CACHE = list(range(5000))  # type: ignore[attr-defined]
    mod.SMALL = list(range(10))  # type: ignore[attr-defined]
    mod.EVENT_BUS = Bus()  # type: ignore[attr-defined]
    mod.EVENT_BUS.handlers.extend(Listener().on_event for _ in range(1500))
    service = type("Service", (), {"registry": {i: str(i) for i in range(2000)}})
    service.__module__ = "fakeapp.handlers"
    mod.Service = service  # type: ignore[attr-defined]
    mod.QUEUE = deque(range(3000))  # type: ignore[attr-defined]
    mod.HOSTILE = Hostile()  # type: ignore[attr-defined]
    mod.HOSTILE_LIST = HostileList(range(4000))  # type: ignore[attr-defined]

    @functools.lru_cache(maxsize=None)  # noqa: UP033 - the pattern under test
    def price(x: int) -> int:
        return x

    for i in range(25):
        price(i)
    mod.price = price  # type: ignore[attr-defined]
    sys.modules[mod.__name__] = mod
    CALLS.clear()
    try:
        yield mod
    finally:
        del sys.modules[mod.__name__]


def test_names_containers_one_level_deep(fake_module: types.ModuleType) -> None:
    signals = collect_signals(max_named=50)
    by_name = {c.name: c for c in signals.containers}
    assert by_name["fakeapp.handlers.CACHE"].length == 5000
    assert by_name["fakeapp.handlers.CACHE"].item_types == (("int", 50),)
    assert by_name["fakeapp.handlers.Service.registry"].type_name == "dict"
    assert by_name["fakeapp.handlers.QUEUE"].type_name == "collections.deque"
    bus = by_name["fakeapp.handlers.EVENT_BUS.handlers"]
    assert (bus.length, bus.sampled, bus.callables) == (1500, 50, 50)
    assert "fakeapp.handlers.SMALL" not in by_name
    assert "fakeapp.handlers.HOSTILE_LIST" not in by_name  # subclass: its __len__ never runs
    lru = {c.name: c for c in signals.lru_caches}["fakeapp.handlers.price"]
    assert (lru.currsize, lru.maxsize, lru.misses) == (25, None, 25)
    assert CALLS == []
    assert signals.errors == ()


def test_hostile_objects_run_no_code_and_nothing_is_kept(fake_module: types.ModuleType) -> None:
    cache = fake_module.CACHE
    before = sys.getrefcount(cache)
    for _ in range(3):
        collect_signals()
    assert sys.getrefcount(cache) == before
    assert CALLS == []


def test_limits_are_respected(fake_module: types.ModuleType) -> None:
    signals = collect_signals(max_named=2, min_len=2500)
    assert len(signals.containers) <= 2
    assert all(c.length >= 2500 for c in signals.containers)
    assert len(signals.lru_caches) <= 2


def test_json_round_trip(fake_module: types.ModuleType) -> None:
    signals = collect_signals()
    text = json.dumps(signals.to_dict())
    assert LeakSignals.from_dict(json.loads(text)) == signals


def test_threads_logging_fds_and_tasks() -> None:
    stop = threading.Event()
    threads = [
        threading.Thread(target=stop.wait, name=f"sig-worker-{i}", daemon=True) for i in range(3)
    ]
    for t in threads:
        t.start()
    logger = logging.getLogger("memtui.test.signals")
    handlers = [logging.NullHandler() for _ in range(4)]
    for h in handlers:
        logger.addHandler(h)
    r, w = os.pipe()

    async def pending() -> LeakSignals:
        gate = asyncio.Event()
        tasks = [asyncio.ensure_future(gate.wait()) for _ in range(5)]
        await asyncio.sleep(0)
        signals = collect_signals()
        gate.set()
        await asyncio.gather(*tasks)
        return signals

    try:
        signals = asyncio.run(pending())
    finally:
        stop.set()
        for h in handlers:
            logger.removeHandler(h)
        os.close(r)
        os.close(w)
    assert dict(signals.thread_groups)["sig-worker-N"] == 3
    assert dict(signals.logger_handlers)["memtui.test.signals"] == 4
    assert signals.asyncio_tasks is not None and signals.asyncio_tasks >= 6  # 5 + main task
    if sys.platform.startswith("linux"):
        assert signals.fds is not None and dict(signals.fd_kinds).get("pipe", 0) >= 2
    assert signals.modules == len(sys.modules)
    assert signals.gc_enabled is True


def test_cost_stays_small() -> None:
    collect_signals()
    signals = min((collect_signals() for _ in range(5)), key=lambda s: s.duration_s)
    assert signals.scanned > 1000
    # A bound against a pathological walk, not a timing: the cost figures are in benchmarks/.
    assert signals.duration_s < 0.5, signals.duration_s


def _interpreters() -> list[str]:
    found = []
    for minor in ("3.10", "3.12", "3.13"):
        matches = sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python"))
        if matches:
            found.append(matches[-1])
    return found or [sys.executable]


SCRIPT = """
import functools, json, sys
sys.path.insert(0, {root!r})
from memtui.probe.signals import collect_signals, LeakSignals
ITEMS = [object() for _ in range(1500)]
@functools.lru_cache(maxsize=None)
def f(x): return x
f(1)
s = collect_signals()
assert LeakSignals.from_dict(json.loads(json.dumps(s.to_dict()))) == s
print(json.dumps([c.name for c in s.containers] + [c.name for c in s.lru_caches] + list(s.errors)))
"""


@pytest.mark.parametrize("python", _interpreters())
def test_runs_on_other_interpreters(python: str) -> None:
    result = subprocess.run(
        [python, "-I", "-S", "-c", SCRIPT.format(root=str(ROOT))],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    names = json.loads(result.stdout)
    assert "__main__.ITEMS" in names and "__main__.f" in names


def test_a_failing_section_is_reported_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    import memtui.probe.signals as signals_module

    def boom(*_: object) -> None:
        raise RuntimeError("surprise")

    monkeypatch.setattr(signals_module, "_threads", boom)
    monkeypatch.setattr(signals_module, "_walk_modules", boom)
    signals = collect_signals()
    assert signals.errors == ("walk: RuntimeError", "threads: RuntimeError")
    assert signals.containers == () and signals.threads == 0
    assert signals.modules == len(sys.modules)
