"""Provides the heap-dump benchmark: target pause, dump time and size, analysis time and memory.

For each size (default 1M and 5M live objects; the dump holds ~1.36x as many nodes) a target
process builds the heap, its main thread ticks every millisecond recording the longest gap, and
another thread of it dumps the heap with the fork writer and the in-place writer. The analysis
(load + dominators + top objects) runs in a fresh process whose peak RSS is reported, phase by
phase; then ``memtui heapdump analyze --json FILE`` itself runs ``--rounds`` times in fresh
processes (wall and peak RSS of that process, from ``os.wait4``; medians). ``--compare TREE``
runs the same command from another memtui source tree (say a ``git worktree`` of an older
commit) on the same dump, alternating with this one, and checks both print the same analysis.
guppy3's ``hpy().heap()`` is timed in the target when guppy3 is importable there.

    python benchmarks/bench_heapdump.py [--sizes 1000000,5000000] [--out-dir /tmp]
        [--writers fork,inplace] [--rounds 3] [--compare /path/to/old/memtui/tree]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

TARGET = r"""
import gc, json, os, sys, threading, time
sys.path.insert(0, sys.argv[2])
from memtui.probe.heap.dump import write_heap_dump

class Rec:
    __slots__ = ("name", "tags", "owner")

n = int(sys.argv[1])
DATA = []
for i in range(n // 3):
    r = Rec(); r.name = "rec-%d" % i; r.tags = [i]; r.owner = DATA
    DATA.append(r)
gc.collect()
state = {"max_gap": 0.0}

def command_loop():
    for line in sys.stdin:
        cmd, *args = line.split()
        if cmd == "quit":
            break
        state["max_gap"] = 0.0
        time.sleep(0.05)
        state["max_gap"] = 0.0
        t0 = time.perf_counter()
        if cmd == "dump":
            r = write_heap_dump(args[1], args[0])
            out = r.to_dict()
        else:  # guppy
            from guppy import hpy
            h = hpy()
            heap = h.heap()
            t1 = time.perf_counter()
            dom = heap.byid[0].domisize if len(heap) else 0
            out = {"heap_s": t1 - t0, "dominated_size_of_largest": dom, "size": heap.size}
        wall = time.perf_counter() - t0
        time.sleep(0.05)
        out.update(wall_s=wall, max_gap_s=state["max_gap"], gc_objects=len(gc.get_objects()))
        print(json.dumps(out), flush=True)
    os._exit(0)

threading.Thread(target=command_loop, daemon=True).start()
print("ready", len(gc.get_objects()), flush=True)
last = time.perf_counter()
while True:
    time.sleep(0.001)
    now = time.perf_counter()
    if now - last > state["max_gap"]:
        state["max_gap"] = now - last
    last = now
"""

ANALYZE = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[2])
t0 = time.perf_counter()
from memtui.engine.heap.dumps import analyze, largest_retainers, load_dump, top_objects
t1 = time.perf_counter()
d = load_dump(sys.argv[1])
t2 = time.perf_counter()
a = analyze(d)
t3 = time.perf_counter()
top = top_objects(a, 30)
ret = largest_retainers(a, 10)
t4 = time.perf_counter()
print(json.dumps({"load_s": t2 - t1, "dominators_s": t3 - t2, "top_s": t4 - t3,
    "total_s": t4 - t1, "timings": a.timings,
    "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    "top_type": top[0]["type"], "top_retainer": ret[0]["chain"]}))
"""

REFERENCE = (
    "reference (MEASUREMENTS.md, not this run): in-place walk of 860k objects + 2.9M refs "
    "0.55 s (44 MB raw, 6.8 MB zlib-1); 4.3M objects 2.8 s; guppy3 heap() 0.45 s at 860k, "
    "2.4 s at 4.3M (+215 MB)"
)


def _target(n: int) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-c", TARGET, str(n), str(ROOT)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        raise RuntimeError("the target did not start")
    return proc, int(line[1])


def _ask(proc: subprocess.Popen[str], line: str) -> dict[str, Any]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()
    reply: dict[str, Any] = json.loads(proc.stdout.readline())
    return reply


def _analyze(path: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-c", ANALYZE, path, str(ROOT)], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def cli_analyze(path: str, tree: Path) -> dict[str, Any]:
    """``memtui heapdump analyze --json path`` from source ``tree`` in a fresh process: its
    wall time, peak RSS (this child alone, from wait4) and its output."""
    env = {**os.environ, "PYTHONPATH": str(tree)}
    cmd = [sys.executable, "-m", "memtui", "heapdump", "analyze", "--json", path]
    t0 = time.perf_counter()
    # cwd: `python -m` puts the working directory first on sys.path, before PYTHONPATH
    proc = subprocess.Popen(cmd, env=env, cwd=tree, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed: {err.decode()[-500:]}")
    result: dict[str, Any] = json.loads(out)
    return {
        "wall_s": wall,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "peak_rss_mb": usage.ru_maxrss / 1024,
        "result": result,
    }


def cli_rounds(path: str, rounds: int, compare: Path | None) -> dict[str, Any]:
    """Medians over ``rounds`` of this tree's CLI analysis (and ``compare``'s, alternating)."""
    trees = {"this": ROOT} if compare is None else {"this": ROOT, "compare": compare}
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in trees}
    for i in range(rounds):
        for key in list(trees) if i % 2 == 0 else list(trees)[::-1]:
            runs[key].append(cli_analyze(path, trees[key]))
    out: dict[str, Any] = {}
    for key, rows in runs.items():
        out[key] = {
            m: statistics.median(r[m] for r in rows) for m in ("wall_s", "cpu_s", "peak_rss_mb")
        }
        out[key]["walls"] = [round(r["wall_s"], 2) for r in rows]
        print(f"  {key}: {json.dumps(out[key])}", file=sys.stderr, flush=True)
    if compare is not None:
        same = [_stable(r["result"]) == _stable(runs["this"][0]["result"]) for r in runs["compare"]]
        out["same_output"] = all(same)
    return out


def _stable(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "timings"}


def _has_guppy() -> bool:
    probe = subprocess.run([sys.executable, "-c", "import guppy"], capture_output=True)
    return probe.returncode == 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,5000000")
    parser.add_argument("--out-dir", default=tempfile.gettempdir())
    parser.add_argument("--writers", default="fork,inplace", help="dump writers to time")
    parser.add_argument("--rounds", type=int, default=3, help="CLI analysis runs per tree")
    parser.add_argument("--compare", type=Path, help="another memtui source tree to time")
    args = parser.parse_args()
    writers = [w for w in args.writers.split(",") if w]
    if "fork" not in writers:
        writers.insert(0, "fork")  # the analysis reads the fork writer's dump
    guppy = _has_guppy()
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        proc, live = _target(n)
        try:
            row: dict[str, Any] = {"n": n, "gc_objects": live}
            for writer in writers:
                path = os.path.join(args.out_dir, f"bench-{n}-{writer}.mtdump")
                if os.path.exists(path):  # left by an interrupted run (dumps never overwrite)
                    os.unlink(path)
                r = _ask(proc, f"dump {writer} {path}")
                row[writer] = r
                print(f"[{n}] {writer}: {json.dumps(r)}", file=sys.stderr, flush=True)
            if guppy:
                row["guppy"] = _ask(proc, "guppy")
            _ask_quit(proc)
        finally:
            proc.kill()
            proc.wait()
        row["analysis"] = _analyze(row["fork"]["path"])
        print(f"[{n}] analysis: {json.dumps(row['analysis'])}", file=sys.stderr, flush=True)
        print(f"[{n}] memtui heapdump analyze:", file=sys.stderr, flush=True)
        row["cli"] = cli_rounds(row["fork"]["path"], args.rounds, args.compare)
        for writer in writers:
            os.unlink(row[writer]["path"])
        rows.append(row)
    _table(rows, guppy, writers, args.compare)


def _ask_quit(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("quit\n")
    proc.stdin.flush()


def _table(
    rows: list[dict[str, Any]], guppy: bool, writers: list[str], compare: Path | None
) -> None:
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cpus")
    head = "| measure | " + " | ".join(
        f"{r['n'] / 1e6:g}M ({r['fork']['objects']:,} nodes)" for r in rows
    )
    print(head + " |")
    print("|---" * (len(rows) + 1) + "|")

    def line(name: str, values: list[str]) -> None:
        print(f"| {name} | " + " | ".join(values) + " |")

    for w in writers:
        line(
            f"{w}: target pause (ticker max gap)",
            [f"{r[w]['max_gap_s'] * 1e3:.1f} ms" for r in rows],
        )
        line(f"{w}: pause measured by writer", [f"{r[w]['pause_s'] * 1e3:.1f} ms" for r in rows])
        line(f"{w}: dump wall time", [f"{r[w]['duration_s']:.2f} s" for r in rows])
    line("edges", [f"{r['fork']['edges']:,}" for r in rows])
    line("file size", [f"{r['fork']['bytes'] / 1e6:.1f} MB" for r in rows])
    line("analysis: load", [f"{r['analysis']['load_s']:.2f} s" for r in rows])
    line(
        "analysis: dominators + retained", [f"{r['analysis']['dominators_s']:.2f} s" for r in rows]
    )
    line("analysis: top objects + retainers", [f"{r['analysis']['top_s']:.2f} s" for r in rows])
    line("analysis: total", [f"{r['analysis']['total_s']:.2f} s" for r in rows])
    line("analysis: peak RSS", [f"{r['analysis']['peak_rss_mb']:.0f} MB" for r in rows])
    for key in ("this", "compare") if compare is not None else ("this",):
        name = "`memtui heapdump analyze`" + (f" ({compare})" if key == "compare" else "")
        line(
            f"{name}: wall / CPU / peak RSS (median)",
            [
                f"{r['cli'][key]['wall_s']:.2f} s / {r['cli'][key]['cpu_s']:.2f} s / "
                f"{r['cli'][key]['peak_rss_mb']:.0f} MB"
                for r in rows
            ],
        )
    if compare is not None:
        line("same output", [str(r["cli"]["same_output"]) for r in rows])
    if guppy:
        line("guppy3 hpy().heap()", [f"{r['guppy']['heap_s']:.2f} s" for r in rows])
        line("guppy3 pause (ticker)", [f"{r['guppy']['max_gap_s'] * 1e3:.0f} ms" for r in rows])
    else:
        print("\nguppy3 not installed; " + REFERENCE)
    for r in rows:
        print(f"\n{r['n']:,}: top retainer: {r['analysis']['top_retainer']}")


if __name__ == "__main__":
    main()
