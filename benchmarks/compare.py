"""Runs memtui next to memray, mprof (memory_profiler) and Scalene on the same workloads, in one
run, and prints each tool's cost as ratios against bare runs taken in the same rounds.

Why one run: absolute times on a shared 2-core machine drift by 10-30% within minutes, so a
ratio is only worth quoting against a bare run taken right beside it. Each round runs bare and
every tool once per workload, in an order rotated (and reversed on odd rounds) each round;
each tool's ratio is taken against the same round's bare run, and the table shows the median
of the per-round ratios with [min-max].

Figures, per workload of ``workloads.py`` (alloc, alloc0, mixed, leak):

- **in-target**: the seconds of the workload's own work, as the program itself measures them
  (what the profiler costs the program while it runs);
- **wall**: the whole process tree from start to exit, as a user of the tool sees it
  (interpreter start, profiler start and stop, report writing);
- **peak RSS**: the largest peak resident set of any single process of the tree (wait4's
  accounting, like GNU time's maximum resident set size), and the target's own peak (the
  program reports its ``ru_maxrss`` before it exits).

Tools (each skipped, and said so, when not installed; ``pip install -e '.[bench]'``):
``memtui run --headless`` (default watch mode), ``memray run`` (default mode), ``mprof run``
(samples RSS from outside at 10 Hz), ``scalene run`` (CPU and memory).

    .venv/bin/python benchmarks/compare.py               # ~6-8 min on 2 cores: 5 rounds, 3 s runs
    .venv/bin/python benchmarks/compare.py --quick       # ~2 min: 3 rounds, 1.5 s runs
    .venv/bin/python benchmarks/compare.py --tools memtui,memray --workloads alloc,mixed
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
WORKLOADS: tuple[str, ...] = ("alloc", "alloc0", "mixed", "leak")
TOOLS: tuple[str, ...] = ("memtui", "memray", "mprof", "scalene")
PROBE_ITERATIONS: dict[str, int] = {
    "alloc": 200,
    "alloc0": 20_000,
    "mixed": 300_000,
    "leak": 300_000,
}
"""About 0.2-0.4 s of bare work each: scaled by a calibration run to the asked length."""
CHILD_TIMEOUT_S = 300.0

DRIVER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import workloads
result = workloads.timed(sys.argv[2], int(sys.argv[3]))
with open("/proc/self/status") as status:
    hwm = [line.split()[1] for line in status if line.startswith("VmHWM:")]
result["max_rss_kb"] = int(hwm[0]) if hwm else 0
print("MEMTUI_COMPARE " + json.dumps(result), flush=True)
"""
"""The program every tool profiles: the workload, then one line of its own figures. Its peak
is VmHWM, not ru_maxrss, which keeps the peak of the process it was forked from (a
profiler's launcher) across exec."""


@dataclass
class Run:
    """One finished process tree: its own figures and what the OS accounted for it."""

    in_target_s: float
    wall_s: float
    peak_rss_kb: int
    target_rss_kb: int


@dataclass
class Cell:
    """Per-round runs of one tool on one workload, beside the same rounds' bare runs."""

    runs: list[Run] = field(default_factory=list)
    bare: list[Run] = field(default_factory=list)


def _python_bin(name: str) -> str | None:
    """A console script of this interpreter's environment, else one on PATH."""
    local = os.path.join(os.path.dirname(sys.executable), name)
    return local if os.path.exists(local) else shutil.which(name)


def available_tools(wanted: Sequence[str]) -> tuple[list[str], list[str]]:
    """The tools that can run here, and a note for each that cannot."""
    found, notes = [], []
    for tool in wanted:
        script = {"memtui": "memtui", "memray": "memray", "mprof": "mprof", "scalene": "scalene"}
        if _python_bin(script[tool]) is None:
            notes.append(f"{tool}: not installed here (pip install -e '.[bench]'); skipped")
        else:
            found.append(tool)
    return found, notes


def command(tool: str, workload: str, iterations: int, scratch: str) -> list[str]:
    """The command line a user of ``tool`` would type to profile the driver."""
    driver = os.path.join(scratch, "driver.py")
    program = [driver, HERE, workload, str(iterations)]
    out = os.path.join(scratch, f"{tool}-{workload}")
    if tool == "bare":
        return [sys.executable, *program]
    if tool == "memtui":
        memtui = _python_bin("memtui") or "memtui"
        report = f"{out}.json"
        return [memtui, "run", "--headless", "--quiet", "--output", report, "--",
                sys.executable, *program]  # fmt: skip
    if tool == "memray":
        return [_python_bin("memray") or "memray", "run", "-q", "--force", "-o", f"{out}.bin",
                *program]  # fmt: skip
    if tool == "mprof":
        return [_python_bin("mprof") or "mprof", "run", "-o", f"{out}.dat", sys.executable,
                *program]  # fmt: skip
    if tool == "scalene":
        return [_python_bin("scalene") or "scalene", "run", "-o", f"{out}.json", driver,
                "---", HERE, workload, str(iterations)]  # fmt: skip
    raise ValueError(tool)


def run_once(argv: list[str], cwd: str) -> Run:
    """Run ``argv`` to its end; its in-target seconds, wall, and peak RSS (wait4)."""
    started = time.perf_counter()
    proc = subprocess.Popen(
        argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    wall = time.perf_counter() - started
    # communicate() reaped it; the tree's peak comes from our children's accounting.
    import resource

    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    for line in out.decode(errors="replace").splitlines():
        if line.startswith("MEMTUI_COMPARE "):
            figures = json.loads(line.split(" ", 1)[1])
            return Run(figures["seconds"], wall, peak, int(figures["max_rss_kb"]))
    raise RuntimeError(
        f"{argv[0]} printed no figures (status {proc.returncode}):\n"
        f"{err.decode(errors='replace')[-2000:]}"
    )


def run_measured(argv: list[str], cwd: str) -> Run:
    """run_once in a fresh child of ours, so that RUSAGE_CHILDREN's peak is this tree's only."""
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import compare; "
        "r = compare.run_once(sys.argv[3:], sys.argv[2]); print(json.dumps(r.__dict__))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, HERE, cwd, *argv],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S + 30,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    return Run(**json.loads(done.stdout.strip().splitlines()[-1]))


def calibrate(workload: str, seconds: float, scratch: str) -> int:
    """Iterations giving about ``seconds`` of bare work (best of two probe runs)."""
    n = PROBE_ITERATIONS[workload]
    probe = min(run_once(command("bare", workload, n, scratch), scratch).in_target_s
                for _ in range(2))  # fmt: skip
    return max(1, round(n * seconds / max(probe, 1e-3)))


def _order(names: Sequence[str], round_no: int) -> list[str]:
    k = round_no % len(names)
    order = list(names[k:]) + list(names[:k])
    return order[::-1] if round_no % 2 else order


def run_rounds(
    tools: Sequence[str], workloads: dict[str, int], rounds: int, scratch: str
) -> dict[tuple[str, str], Cell]:
    """Every round: bare and each tool once per workload, order rotated; cells by (tool, wl)."""
    cells = {(t, w): Cell() for t in tools for w in workloads}
    for r in range(rounds):
        for workload, iterations in workloads.items():
            got: dict[str, Run] = {}
            for tool in _order(["bare", *tools], r):
                got[tool] = run_measured(command(tool, workload, iterations, scratch), scratch)
            for tool in tools:
                cells[(tool, workload)].runs.append(got[tool])
                cells[(tool, workload)].bare.append(got["bare"])
            line = "  ".join(
                f"{t} {got[t].in_target_s:.2f}/{got[t].wall_s:.2f}s" for t in ["bare", *tools]
            )
            print(f"  round {r + 1} {workload:6s} {line}", file=sys.stderr, flush=True)
    return cells


def _ratio(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} [{min(values):.2f}-{max(values):.2f}]"


def table(cells: dict[tuple[str, str], Cell], tools: Sequence[str], names: Sequence[str]) -> str:
    """The markdown table: one row per tool and figure, one column per workload."""
    figures = (
        ("in-target time", lambda run: run.in_target_s),
        ("whole-process wall", lambda run: run.wall_s),
        ("peak RSS, target", lambda run: float(run.target_rss_kb)),
        ("peak RSS, largest process", lambda run: float(run.peak_rss_kb)),
    )
    lines = [
        "| tool | figure (× bare) | " + " | ".join(names) + " |",
        "|---|---|" + "---|" * len(names),
    ]
    for tool in tools:
        for label, get in figures:
            row = []
            for wl in names:
                cell = cells[(tool, wl)]
                pairs = zip(cell.runs, cell.bare, strict=True)
                row.append(_ratio([get(a) / get(b) for a, b in pairs]))
            lines.append(f"| {tool} | {label} | " + " | ".join(row) + " |")
    bare_row = []
    for wl in names:
        bare = cells[(tools[0], wl)].bare
        bare_row.append(
            f"{statistics.median(b.in_target_s for b in bare):.2f} s / "
            f"{statistics.median(b.wall_s for b in bare):.2f} s / "
            f"{statistics.median(b.target_rss_kb for b in bare) / 1024:.0f} MB"
        )
    lines.append("| bare | in-target / wall / peak RSS | " + " | ".join(bare_row) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=3.0, help="bare work per run (s)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--tools", default=",".join(TOOLS))
    parser.add_argument("--quick", action="store_true", help="3 rounds of 1.5 s runs")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds = 3, 1.5
    names = [w for w in args.workloads.split(",") if w]
    bad = [w for w in names if w not in WORKLOADS] + [
        t for t in args.tools.split(",") if t and t not in TOOLS
    ]
    if bad:
        parser.error(f"unknown workload or tool: {', '.join(bad)}")
    tools, notes = available_tools([t for t in args.tools.split(",") if t])
    if not tools:
        print("\n".join(notes), file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="memtui-compare-") as scratch:
        with open(os.path.join(scratch, "driver.py"), "w", encoding="utf-8") as f:
            f.write(DRIVER)
        sizes = {w: calibrate(w, args.seconds, scratch) for w in names}
        print(f"iterations for ~{args.seconds:g} s bare: {sizes}", file=sys.stderr)
        cells = run_rounds(tools, sizes, args.rounds, scratch)
    print(
        f"\n{args.rounds} rounds, ~{args.seconds:g} s of bare work per run, Python "
        f"{sys.version.split()[0]}, {os.cpu_count()} cores; median of per-round ratios "
        "[min-max] against the same round's bare run:\n"
    )
    print(table(cells, tools, names))
    for note in notes:
        print(f"\n{note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
