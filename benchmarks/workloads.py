"""Provides the fixed-work programs that bench_overhead.py profiles (alloc, mixed, leak).

They mirror the workloads behind /work/shared/MEASUREMENTS.md, so our ratios can stand next
to the reference figures: ``alloc`` is dominated by the garbage collector, ``mixed`` never
triggers it, ``leak`` grows a module-level list by one record per iteration.

Each runs a fixed number of iterations (not a fixed time: a profiler must show up as a longer
run, not as less work). Run alone, it prints one JSON line with the seconds of the work only:

    python benchmarks/workloads.py alloc 300
"""

from __future__ import annotations

import json
import sys
import time
from collections import deque
from collections.abc import Callable
from typing import Any

LEAKED: list[dict[str, Any]] = []
"""Where ``leak`` puts its records: a module-level list, as in a real slow leak."""


class Item:
    """A small class instance, the kind of node application data trees hold."""

    def __init__(self, key: int, label: str) -> None:
        self.key = key
        self.label = label
        self.extra: list[int] = [key]


def _tree(depth: int, width: int, seed: int) -> dict[str, Any]:
    """One JSON-like tree: dicts, lists, tuples and instances, ~width**depth leaves."""
    if depth == 0:
        return {
            "id": seed,
            "name": "leaf",
            "pos": (seed, seed + 1),
            "tags": ["a", "b", seed],
            "item": Item(seed, "x"),
        }
    return {
        "kids": [_tree(depth - 1, width, seed * width + i) for i in range(width)],
        "meta": {"depth": depth, "span": (seed, width), "path": [depth, width]},
    }


def alloc(iterations: int) -> None:
    """Build and drop trees of ~3k containers, keeping the last 60 alive.

    The kept trees survive young collections, so the collector keeps re-walking them and
    promoting them; most of the time goes to the GC (about 80% on CPython 3.11).
    """
    keep: deque[dict[str, Any]] = deque(maxlen=60)
    for i in range(iterations):
        keep.append(_tree(4, 5, i))


def alloc0(iterations: int) -> None:
    """The same code on small trees (~30 containers, the last 60 kept): allocation dominates,
    the collector takes about a quarter of the time."""
    keep: deque[dict[str, Any]] = deque(maxlen=60)
    for i in range(iterations):
        keep.append(_tree(2, 5, i))


_WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta")


def mixed(iterations: int) -> None:
    """String formatting, splitting, joining and dict lookups; allocates only short-lived
    strings and lists, freed at once, so the collector never runs."""
    table = {w: n for n, w in enumerate(_WORDS)}
    total = 0
    for i in range(iterations):
        line = f"{_WORDS[i % 8]} {i} {i * 7 % 13} {_WORDS[(i + 3) % 8]}"
        parts = line.split()
        joined = "-".join(parts)
        total += table[parts[0]] + table.get(parts[3], 0) + len(joined)
        total += len(f"{i:08d}:{joined.upper()}")
    if total < 0:  # keeps the loop's work observable
        print(total)


def leak(iterations: int) -> None:
    """Dict work per iteration plus one record appended to a module-level list (a slow leak).

    Records are ``{"i": int, "tag": str, "pt": (int, int)}``: CPython may untrack such dicts,
    so a gc census can miss them; tracemalloc sees every one.
    """
    scratch: dict[str, int] = {}
    append = LEAKED.append
    for i in range(iterations):
        key = _WORDS[i % 8]
        scratch[key] = scratch.get(key, 0) + i
        if i % 64 == 0:
            scratch.clear()
        append({"i": i, "tag": key, "pt": (i, i + 1)})


WORKLOADS: dict[str, Callable[[int], None]] = {
    "alloc": alloc,
    "alloc0": alloc0,
    "mixed": mixed,
    "leak": leak,
}


def timed(name: str, iterations: int) -> dict[str, float]:
    """Wall and CPU seconds that ``iterations`` of workload ``name`` take, nothing else.

    CPU is process_time(): every thread of this process (a profiler's sampler included), but
    not time lost to other programs, which on a shared machine swamps the effects measured.
    """
    work = WORKLOADS[name]
    cpu = time.process_time()
    started = time.perf_counter()
    work(iterations)
    wall = time.perf_counter() - started
    return {"seconds": wall, "cpu_seconds": time.process_time() - cpu}


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in WORKLOADS:
        print(f"usage: workloads.py {{{','.join(WORKLOADS)}}} ITERATIONS", file=sys.stderr)
        return 2
    iterations = int(argv[1])
    print(json.dumps({"workload": argv[0], "iterations": iterations, **timed(argv[0], iterations)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
