"""Provides one command measuring how much memtui slows the program it profiles, as ratios.

Run: /work/venv/bin/python benchmarks/bench_overhead.py [--quick]

Every figure is a ratio against a bare run measured in the same invocation: each mode runs
the workload in a fresh interpreter, paired with a bare run right before or after it (the
order alternates between rounds), and the table shows the median of the per-pair ratios. A
noisy 2-core machine drifts by more than the effects measured here, so absolute times are
only shown for scale.

Sections:
  1. Slowdown of the alloc / mixed / leak workloads (benchmarks/workloads.py) under memtui
     (default; snapshot_interval=1; enable_tracemalloc=False) and under tracemalloc alone.
  2. The type census at 1M and 5M live objects against gc.get_objects() and
     Counter(map(type, ...)), and the longest stall another thread sees while it runs.
Reference figures from /work/shared/MEASUREMENTS.md are printed beside ours, labelled as such.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib.util
import json
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import workloads  # noqa: E402  (a sibling module, found through the path set above)

WORKLOAD_NAMES: tuple[str, ...] = ("alloc", "mixed", "leak")

# Iterations per workload. Traced runs are 3x-20x slower and memtui's stop() aggregates every
# trace, so they use short runs (0.1-0.3 s bare); the untraced modes use longer ones (about
# 1 s bare, CPU), so that snapshot_interval=1 snapshots during the work at least once.
SHORT_ITERS: dict[str, int] = {"alloc": 100, "mixed": 100_000, "leak": 100_000}
LONG_ITERS: dict[str, int] = {"alloc": 450, "mixed": 1_500_000, "leak": 1_200_000}
CHILD_TIMEOUT_S = 300.0

REFERENCE: dict[str, tuple[float, float, float]] = {
    "tracemalloc, 1 frame": (2.50, 12.8, 7.53),
    "tracemalloc 1 fr. + statistics every 1 s": (3.98, 12.7, 15.5),
    "thread: type census every 1 s": (1.04, 1.00, 1.00),
    "gc.callbacks hook recording each coll.": (1.16, 1.02, 1.01),
    "memray (default)": (1.20, 2.23, 1.40),
    "mprof (RSS from outside, 10 Hz)": (1.07, 1.10, 1.06),
}
"""Slowdowns (alloc, mixed, leak) from /work/shared/MEASUREMENTS.md, measured earlier."""

CENSUS_REFERENCE_MS: dict[str, tuple[float, float]] = {
    "gc.get_objects()": (28, 138),
    "Counter(map(type, get_objects()))": (79, 388),
    "objgraph.typestats()": (158, 780),
    "guppy3 hpy().heap()": (454, 2400),
    "pympler summarize": (3800, 20000),
}
"""Census times at ~860k / 4.3M objects from MEASUREMENTS.md, measured earlier."""


@dataclass(frozen=True)
class Mode:
    """One way of running a workload; ``kwargs`` go to MemoryProfiler when ``kind`` is memtui."""

    name: str
    label: str
    kind: str
    """'bare', 'import' (memtui imported, not started), 'memtui' or 'tracemalloc'."""
    long_run: bool
    kwargs: dict[str, Any] = field(default_factory=dict)
    goal: float | None = None


MODES: tuple[Mode, ...] = (
    Mode("memtui", "memtui default (tracemalloc, 60 s)", "memtui", False),
    Mode("memtui_snap1", "memtui snapshot_interval=1", "memtui", False, {"snapshot_interval": 1}),
    Mode("tracemalloc", "tracemalloc.start(1) alone", "tracemalloc", False),
    Mode("import", "import memtui only (not started)", "import", True),
    Mode(
        "notrace",
        "memtui enable_tracemalloc=False",
        "memtui",
        True,
        {"enable_tracemalloc": False},
        goal=1.05,
    ),
    Mode(
        "notrace_snap1",
        "  ... and snapshot_interval=1",
        "memtui",
        True,
        {"enable_tracemalloc": False, "snapshot_interval": 1},
        goal=1.05,
    ),
)
MODE_BY_NAME: dict[str, Mode] = {m.name: m for m in MODES}
BARE = Mode("bare", "bare", "bare", False)
MODE_BY_NAME["bare"] = BARE


# -- child side: one workload run in a fresh interpreter -----------------------------------


async def _child_run(mode: Mode, workload: str, iterations: int) -> dict[str, Any]:
    """Run the work inside a coroutine for every mode, so only the profiler differs."""
    result: dict[str, Any] = {}
    if mode.kind in ("bare", "import"):
        if mode.kind == "import":
            import memtui.engine.profiler  # noqa: F401  (the import alone is what is measured)
        result.update(workloads.timed(workload, iterations))
    elif mode.kind == "tracemalloc":
        import tracemalloc

        tracemalloc.start(1)
        result.update(workloads.timed(workload, iterations))
        tracemalloc.stop()
    else:
        from memtui import MemoryProfiler

        profiler = MemoryProfiler(**mode.kwargs)
        started = time.perf_counter()
        await profiler.start()
        result["start_s"] = time.perf_counter() - started
        result.update(workloads.timed(workload, iterations))
        started = time.perf_counter()
        await profiler.stop()
        result["stop_s"] = time.perf_counter() - started
        own = profiler.generate_report()["profiler"]
        result["own_cpu_s"] = own["own_cpu_seconds"]
        result["effective_interval_s"] = own["effective_snapshot_interval_seconds"]
        result["snapshots"] = own["snapshots_taken"]
        result["errors"] = own["errors"]
    return result


def child_main(mode_name: str, workload: str, iterations: int) -> int:
    result = asyncio.run(_child_run(MODE_BY_NAME[mode_name], workload, iterations))
    print(json.dumps(result))
    return 0


def run_child(mode: Mode, workload: str, iterations: int) -> dict[str, Any]:
    """One fresh interpreter running one workload in ``mode``; its JSON result."""
    cmd = [sys.executable, str(Path(__file__).resolve())]
    cmd += ["--child", mode.name, workload, str(iterations)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"child {mode.name} {workload} failed:\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


# -- parent side: paired runs and the table ------------------------------------------------


METRICS: tuple[tuple[str, str], ...] = (
    ("seconds", "wall-clock time"),
    ("cpu_seconds", "CPU time of the profiled process (process_time, all its threads)"),
)


@dataclass
class Cell:
    """Paired runs of one mode on one workload: per-pair ratios for each metric."""

    ratios: dict[str, list[float]] = field(default_factory=lambda: {m: [] for m, _ in METRICS})
    bare: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, metric: str) -> float:
        return statistics.median(self.ratios[metric])


def _iterations(workload: str, long_run: bool, scale: float) -> int:
    return max(1, int((LONG_ITERS if long_run else SHORT_ITERS)[workload] * scale))


def run_pairs(pairs: int, scale: float) -> dict[tuple[str, str], Cell]:
    """For each workload, ``pairs`` rounds; each round runs every mode once, each paired with
    its own bare run (bare first in even rounds, second in odd ones; modes rotate)."""
    cells = {(m.name, w): Cell() for m in MODES for w in WORKLOAD_NAMES}
    for workload in WORKLOAD_NAMES:
        started = time.perf_counter()
        for rnd in range(pairs):
            order = list(MODES[rnd % len(MODES) :] + MODES[: rnd % len(MODES)])
            for mode in order:
                iters = _iterations(workload, mode.long_run, scale)
                first, second = (BARE, mode) if rnd % 2 == 0 else (mode, BARE)
                a = run_child(first, workload, iters)
                b = run_child(second, workload, iters)
                bare, profiled = (a, b) if first is BARE else (b, a)
                cell = cells[(mode.name, workload)]
                for metric, _ in METRICS:
                    cell.ratios[metric].append(profiled[metric] / bare[metric])
                cell.bare.append(bare)
                cell.runs.append(profiled)
        print(
            f"   ({workload}: {pairs} rounds in {time.perf_counter() - started:.0f} s)",
            flush=True,
        )
    return cells


WIDTH = 36
COL = 19


def _fmt_ratio(values: list[float]) -> str:
    return f"{statistics.median(values):5.2f} [{min(values):.2f}-{max(values):.2f}]"


def _print_slowdown(cells: dict[tuple[str, str], Cell], metric: str, scale: float) -> None:
    print(f"{'':{WIDTH}}" + "".join(f"{w:>{COL}}" for w in WORKLOAD_NAMES) + "   goal")
    for group, title in ((False, "short runs"), (True, "long runs")):
        modes = [m for m in MODES if m.long_run == group]
        bare = {
            w: statistics.median(b[metric] for m in modes for b in cells[(m.name, w)].bare)
            for w in WORKLOAD_NAMES
        }
        iters = {w: _iterations(w, group, scale) for w in WORKLOAD_NAMES}
        print(f"bare, {title} (seconds; iterations)")
        print(
            f"{'':{WIDTH}}"
            + "".join(f"{f'{bare[w]:.3f} s; {iters[w]:,}':>{COL}}" for w in WORKLOAD_NAMES)
        )
        for mode in modes:
            row = [cells[(mode.name, w)].ratios[metric] for w in WORKLOAD_NAMES]
            line = f"{mode.label:{WIDTH}}" + "".join(f"{_fmt_ratio(r):>{COL}}" for r in row)
            if mode.goal is not None:
                worst = max(statistics.median(r) for r in row)
                verdict = "met" if worst <= mode.goal else f"MISSED by {worst / mode.goal - 1:.1%}"
                line += f"   <= {mode.goal:.2f}: {verdict}"
            print(line)


def print_overhead(cells: dict[tuple[str, str], Cell], pairs: int, scale: float) -> None:
    for metric, title in METRICS:
        print(f"\n-- slowdown (× bare), {title}: median of {pairs} per-pair ratios [min-max]")
        _print_slowdown(cells, metric, scale)

    print("\n-- the same as extra CPU seconds per run (profiled - bare, median): a fixed cost")
    print("   (imports, start-up threads) stays put as runs grow, a rate grows with them")
    print(f"{'':{WIDTH}}" + "".join(f"{w:>{COL}}" for w in WORKLOAD_NAMES))
    for mode in MODES:
        extra = []
        for w in WORKLOAD_NAMES:
            cell = cells[(mode.name, w)]
            diffs = [
                r["cpu_seconds"] - b["cpu_seconds"]
                for r, b in zip(cell.runs, cell.bare, strict=True)
            ]
            extra.append(f"{statistics.median(diffs):+.3f} s")
        print(f"{mode.label:{WIDTH}}" + "".join(f"{e:>{COL}}" for e in extra))

    print("\n-- memtui's added cost on top of tracemalloc: memtui / tracemalloc alone, per round")
    print(f"{'':{WIDTH}}" + "".join(f"{w:>{COL}}" for w in WORKLOAD_NAMES) + "   goal")
    for name in ("memtui", "memtui_snap1"):
        for metric, _ in METRICS:
            values = []
            for w in WORKLOAD_NAMES:
                ours, theirs = (
                    cells[(name, w)].ratios[metric],
                    cells[("tracemalloc", w)].ratios[metric],
                )
                values.append(_fmt_ratio([a / b for a, b in zip(ours, theirs, strict=True)]))
            kind = "wall" if metric == "seconds" else "CPU"
            label = f"{MODE_BY_NAME[name].label.split(' (')[0]} ({kind})"
            goal = "   <= 1.05" if name == "memtui" else ""
            print(f"{label:{WIDTH}}" + "".join(f"{v:>{COL}}" for v in values) + goal)

    print("\n-- memtui's self-report, medians over its runs: own_cpu_seconds (its share of the")
    print("   work's CPU) | effective_snapshot_interval_seconds | snapshots | stop() seconds")
    for mode in (m for m in MODES if m.kind == "memtui"):
        print(f"   {mode.label.strip()}:")
        for w in WORKLOAD_NAMES:
            runs = cells[(mode.name, w)].runs
            own = statistics.median(r["own_cpu_s"] for r in runs)
            share = statistics.median(r["own_cpu_s"] / r["cpu_seconds"] for r in runs)
            interval = statistics.median(r["effective_interval_s"] for r in runs)
            snaps = statistics.median(r["snapshots"] for r in runs)
            stop = statistics.median(r["stop_s"] for r in runs)
            line = f"      {w:6} {own:.3f} s ({share:5.1%}) | {interval:g} s | {snaps:g}"
            line += f" | {stop:.2f} s"
            errors = {e for r in runs for e in r["errors"]}
            if errors:
                line += f" | errors: {sorted(errors)}"
            print(line)

    print("\n-- reference, measured earlier (MEASUREMENTS.md; NOT this run: other workloads, wall)")
    for label, ref in REFERENCE.items():
        print(f"   {label:{WIDTH - 3}}" + "".join(f"{v:>{COL}.2f}" for v in ref))


# -- census -------------------------------------------------------------------------------


class Node:
    """A plain instance for the census heap (one gc-tracked object; its dict stays lazy)."""

    def __init__(self, ref: object) -> None:
        self.ref = ref


def build_heap(n: int) -> list[object]:
    """About ``n`` live gc-tracked objects: a third each lists, dicts (holding the list, so
    they stay tracked) and instances."""
    heap: list[object] = []
    for i in range(n // 3):
        items = [i]
        heap.append(Node({"items": items}))
        heap.append(items)
    return heap


def _timed(func: Callable[[], object]) -> tuple[float, object]:
    started = time.perf_counter()
    result = func()
    return time.perf_counter() - started, result


def _max_stall_ms(func: Callable[[], object]) -> float:
    """Longest gap a thread looping over time.sleep(0.001) sees while ``func`` runs."""
    stop = threading.Event()
    gaps = [0.0]

    def ticker() -> None:
        now = time.perf_counter
        last = now()
        while not stop.is_set():
            time.sleep(0.001)
            t = now()
            if t - last > gaps[0]:
                gaps[0] = t - last
            last = t

    thread = threading.Thread(target=ticker, daemon=True)
    thread.start()
    time.sleep(0.05)
    gaps[0] = 0.0
    func()
    time.sleep(0.01)  # a stall that ends with func is seen only after the ticker wakes
    stop.set()
    thread.join()
    return gaps[0] * 1e3


def census_child(n: int) -> int:
    """Measure the census methods on a heap of ``n`` objects; print one JSON line."""
    from memtui.probe.census import CensusResult, take_census

    heap = build_heap(n)
    gc.collect()
    live = len(gc.get_objects())
    methods: dict[str, Callable[[], object]] = {
        "get_objects": lambda: len(gc.get_objects()),
        "counter": lambda: Counter(map(type, gc.get_objects())),
        "take_census": take_census,
    }
    extra = _optional_census_methods(n)
    methods.update(extra)
    times: dict[str, list[float]] = {k: [] for k in methods}
    holds: list[float] = []
    durations: list[float] = []
    get_objects_in_census: list[float] = []
    for rep in range(3):
        names = list(methods)
        names = names[rep % len(names) :] + names[: rep % len(names)]
        for name in names:
            if name in extra and rep > 0 and n > 2_000_000:
                continue  # third-party tools take seconds at 5M; one run is enough
            elapsed, result = _timed(methods[name])
            times[name].append(elapsed)
            if isinstance(result, CensusResult):
                holds.append(result.max_hold_s)
                durations.append(result.duration_s)
                get_objects_in_census.append(result.get_objects_s)
            del result
    stalls = {
        "idle": statistics.median(_max_stall_ms(lambda: time.sleep(0.2)) for _ in range(3)),
        "counter": statistics.median(_max_stall_ms(methods["counter"]) for _ in range(3)),
        "take_census": statistics.median(_max_stall_ms(take_census) for _ in range(3)),
    }
    out = {
        "n": n,
        "live": live,
        "ms": {k: statistics.median(v) * 1e3 for k, v in times.items() if v},
        "census_duration_ms": statistics.median(durations) * 1e3,
        "census_max_hold_ms": statistics.median(holds) * 1e3,
        "census_get_objects_ms": statistics.median(get_objects_in_census) * 1e3,
        "stall_ms": stalls,
    }
    del heap
    print(json.dumps(out))
    return 0


def _optional_census_methods(n: int) -> dict[str, Callable[[], object]]:
    """objgraph, guppy3 and pympler, when the venv happens to have them (never installed here)."""
    methods: dict[str, Callable[[], object]] = {}
    # import_module: these are optional and untyped, so mypy need not know them.
    if importlib.util.find_spec("objgraph"):
        objgraph = importlib.import_module("objgraph")
        methods["objgraph.typestats()"] = objgraph.typestats
    if importlib.util.find_spec("guppy"):
        hpy = importlib.import_module("guppy").hpy
        methods["guppy3 hpy().heap()"] = lambda: hpy().heap()
    if importlib.util.find_spec("pympler") and n <= 1_000_000:
        muppy = importlib.import_module("pympler.muppy")
        summary = importlib.import_module("pympler.summary")
        methods["pympler summarize"] = lambda: summary.summarize(muppy.get_objects())
    return methods


def run_census(sizes: Sequence[int]) -> None:
    print("\n== Type census (one fresh interpreter per heap size; median of 3)")
    missing = [m for m in ("objgraph", "guppy", "pympler") if not importlib.util.find_spec(m)]
    if missing:
        print(f"   (not in this venv, so not measured: {', '.join(missing)})")
    for n in sizes:
        cmd = [sys.executable, str(Path(__file__).resolve()), "--census-child", str(n)]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
        if proc.returncode != 0:
            raise RuntimeError(f"census child failed:\n{proc.stderr}")
        r = json.loads(proc.stdout.strip().splitlines()[-1])
        base = r["ms"]["get_objects"]
        print(f"-- {r['live']:,} live gc-tracked objects")
        ref_col = 0 if n < 2_500_000 else 1
        for name, ms in r["ms"].items():
            label = {
                "get_objects": "gc.get_objects()",
                "counter": "Counter(map(type, get_objects()))",
                "take_census": "memtui take_census()",
            }.get(name, name)
            ref = CENSUS_REFERENCE_MS.get(label)
            ref_txt = f"   (reference, earlier, ~{'860k' if ref_col == 0 else '4.3M'}: "
            ref_txt = f"{ref_txt}{ref[ref_col]:g} ms)" if ref else ""
            print(f"   {label:36} {ms:8.1f} ms  {ms / base:5.2f}× get_objects{ref_txt}")
        hold, got = r["census_max_hold_ms"], r["census_get_objects_ms"]
        print(
            f"   take_census result: duration_s {r['census_duration_ms']:.1f} ms, max_hold_s "
            f"{hold:.1f} ms (its get_objects call: {got:.1f} ms)"
        )
        s = r["stall_ms"]
        print(
            f"   longest stall of a 1 ms ticker thread: idle {s['idle']:.1f} ms, during Counter "
            f"{s['counter']:.1f} ms, during take_census {s['take_census']:.1f} ms"
        )


# -- entry point ---------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="3 pairs, half-size runs, 1M only")
    parser.add_argument("--pairs", type=int, default=None, help="paired runs per cell")
    parser.add_argument("--child", nargs=3, metavar=("MODE", "WORKLOAD", "ITERS"))
    parser.add_argument("--census-child", type=int, metavar="N")
    parser.add_argument("--skip-census", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child[0], args.child[1], int(args.child[2]))
    if args.census_child:
        return census_child(args.census_child)

    pairs = args.pairs or (3 if args.quick else 5)
    started = time.perf_counter()
    print(
        f"== memtui overhead (Python {sys.version.split()[0]}, {len(MODES)} modes x "
        f"{len(WORKLOAD_NAMES)} workloads, {pairs} paired runs each)",
        flush=True,
    )
    scale = 0.5 if args.quick else 1.0
    cells = run_pairs(pairs, scale)
    print_overhead(cells, pairs, scale)
    if not args.skip_census:
        run_census([1_000_000] if args.quick else [1_000_000, 5_000_000])
    print(f"\n(total {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
