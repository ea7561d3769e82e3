"""Measures what memtui's in-target agent costs the program it runs in, and attach latency.

Each run is a fresh interpreter doing a fixed amount of work from ``workloads.py`` (alloc,
mixed, leak) and reporting the wall and CPU seconds of that work only. Modes:

- ``bare``: no memtui.
- ``idle``: the agent started as ``memtui run`` starts it (``import memtui.probe.bootstrap``),
  ``MEMTUI_TRACE=off``, no viewer connected.
- ``watch``: ``MEMTUI_TRACE=watch`` with ``MEMTUI_WATCH_PERIOD=5`` (default 15 s; 0.25 s
  windows, first one 2 s after start), and a monitor in this process polling
  ``request("frame", since=seq)`` once a second.
- ``continuous``: ``MEMTUI_TRACE=continuous`` (1 frame), same monitor. It is 6-16x slower, so
  it runs on shorter workloads with its own bare runs.

Rounds run bare and every mode once per workload, in an order rotated each round; each mode's
ratio is taken against the bare run of the same round, and the median of those per-round
ratios is printed with [min-max]. Attach latency: ``memtui.remote.attach.attach(pid)`` on a
sleeping ``-I`` target per CPython version, median of 3 fresh targets.

    /work/venv/bin/python benchmarks/bench_agent.py [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from memtui.errors import TargetProcessError
from memtui.remote.attach import AttachError, attach, detach
from memtui.remote.client import AgentClient, AgentUnavailable

HERE = os.path.dirname(os.path.abspath(__file__))
WATCH_PERIOD_S = "5"
POLL_PERIOD_S = 1.0
CHILD_TIMEOUT_S = 180.0
LONG_ITERATIONS: dict[str, int] = {"alloc": 2600, "mixed": 5_500_000, "leak": 3_000_000}
"""About 4 s of bare work each on this machine (leak grows superlinearly: 5M took 10.5 s)."""
SHORT_ITERATIONS: dict[str, int] = {"alloc": 200, "mixed": 300_000, "leak": 400_000}
"""About 0.3 s bare, 2-4 s under continuous tracing (6.6x alloc, 16x mixed, 11x leak)."""
LONG_MODES: tuple[str, ...] = ("bare", "idle", "watch")
SHORT_MODES: tuple[str, ...] = ("bare", "continuous")
TRACE_ENV: dict[str, str] = {"idle": "off", "watch": "watch", "continuous": "continuous"}
POLLED: frozenset[str] = frozenset({"watch", "continuous"})
PYTHONS: tuple[tuple[str, str], ...] = (
    ("3.10", "/root/.pyenv/versions/3.10.13/bin/python"),
    ("3.11", "/root/.pyenv/versions/3.11.7/bin/python"),
    ("3.12", "/root/.pyenv/versions/3.12.1/bin/python"),
    ("3.13", "/root/.pyenv/versions/3.13.0/bin/python"),
)
SLEEPER = "import time\nwhile True:\n    time.sleep(0.05)\n"
MEMRAY_NOTE = (
    "memray not installed in this environment; reference (MEASUREMENTS.md, not this run): "
    "memray default 1.20/2.23/1.40x"
)

DRIVER = """
import json, sys
if sys.argv[1] == "1":
    import memtui.probe.bootstrap
sys.path.insert(0, sys.argv[2])
import workloads
result = workloads.timed(sys.argv[3], int(sys.argv[4]))
if sys.argv[1] == "1":
    from memtui.probe.agent import current_agent
    agent = current_agent()
    state = agent.tracer.state() if agent else {}
    result["windows"] = state.get("windows", -1)
    result["trace_mode"] = state.get("mode", "no agent")
    result["agent_errors"] = agent.errors if agent else -1
print(json.dumps(result))
"""
"""Child program: argv = agent(0|1), benchmarks dir, workload, iterations."""


class Poller(threading.Thread):
    """A monitor polling one agent: connects as soon as its socket appears, then asks for a
    frame (``since`` the last seq) every POLL_PERIOD_S until stopped or the agent is gone."""

    def __init__(self, pid: int) -> None:
        super().__init__(name=f"poller-{pid}", daemon=True)
        self.pid = pid
        self.stop_event = threading.Event()
        self.frames = 0
        self.request_s: list[float] = []
        self.error = ""

    def run(self) -> None:
        client: AgentClient | None = None
        seq = 0
        try:
            while not self.stop_event.is_set():
                if client is None:
                    try:
                        client = AgentClient.for_pid(self.pid, timeout_s=10.0)
                    except AgentUnavailable:
                        self.stop_event.wait(0.02)
                        continue
                started = time.perf_counter()
                try:
                    reply = client.request("frame", since=seq)
                except AgentUnavailable:
                    return  # the target finished
                self.request_s.append(time.perf_counter() - started)
                seq = int(reply["seq"])
                self.frames += 1
                self.stop_event.wait(POLL_PERIOD_S)
        except TargetProcessError as exc:
            self.error = str(exc)
        finally:
            if client is not None:
                client.close()


def _env(mode: str) -> dict[str, str]:
    """The child's environment: no MEMTUI_* variables but those of ``mode``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTUI_")}
    if mode != "bare":
        env["MEMTUI_TRACE"] = TRACE_ENV[mode]
        env["MEMTUI_WATCH_PERIOD"] = WATCH_PERIOD_S
    return env


def run_child(mode: str, workload: str, iterations: int) -> dict[str, Any]:
    """One fresh interpreter doing the work under ``mode``; its report plus the poller's."""
    agent = "0" if mode == "bare" else "1"
    cmd = [sys.executable, "-c", DRIVER, agent, HERE, workload, str(iterations)]
    proc = subprocess.Popen(
        cmd, env=_env(mode), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    poller = Poller(proc.pid) if mode in POLLED else None
    if poller is not None:
        poller.start()
    try:
        out, err = proc.communicate(timeout=CHILD_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if poller is not None:
            poller.stop_event.set()
            poller.join(5.0)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{mode}/{workload} failed ({proc.returncode}): {err.strip()[-500:]}")
    result: dict[str, Any] = json.loads(lines[-1])
    if err.strip():
        result["stderr"] = err.strip().splitlines()[-1]
    if poller is not None:
        result["frames"] = poller.frames
        result["frame_ms"] = (
            1000 * statistics.median(poller.request_s) if poller.request_s else float("nan")
        )
        result["poll_error"] = poller.error
    return result


@dataclass
class Cell:
    """Per-round results of one (workload, mode): ratios to that round's bare, raw reports."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def _order(modes: Sequence[str], round_no: int) -> list[str]:
    """``modes`` rotated by the round number, reversed on odd rounds (bare moves around)."""
    k = round_no % len(modes)
    rotated = list(modes[k:]) + list(modes[:k])
    return rotated[::-1] if round_no % 2 else rotated


def run_rounds(
    rounds: int, groups: Sequence[tuple[Sequence[str], dict[str, int]]]
) -> dict[tuple[str, str], Cell]:
    """Run every group (modes, iterations per workload) ``rounds`` times, interleaved."""
    cells: dict[tuple[str, str], Cell] = {}
    for r in range(rounds):
        for modes, iterations in groups:
            for workload, n in iterations.items():
                results = {mode: run_child(mode, workload, n) for mode in _order(modes, r)}
                bare = results["bare"]
                for mode, res in results.items():
                    cell = cells.setdefault((workload, mode), Cell())
                    cell.runs.append(res)
                    cell.wall.append(res["seconds"] / bare["seconds"])
                    cell.cpu.append(res["cpu_seconds"] / bare["cpu_seconds"])
        print(f"  round {r + 1}/{rounds} done", file=sys.stderr, flush=True)
    return cells


def _ratio(values: list[float]) -> str:
    return f"{statistics.median(values):5.3f} [{min(values):.2f}-{max(values):.2f}]"


def print_overhead(cells: dict[tuple[str, str], Cell], rounds: int) -> None:
    """The ratio table: one row per (mode, workload)."""
    print(
        f"\nAgent overhead: ratio to the bare run of the same round, median of {rounds} rounds "
        "[min-max]; wall and CPU (process_time of the target over the work only)."
    )
    print(
        f"watch: MEMTUI_WATCH_PERIOD={WATCH_PERIOD_S} (default 15), 0.25 s windows, first at "
        f"2 s; watch/continuous polled by a monitor at {1 / POLL_PERIOD_S:g} Hz."
    )
    head = (
        f"{'mode':<11}{'workload':<9}{'bare s':>7}  {'wall ratio':<22}{'cpu ratio':<22}"
        f"{'windows':>8}{'frames':>7}{'frame ms':>9}"
    )
    print("windows: watch windows completed by the end of the work (median of runs).")
    print(head)
    print("-" * len(head))
    for mode in ("idle", "watch", "continuous"):
        for workload in LONG_ITERATIONS:
            cell = cells.get((workload, mode))
            if cell is None:
                continue
            short = mode == "continuous"  # compared with the short runs' own bare runs
            bare_runs = cells[(workload, "bare")].runs
            bare = statistics.median(
                r["seconds"] for r in bare_runs if r.get("short", False) == short
            )
            windows = statistics.median(r.get("windows", -1) for r in cell.runs)
            shown_windows = f"{windows:g}" if mode == "watch" else "-"
            frames = statistics.median(r.get("frames", 0) for r in cell.runs)
            frame_ms = [r["frame_ms"] for r in cell.runs if r.get("frames")]
            print(
                f"{mode:<11}{workload:<9}{bare:7.2f}  {_ratio(cell.wall):<22}{_ratio(cell.cpu):<22}"
                f"{shown_windows:>8}{frames if mode in POLLED else '-':>7}"
                f"{(f'{statistics.median(frame_ms):.1f}' if frame_ms else '-'):>9}"
            )
    notes = {r["stderr"] for c in cells.values() for r in c.runs if r.get("stderr")}
    notes |= {r["poll_error"] for c in cells.values() for r in c.runs if r.get("poll_error")}
    for note in sorted(notes):
        print(f"  note from a run: {note}")


def _attach_once(python: str) -> tuple[float, str]:
    """Seconds from attach() call to its return (hello answered) on a fresh sleeping target."""
    proc = subprocess.Popen([python, "-I", "-c", SLEEPER])
    try:
        time.sleep(0.5)  # let the interpreter finish starting
        started = time.perf_counter()
        result = attach(proc.pid)
        seconds = time.perf_counter() - started
        detach(proc.pid)
        return seconds, result.method
    finally:
        proc.kill()
        proc.wait()


def print_attach(samples: int) -> None:
    """Attach latency per CPython version present: median of ``samples`` fresh targets."""
    print(f"\nAttach latency: attach(pid) until hello answered, median of {samples} targets")
    for label, python in PYTHONS:
        if label == f"{sys.version_info[0]}.{sys.version_info[1]}" and not os.path.exists(python):
            python = sys.executable
        if not os.path.exists(python):
            print(f"  {label}: not present")
            continue
        try:
            runs = [_attach_once(python) for _ in range(samples)]
        except (AttachError, TargetProcessError) as exc:
            print(f"  {label}: attach failed: {exc}")
            continue
        times = sorted(s for s, _ in runs)
        shown = " ".join(f"{s:.3f}" for s in times)
        print(f"  {label}: {statistics.median(times):.3f} s  [{shown}]  via {runs[0][1]}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent-overhead rounds, then attach latency; print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="2 rounds, 0.6x/0.5x-size runs")
    args = parser.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    rounds, long_scale, short_scale = (2, 0.6, 0.5) if args.quick else (5, 1.0, 1.0)
    long_it = {w: max(1, int(n * long_scale)) for w, n in LONG_ITERATIONS.items()}
    short_it = {w: max(1, int(n * short_scale)) for w, n in SHORT_ITERATIONS.items()}
    started = time.perf_counter()
    print(
        f"bench_agent: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs, "
        f"{rounds} rounds, run size x{long_scale:g} (long) x{short_scale:g} (short)"
    )
    print(f"  long runs (bare/idle/watch): {long_it}")
    print(f"  short runs (bare/continuous): {short_it}", flush=True)
    long_cells = run_rounds(rounds, [(LONG_MODES, long_it)])
    short_cells = run_rounds(rounds, [(SHORT_MODES, short_it)])
    cells = dict(long_cells)
    for (workload, mode), cell in short_cells.items():
        if mode == "bare":
            for run in cell.runs:
                run["short"] = True
            cells[(workload, mode)].runs.extend(cell.runs)
        else:
            cells[(workload, mode)] = cell
    print_overhead(cells, rounds)
    print_attach(3)
    print()
    if importlib.util.find_spec("memray") is None:
        print(MEMRAY_NOTE)
    else:
        print("memray is installed but not measured by this script (see bench_overhead.py)")
    print(f"\ntotal {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
