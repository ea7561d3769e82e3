"""Provides memtui's pytest plugin: fail a test whose every repeated call retains memory.

``pytest --memtui-no-leak`` checks every test, ``@pytest.mark.memtui_no_leak(...)`` one. A
checked test is called ``warmup`` times (default 2), then ``calls`` more times (default 3);
after each call the garbage collector runs and the memory still allocated (tracemalloc: bytes
and blocks) is measured. The test fails when *every* measured call retained more than
``max_bytes_per_call`` bytes (default 1024) or more than ``max_objects_per_call`` objects
(default 0: memory blocks, so dicts and tuples the gc does not track count too).

Why this shape: what fills once (an ``lru_cache`` on its first call, ``re``'s cache, imports,
lazily created singletons, interned strings) fills during the warm-up and never again; a
leak retains on every call. Allocations made by pytest, pluggy, logging and warnings (captured
records) are not counted. The failure names what grew: the container by path (a bounded walk
from module globals and class attributes, `memtui.engine.culprits.container_paths`), the type
that grew and the allocating line. The test is called with the same fixture values each time; a test
that cannot be repeated is not checked (a warning says so). Coroutine tests are not checked.

Loaded in every pytest run once memtui is installed: it does nothing unless enabled.
"""

from __future__ import annotations

import gc
import inspect
import os
import sys
import tracemalloc
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from memtui.probe.raw_domain import start_tracemalloc

MARKER = "memtui_no_leak"
DEFAULT_BYTES = 1024
DEFAULT_OBJECTS = 0
DEFAULT_WARMUP = 2
DEFAULT_CALLS = 3
TRACE_FRAMES = 16
_IGNORED_DIRS = tuple(
    os.path.dirname(str(m.__file__)) + os.sep
    for m in (pytest, sys.modules.get("_pytest"), sys.modules.get("pluggy"))
    if m is not None and getattr(m, "__file__", None)
)
_IGNORED_FILES = tuple(
    f
    for f in (
        __file__,
        tracemalloc.__file__,
        warnings.__file__,
        getattr(sys.modules.get("logging"), "__file__", None),
    )
    if f
)


@dataclass(frozen=True, slots=True)
class LeakLimits:
    """What one checked test may retain per call, and how it is called."""

    max_bytes_per_call: int = DEFAULT_BYTES
    max_objects_per_call: int = DEFAULT_OBJECTS
    warmup: int = DEFAULT_WARMUP
    calls: int = DEFAULT_CALLS


class NotRepeatable(Exception):
    """The test raised when called again with the same fixtures: it cannot be checked."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("memtui", "memory leaks per test (memtui)")
    group.addoption(
        "--memtui-no-leak",
        action="store_true",
        default=False,
        help="fail every test whose each repeated call retains memory (see memtui_no_leak)",
    )
    group.addoption(
        "--memtui-max-bytes",
        type=int,
        default=DEFAULT_BYTES,
        help=f"bytes a call may retain (default {DEFAULT_BYTES})",
    )
    group.addoption(
        "--memtui-max-objects",
        type=int,
        default=DEFAULT_OBJECTS,
        help=f"objects (memory blocks) a call may retain (default {DEFAULT_OBJECTS})",
    )
    group.addoption(
        "--memtui-calls",
        type=int,
        default=DEFAULT_CALLS,
        help=f"measured calls after the warm-up (default {DEFAULT_CALLS})",
    )
    group.addoption(
        "--memtui-warmup",
        type=int,
        default=DEFAULT_WARMUP,
        help=f"warm-up calls, not measured (default {DEFAULT_WARMUP})",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}(max_bytes_per_call={DEFAULT_BYTES}, max_objects_per_call={DEFAULT_OBJECTS}, "
        f"warmup={DEFAULT_WARMUP}, calls={DEFAULT_CALLS}): fail when every repeated call of "
        "this test retains memory (memtui)",
    )


def _limits(item: pytest.Function) -> LeakLimits | None:
    marker = item.get_closest_marker(MARKER)
    opt = item.config.getoption
    if marker is None and not opt("--memtui-no-leak"):
        return None
    base = LeakLimits(
        opt("--memtui-max-bytes"),
        opt("--memtui-max-objects"),
        opt("--memtui-warmup"),
        opt("--memtui-calls"),
    )
    if marker is None:
        return base
    fields = ("max_bytes_per_call", "max_objects_per_call", "warmup", "calls")
    kwargs = dict(zip(fields, marker.args, strict=False))
    kwargs.update(marker.kwargs)
    unknown = set(kwargs) - set(fields)
    if unknown:
        raise pytest.UsageError(f"{MARKER}: unknown argument(s) {', '.join(sorted(unknown))}")
    values = {f: int(kwargs.get(f, getattr(base, f))) for f in fields}
    if values["calls"] < 2 or values["warmup"] < 0 or min(values.values()) < 0:
        raise pytest.UsageError(f"{MARKER}: needs calls >= 2 and non-negative limits")
    return LeakLimits(**values)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    """Call a checked test repeatedly and measure; other tests are left to pytest."""
    limits = _limits(pyfuncitem)
    if limits is None:
        return None
    func = pyfuncitem.obj
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return None
    argnames = pyfuncitem._fixtureinfo.argnames
    kwargs = {name: pyfuncitem.funcargs[name] for name in argnames}

    def call() -> None:
        func(**kwargs)

    call()  # the first call behaves exactly as without the plugin (its failure is the test's)
    try:
        failure = check_no_leak(call, limits, pyfuncitem.name)
    except NotRepeatable as exc:
        warnings.warn(
            pytest.PytestWarning(f"{MARKER}: {pyfuncitem.nodeid} not checked: {exc}"),
            stacklevel=1,
        )
        return True
    if failure:
        pytest.fail(failure, pytrace=False)
    return True


def _ignored(frame: tracemalloc.Frame) -> bool:
    return frame.filename.startswith(_IGNORED_DIRS) or frame.filename in _IGNORED_FILES


_STDLIB = os.path.dirname(os.__file__) + os.sep


def _retained(snapshot: tracemalloc.Snapshot) -> tuple[int, int]:
    """Bytes and objects still allocated, not counting what pytest and we allocated.

    Objects are memory blocks allocated directly by code outside the standard library: the
    standard library keeps bounded caches that fill over tens of calls (opening a file retains
    a block per call for the first ~100 calls), which only the bytes limit then sees."""
    size = count = 0
    for trace in snapshot.traces:
        top = trace.traceback[-1]  # tracemalloc lists frames oldest first
        if _ignored(top):
            continue
        size += trace.size
        if not top.filename.startswith(_STDLIB):
            count += 1
    return size, count


def _measure() -> tuple[tracemalloc.Snapshot, int, int]:
    gc.collect()
    snap = tracemalloc.take_snapshot()
    size, count = _retained(snap)
    return snap, size, count


def _log_captures() -> list[tuple[Any, int]]:
    """pytest's log-capture handlers (report capture, caplog) and how many records they hold:
    what a repeated call logs there is pytest's, not the test's, and is dropped."""
    import logging

    handlers: list[Any] = list(logging.getLogger().handlers)
    return [
        (h, len(h.records))
        for h in handlers
        if isinstance(getattr(h, "records", None), list)
        and type(h).__module__.startswith("_pytest")
    ]


def _repeat(call: Callable[[], None], n: int) -> None:
    for _ in range(n):
        captures = _log_captures()
        try:
            call()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            raise NotRepeatable(
                f"it fails when called again with the same fixtures ({type(exc).__name__}: {exc})"
            ) from None
        finally:
            for handler, kept in captures:
                del handler.records[kept:]


def check_no_leak(call: Callable[[], None], limits: LeakLimits, name: str = "test") -> str:
    """Run ``call`` (already called once) through warm-up and measured calls: "" when it does
    not leak, else the failure message naming what grew."""
    started = not tracemalloc.is_tracing()
    # Objects older than the test go to the permanent generation: each gc.collect() below
    # then scans only what the test made (about 30 ms less per collection in a big suite).
    froze = gc.get_freeze_count() == 0
    if froze:
        gc.freeze()  # no full collection first: older garbage frozen too is simply not seen
    if started:
        start_tracemalloc(TRACE_FRAMES)
    try:
        _repeat(call, max(limits.warmup - 1, 0))
        first, size0, count0 = _measure()
        sizes: list[int] = []
        counts: list[int] = []
        last = first
        prev_size, prev_count = size0, count0
        for _ in range(limits.calls):
            _repeat(call, 1)
            last, size, count = _measure()
            sizes.append(size - prev_size)
            counts.append(count - prev_count)
            prev_size, prev_count = size, count
        leak_bytes = min(sizes) > limits.max_bytes_per_call
        leak_objects = min(counts) > limits.max_objects_per_call
        if not (leak_bytes or leak_objects):
            return ""
        if started:
            tracemalloc.stop()  # the walk below need not be traced (it would be 3x slower)
            started = False
        return _explain(call, limits, name, first, last, sizes, counts)
    finally:
        if started:
            tracemalloc.stop()
        if froze:
            gc.unfreeze()


def _allocating_lines(first: tracemalloc.Snapshot, last: tracemalloc.Snapshot) -> list[str]:
    """Lines whose retained memory grew, named by the first frame outside pytest/stdlib."""
    stats = last.compare_to(first, "traceback")
    lines = []
    for stat in stats:
        if stat.size_diff <= 0 or _ignored(stat.traceback[-1]):
            continue
        frame = _user_frame(stat.traceback)
        where = f"{frame.filename}:{frame.lineno}"
        text = _source_line(frame.filename, frame.lineno)
        lines.append(
            f"{where}{f' ({text})' if text else ''}: +{stat.size_diff:,} B in "
            f"{stat.count_diff:+,} blocks"
        )
        if len(lines) >= 3:
            break
    return lines


def _user_frame(tb: tracemalloc.Traceback) -> tracemalloc.Frame:
    """The innermost frame in the user's code (not the standard library or site-packages)."""
    stdlib = os.path.dirname(os.__file__)
    for frame in reversed(tb):  # tracemalloc lists frames oldest first
        f = frame.filename
        if not (f.startswith(stdlib) or "site-packages" in f or f.startswith("<")):
            return frame
    return tb[-1]


def _source_line(filename: str, lineno: int) -> str:
    import linecache

    return linecache.getline(filename, lineno).strip()[:80]


def _explain(
    call: Callable[[], None],
    limits: LeakLimits,
    name: str,
    first: tracemalloc.Snapshot,
    last: tracemalloc.Snapshot,
    sizes: list[int],
    counts: list[int],
) -> str:
    """The failure message: per-call figures, the grown container, the type, the line."""
    from memtui.engine.culprits.container_paths import grown, type_counts, walk_containers

    head = (
        f"memtui: {name} leaks: each of {limits.calls} calls (after {limits.warmup} warm-up) "
        f"retained memory: {', '.join(f'{s:+,} B' for s in sizes)}; "
        f"{', '.join(f'{c:+,}' for c in counts)} objects "
        f"(limits {limits.max_bytes_per_call:,} B, {limits.max_objects_per_call:,} objects per "
        "call)"
    )
    lines = [head]
    # Name the container: walk, call a few more times, walk again.
    extra = limits.calls
    before = walk_containers()
    types0 = type_counts()  # after the walk: the walk's own records count in both
    try:
        _repeat(call, extra)
    except NotRepeatable:
        extra = 0
    gc.collect()
    types1 = type_counts()
    after = walk_containers()
    growth = grown(before, after, max(extra, 1)) if extra else []
    del before, after
    if growth:
        lines.append("  grew: " + growth[0].describe(extra))
        lines.extend("  also: " + g.describe(extra) for g in growth[1:3])
    else:
        lines.append(
            "  grew: no container reachable from module globals or class attributes grew "
            "(held by a closure, a C extension, or reference cycles?)"
        )
    more = [(t, types1[t] - types0.get(t, 0)) for t in types1]
    more = sorted((x for x in more if extra and x[1] >= extra), key=lambda x: -x[1])[:4]
    if more:
        lines.append("  types: " + ", ".join(f"{t} {n:+,}" for t, n in more))
    for where in _allocating_lines(first, last):
        lines.append(f"  allocated at: {where}")
    return "\n".join(lines)
