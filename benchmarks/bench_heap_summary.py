"""Heap summaries next to objgraph, guppy3 and pympler, on the same heaps, in one run.

    python benchmarks/bench_heap_summary.py [--objects 1000000] [--tools memtui,objgraph,...]

Each tool runs in a fresh child process holding the same heap: ``--objects`` live objects, a
realistic mix (dicts of atomic values that gc does not track, their str/int/tuple fields, class
instances and lists). For each tool: wall time, the longest stall another thread of the target
saw while it ran (a thread ticking every 1 ms measures it: the target's pause), the memory the
target grew by, and how many of the heap's dicts it counted. memtui's summary runs in a forked
child, so its pause is the fork; the others run in the target. Competitors come from the
``bench`` extra (``pip install -e '.[bench]'``); a missing one is reported, not fatal.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from collections.abc import Sequence

CHILD = textwrap.dedent(
    """
    import gc, json, os, sys, threading, time
    TOOL, N = sys.argv[1], int(sys.argv[2])

    class Item:
        def __init__(self, i):
            self.i = i
            self.name = "item-%d" % i

    # ~10 objects per record: dict + 2 str + int + tuple (+ its ints), instance + its dict...
    per = 10
    RECORDS = [{"i": i, "tag": "t%d" % i, "pt": (i, -i)} for i in range(N // per * 6 // 10)]
    ITEMS = [Item(i) for i in range(N // per * 3 // 10)]
    LISTS = [[i, str(i)] for i in range(N // per)]
    gc.collect()  # as in a long-running process: records of atomic values are untracked now
    ids = set(map(id, RECORDS))
    true_dicts = len(RECORDS) + sum(
        1 for o in gc.get_objects() if type(o) is dict and id(o) not in ids)
    del ids

    stall = [0.0]
    stop = threading.Event()
    def ticker():
        last = time.perf_counter()
        while not stop.is_set():
            time.sleep(0.001)
            now = time.perf_counter()
            stall[0] = max(stall[0], now - last)
            last = now
    def rss():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    t = threading.Thread(target=ticker, daemon=True)
    t.start()
    time.sleep(0.2)
    stall[0] = 0.0
    rss0 = rss()
    t0 = time.perf_counter()
    dicts = None
    extra = {}
    if TOOL == "memtui":
        from memtui.probe.heap.summary import start_heap_summary
        job = start_heap_summary(time.time())
        job.wait()
        r = job.result or {}
        dicts = next((c for name, c, _ in r.get("census", []) if name == "dict"), None)
        extra = {"pause_s": r.get("pause_s"), "child_s": r.get("child_s"),
                 "child_cpu_s": r.get("child_cpu_s"), "error": job.error,
                 "objects": (r.get("totals") or {}).get("objects")}
    elif TOOL == "objgraph":
        import objgraph
        stats = objgraph.typestats()
        dicts = stats.get("dict")
    elif TOOL == "guppy3":
        from guppy import hpy
        heap = hpy().heap()
        for row in heap.bytype.stat.get_rows():
            if row.name == "dict":
                dicts = row.count
    elif TOOL == "pympler":
        from pympler import muppy, summary
        rows = summary.summarize(muppy.get_objects())
        dicts = next((r[1] for r in rows if r[0] == "dict"), None)
    wall = time.perf_counter() - t0
    stop.set()
    t.join()
    print(json.dumps({"tool": TOOL, "wall_s": wall, "stall_s": stall[0], "rss_grew_mb":
                      (rss() - rss0) / 1e6, "dicts": dicts, "true_dicts": true_dicts, **extra}))
    """
)
TOOLS = ("memtui", "objgraph", "guppy3", "pympler")


def run(tool: str, objects: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, tool, str(objects)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if not lines:
        last = (out.stderr.strip().splitlines() or ["failed"])[-1]
        return {"tool": tool, "error": last[:100]}
    result: dict[str, object] = json.loads(lines[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1_000_000)
    parser.add_argument("--tools", default=",".join(TOOLS))
    args = parser.parse_args(argv)
    print(f"heap of ~{args.objects:,} objects; one fresh process per tool")
    head = (
        f"{'tool':<10}{'wall s':>9}{'pause s':>10}{'RSS +MB':>9}{'dicts seen':>12}{'at least':>10}"
    )
    print(head)
    for tool in args.tools.split(","):
        r = run(tool, args.objects)
        if "wall_s" not in r:
            print(f"{tool:<10} not run: {r.get('error')}")
            continue
        pause = r["pause_s"] if tool == "memtui" else r["stall_s"]
        seen = "-" if r["dicts"] is None else f"{r['dicts']:,}"
        print(
            f"{tool:<10}{r['wall_s']:>9.2f}{float(pause or 0):>10.4f}{r['rss_grew_mb']:>9.1f}"
            f"{seen:>12}{r['true_dicts']:>10,}"
        )
        if tool == "memtui":
            print(
                f"{'':<10}child {r.get('child_s')} s wall, {r.get('child_cpu_s')} s CPU, "
                f"other threads' longest stall {r['stall_s']:.4f} s, "
                f"{r.get('objects') or 0:,} objects counted {r.get('error') or ''}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
