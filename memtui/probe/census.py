"""Provides the object census: live gc-tracked objects counted by type, in GIL-friendly chunks."""

from __future__ import annotations

import gc
import heapq
import threading
import time
from collections import Counter, OrderedDict, defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import compress, islice


@dataclass(frozen=True, slots=True)
class ContainerInfo:
    """One of the largest containers seen by the census (lists, dicts, sets, deques)."""

    type_name: str
    length: int
    object_id: int


@dataclass(frozen=True, slots=True)
class CensusResult:
    """Counts of live objects by type name ('module.Qualname', builtins bare: 'dict')."""

    counts: dict[str, int]
    total_objects: int
    duration_s: float
    """Wall time of the whole census."""
    max_hold_s: float
    """Longest stretch the census ran without releasing the GIL (the get_objects call
    included). Wall time between its own releases, so an upper bound: a switch forced by
    the interpreter or the OS inside a stretch counts as held."""
    tracked: dict[type, int] = field(default_factory=dict)
    """Counts of exactly the types passed in ``track`` (subclasses not included)."""
    largest_containers: tuple[ContainerInfo, ...] = ()
    get_objects_s: float = 0.0
    """Time of the one gc.get_objects() call (a single GIL hold that cannot be split)."""
    chunks: int = 0


CONTAINER_TYPES: frozenset[type] = frozenset(
    {list, dict, set, frozenset, deque, defaultdict, OrderedDict, Counter}
)
"""Exact types whose len() is C code and cheap; user subclasses are skipped (their __len__
could run arbitrary code)."""


_census_lock = threading.Lock()
"""One census at a time: a second would see (and count) the first one's object list."""


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


def _offer(
    top: list[tuple[int, int, type]], largest: int, lengths: list[int], found: list[object]
) -> None:
    """Merge one chunk's containers into the ``top`` heap, doing Python work for few of them.

    Selection runs at C speed (compress over int comparisons): only containers longer than
    the current N-th longest reach the Python loop, and while the heap is still filling, the
    chunk's own N-th longest length sets that floor (ties are taken only as needed).
    """
    if not lengths:
        return
    floor = top[0][0] if len(top) >= largest else -1
    if max(lengths) <= floor:
        return
    # Select objects only (no per-item tuples) and take len() again for the few selected.
    if len(top) < largest and len(lengths) > largest:
        kth = sorted(lengths)[-largest]
        above = list(compress(found, map(kth.__lt__, lengths)))
        ties = compress(found, map(kth.__eq__, lengths))
        candidates: Iterable[object] = above + list(islice(ties, largest - len(above)))
    else:
        candidates = compress(found, map(floor.__lt__, lengths))
    for obj in candidates:
        if type(obj) not in CONTAINER_TYPES:  # its __class__ was reassigned meanwhile
            continue
        length = len(obj)  # type: ignore[arg-type]
        if len(top) < largest:
            heapq.heappush(top, (length, id(obj), type(obj)))
        elif length > top[0][0]:
            heapq.heapreplace(top, (length, id(obj), type(obj)))


def take_census(
    track: Iterable[type] = (),
    chunk_size: int = 100_000,
    largest: int = 10,
) -> CensusResult:
    """Count live gc-tracked objects by type, yielding the GIL between chunks.

    The one gc.get_objects() call is the only GIL hold that cannot be split (10-30 ms per
    million objects); counting then runs at C speed (Counter over map(type, chunk)) in chunks of
    ``chunk_size`` with a GIL release after each. Nothing made here before that call is a
    gc-tracked container, so the census does not count itself; the object list is dropped
    before returning so no object is kept alive. Concurrent calls run one after another.
    """
    with _census_lock:
        return _take_census(track, chunk_size, largest)


def _take_census(track: Iterable[type], chunk_size: int, largest: int) -> CensusResult:
    now = time.perf_counter
    chunk_size = max(1, int(chunk_size))
    started = now()
    objects = gc.get_objects()
    get_objects_s = now() - started
    counter: Counter[type] = Counter()
    # Heap of (length, object_id, type) for the ``largest`` longest containers: keeps
    # ids and types only, never the containers themselves.
    top: list[tuple[int, int, type]] = []
    is_container = CONTAINER_TYPES.__contains__
    chunks = 0
    total = len(objects)
    max_hold = now() - started
    # Two iterators walk the list in step (one for types, one for the objects) rather
    # than slicing it: a slice would incref and later decref every object, two extra
    # passes over a million objects' memory.
    types_of = map(type, objects)
    walker = iter(objects)
    try:
        _yield_gil()
        for begin in range(0, total, chunk_size):
            hold_start = now()
            if largest > 0:
                types = list(islice(types_of, chunk_size))
                counter.update(types)
                lengths = list(
                    map(len, compress(islice(walker, chunk_size), map(is_container, types)))
                )
                if lengths and max(lengths) > (top[0][0] if len(top) >= largest else -1):
                    # Rare once the heap is full: only then fetch the containers themselves.
                    chunk = objects[begin : begin + chunk_size]
                    found = list(compress(chunk, map(is_container, types)))
                    del chunk
                    _offer(top, largest, lengths, found)
                    del found
                del types, lengths
            else:
                counter.update(islice(types_of, chunk_size))
            chunks += 1
            held = now() - hold_start
            if held > max_hold:
                max_hold = held
            _yield_gil()
    finally:
        # The iterators hold the list too: drop all three so no object outlives the census.
        del objects, types_of, walker
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
        for length, oid, t in sorted(top, key=lambda item: (-item[0], item[1]))
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
