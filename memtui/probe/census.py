"""Provides the object census: live gc-tracked objects counted by type, in GIL-friendly chunks."""

from __future__ import annotations

import gc
import heapq
import os
import threading
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Iterable, Iterator, Sized
from functools import partial
from itertools import chain, compress, count, repeat
from operator import is_, not_
from typing import Any, NamedTuple, cast


class ContainerInfo(NamedTuple):
    """One of the largest containers seen by the census (lists, dicts, sets, deques)."""

    type_name: str
    length: int
    object_id: int


class CensusResult(NamedTuple):
    """Counts of live objects by type name ('module.Qualname', builtins bare: 'dict')."""

    counts: dict[str, int]
    total_objects: int
    duration_s: float
    """Wall time of the whole census."""
    max_hold_s: float
    """Longest stretch the census ran without releasing the GIL (the get_objects call
    included). Wall time between its own releases, so an upper bound: a switch forced by
    the interpreter or the OS inside a stretch counts as held."""
    tracked: dict[type, int] = {}  # noqa: RUF012  (shared, never mutated)
    """Counts of exactly the types passed in ``track`` (subclasses not included)."""
    largest_containers: tuple[ContainerInfo, ...] = ()
    get_objects_s: float = 0.0
    """Time of the one gc.get_objects() call (a single GIL hold that cannot be split)."""
    chunks: int = 0


CONTAINER_TYPES: frozenset[type] = frozenset(
    {list, dict, set, deque, defaultdict, OrderedDict, Counter}
)
"""Exact types whose len() is C code and cheap; user subclasses are skipped (their __len__
could run arbitrary code). No tuple or frozenset: C code that builds one needs to be its only
holder (and neither can grow)."""
CONTAINER_TYPE_IDS: frozenset[int] = frozenset(map(id, CONTAINER_TYPES))
MAX_CONTAINER_SCAN: int = 200_000
"""Beyond this many builtin containers the census leaves out the longest ones: their passes
hold the GIL about 0.1 s per 400k containers, and the heap summaries name containers anyway."""


_census_lock = threading.Lock()
"""One census at a time: a second would see (and count) the first one's object list."""


def _new_lock_in_child() -> None:
    """A fork during a census (another thread's) must not leave the child's lock held."""
    global _census_lock
    _census_lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_lock_in_child)


def type_name(t: type) -> str:
    """'module.Qualname' for a type, bare for builtins; never raises on odd types."""
    try:
        qualname = t.__qualname__
        module = t.__module__
    except Exception:  # a metaclass may make these properties that raise
        qualname = getattr(t, "__name__", None) or "?"
        module = None
    if not isinstance(qualname, str):
        qualname = str(qualname)
    if not isinstance(module, str) or module == "builtins":
        return qualname
    return f"{module}.{qualname}"


def _yield_gil() -> None:
    """Release the GIL so waiting threads run.

    time.sleep(0) drops the GIL around a syscall; a thread that has been waiting for the
    GIL gets it then. Measured (tests/test_probe_census.py, benchmarks/bench_collectors.py):
    a spinning thread's longest stall during a census stays within max_hold_s.
    """
    time.sleep(0)


def take_census(
    track: Iterable[type] = (),
    chunk_size: int = 100_000,
    largest: int = 10,
) -> CensusResult:
    """Count live gc-tracked objects by type, yielding the GIL between chunks.

    The object list never outlives one C-level pass (see _all_types): the types of all
    objects are taken in one GIL hold (gc.get_objects() and a map(type), 15-45 ms per million
    objects), then counted at C speed in chunks of ``chunk_size`` with a GIL release after
    each; the longest containers take a second such pass. Nothing made here before those
    passes is a gc-tracked container, so the census does not count itself, and no object is
    kept alive. Concurrent calls run one after another.
    """
    with _census_lock:
        return _take_census(track, chunk_size, largest)


def _all_types() -> list[type]:
    """The type of every gc-tracked object, in one C-level pass that keeps no object.

    Why like this: holding ``gc.get_objects()``'s list while other threads run gives every
    object a second reference, and CPython code that relies on being the only holder breaks:
    ``tuple(genexpr)`` resizes the tuple it builds and raises SystemError in the program's
    thread (3.11-3.13, benchmarks/soak/census_tuple_repro.py). Here the list lives only inside
    one ``list(...)`` call that runs no Python code, so no other thread runs while it exists.
    """
    return list(map(type, chain.from_iterable(_copies(1))))


def _copies(n: int) -> Iterator[list[Any]]:
    """``gc.get_objects()``'s one list, ``n`` times (C-level, lazily: nothing runs until the
    consumer asks)."""
    return chain.from_iterable(map(partial(repeat, times=n), map(gc.get_objects, [None])))


def _containers(lists: Iterator[list[Any]]) -> Iterator[Sized]:
    """The exact builtin containers (C-level ``len()``) of the next list from ``lists``.

    ``compress`` needs the objects and their selectors: two copies of the one list, walked in
    step. The selectors are composed at the level of the list stream (a ``map`` of ``map``
    partials), so every call made per object or per list is C code: no Python frame runs,
    so no other thread runs while the list exists.
    """
    types_of = map(partial(map, type), lists)
    selectors = map(partial(map, CONTAINER_TYPES.__contains__), types_of)
    return cast("Iterator[Sized]", chain.from_iterable(map(compress, lists, selectors)))


def objects_but(excluded: frozenset[type]) -> list[Any]:
    """Every gc-tracked object whose exact type is not in ``excluded``, taken in one C-level
    call like the census passes (the list of all of them never exists while Python code runs).

    For walks that must hold what they take while the program's threads run (the in-place
    heap dump): without tuples, whose builder must be their only holder (see _all_types);
    tuples the heap refers to are reached through their referrers.
    """
    lists = _copies(2)
    drop = map(partial(map, excluded.__contains__), map(partial(map, type), lists))
    selectors = map(partial(map, not_), drop)
    kept = chain.from_iterable(map(compress, lists, selectors))
    # As in _longest_containers: run the selectors out in the same call (no cycle keeps the
    # list alive).
    drain = filter(None, map(deque, map(chain.from_iterable, [selectors]), [0]))
    objects = list(chain(kept, drain))
    # list() made its result before gc.get_objects() ran, so the result holds itself: a cycle
    # that would keep every object alive until a collection. Found by identity, not ==.
    for i in compress(count(), map(is_, objects, repeat(objects))):
        del objects[i]
        break
    return objects


def _longest_containers(largest: int) -> tuple[list[tuple[int, int, type]], float]:
    """(length, id, type) of the ``largest`` longest builtin containers, and the longest GIL
    hold it took.

    The same rule as _all_types: every pass is one ``list(...)`` call over C-level iterators
    (``map``, ``compress``, ``chain``), so no Python code runs and no other thread runs while
    the object list exists; the two copies of one list that ``compress`` needs (the objects
    and their selectors) come from the same ``gc.get_objects()`` call. First the lengths of
    all containers (ints only), then (length, id, type) of those at least as long as the N-th
    longest.
    """
    now = time.perf_counter
    started = now()
    lengths = list(map(len, _containers(_copies(2))))
    hold = now() - started
    if not lengths:
        return [], hold
    floor = heapq.nlargest(largest, lengths)[-1]
    ties = sum(map(floor.__eq__, lengths))
    del lengths
    # With many ties at the N-th length (empty lists, say) only the longer ones are taken.
    keep = floor.__le__ if ties <= 4 * largest else floor.__lt__
    _yield_gil()
    started = now()
    lists = _copies(4)
    selectors = map(keep, map(len, _containers(lists)))
    # compress stops at the end of its data and leaves its selectors one step short; the
    # object list holds every iterator made before it, so an unfinished one would keep the
    # list alive in a cycle. deque(..., maxlen=0) runs them out in the same C-level call
    # (an empty deque is falsy: filter yields nothing of it).
    drain = filter(None, map(deque, [selectors], [0]))
    long_ones: list[Sized] = list(chain(compress(_containers(lists), selectors), drain))
    del lists, selectors, drain
    # A handful of builtin lists, dicts, sets and deques (no tuple, whose builder needs to
    # be its only holder) are held for these few lines.
    rows = [(len(c), id(c), type(c)) for c in long_ones]
    del long_ones
    hold = max(hold, now() - started)
    return heapq.nlargest(largest, rows, key=lambda row: (row[0], -row[1])), hold


def _take_census(track: Iterable[type], chunk_size: int, largest: int) -> CensusResult:
    now = time.perf_counter
    chunk_size = max(1, int(chunk_size))
    started = now()
    types = _all_types()
    get_objects_s = now() - started
    total = len(types)
    max_hold = get_objects_s
    counter: Counter[type] = Counter()
    chunks = 0
    top: list[tuple[int, int, type]] = []
    _yield_gil()
    for begin in range(0, total, chunk_size):
        # Types only from here on: holding them is safe while other threads run.
        hold_start = now()
        counter.update(types[begin : begin + chunk_size])
        chunks += 1
        max_hold = max(max_hold, now() - hold_start)
        _yield_gil()
    del types
    containers = sum(counter.get(t, 0) for t in CONTAINER_TYPES)
    if largest > 0 and containers <= MAX_CONTAINER_SCAN:
        _yield_gil()
        top, hold = _longest_containers(largest)
        max_hold = max(max_hold, hold)
    tail_start = now()
    tracked_types = tuple(track)
    tracked = {t: counter.get(t, 0) for t in tracked_types}
    counts: dict[str, int] = {}
    for t, n in counter.items():
        name = type_name(t)
        # Distinct classes may share a name (local classes made twice): add them up.
        counts[name] = counts.get(name, 0) + n
    biggest = tuple(
        ContainerInfo(type_name=type_name(t), length=length, object_id=oid)
        for length, oid, t in top
    )
    finished = now()
    return CensusResult(
        counts=counts,
        total_objects=total,
        duration_s=finished - started,
        max_hold_s=max(max_hold, finished - tail_start),
        tracked=tracked,
        largest_containers=biggest,
        get_objects_s=get_objects_s,
        chunks=chunks,
    )
