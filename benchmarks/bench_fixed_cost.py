"""Measures the fixed cost of `memtui run --headless` on an empty program, beside bare Python.

What a user pays to put a short program under memtui, whatever the program does: the
monitor's start (imports, the probe zip), the program's start with the agent in it (the
bootstrap), the wait for the agent's socket, and the exit path. Why paired rounds: on a
shared machine absolute times drift by 10-30% within minutes, so each command's figure is
quoted beside a bare run taken in the same round, as the median of the per-round ratios.

Commands, each a fresh process tree, timed from outside (wall clock around it, CPU from
``wait4``: user + system of the whole tree, the program included):

- ``bare``: ``python -c pass``.
- ``memtui``: ``python -m memtui run --headless -- python -c pass``.
- ``agent only``: ``python -c pass`` with the environment `memtui run` gives its program
  (bootstrap on PYTHONPATH, the probe zip with bytecode, MEMTUI_*), no monitor: the target's
  side of the cost.
- ``monitor only``: ``python -m memtui run --headless -- true``: no agent can start, so it is
  the monitor's side (start, zip, spawn, the wait that ends with the program's exit).
- ``memray``: ``memray run -f -o DIR/x.bin -c pass``, when memray is installed.

``PYTHONDONTWRITEBYTECODE`` is dropped from the runs' environment (the warm-up round then
writes the bytecode a normal install has). Usage, from the repository:

    .venv/bin/python benchmarks/bench_fixed_cost.py               # 15 rounds, ~30 s
    .venv/bin/python benchmarks/bench_fixed_cost.py --rounds 5    # quicker, noisier
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

GOAL_WALL_S: float = 0.35
"""Issue 14: the whole `memtui run --headless -- python -c pass` within this wall time."""


@dataclass
class Runs:
    """One command's timings, one entry per round."""

    name: str
    argv: list[str]
    env: dict[str, str]
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    stderr_lines: list[str] = field(default_factory=list)


def timed(
    argv: Sequence[str], env: Mapping[str, str], stderr_path: str, cwd: str
) -> tuple[float, float]:
    """(wall s, CPU s of the whole tree) of one run; its stdout is dropped."""
    with open(stderr_path, "wb") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(argv), env=dict(env), cwd=cwd, stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_utime + usage.ru_stime


def agent_env(base: Mapping[str, str], work_dir: str) -> dict[str, str]:
    """The environment `memtui run` gives its program (built as the launcher builds it)."""
    from memtui.remote import launcher
    from memtui.remote.probe_zip import build_probe_zip

    with open(os.path.join(work_dir, "sitecustomize.py"), "w", encoding="utf-8") as f:
        f.write(launcher._SITECUSTOMIZE)
    try:
        probe_zip = build_probe_zip(work_dir, bytecode=True, durable=False)
    except TypeError:  # an older memtui (a baseline checkout): sources only
        probe_zip = build_probe_zip(work_dir)
    options = {  # what memtui.cli.run.agent_options gives `run --headless` by default
        "MEMTUI_SAMPLE_INTERVAL": "1.0",
        "MEMTUI_TRACE": "watch",
        "MEMTUI_TRACE_FRAMES": "1",
        "MEMTUI_CHILDREN": "1",
    }
    return launcher.agent_environment(base, work_dir, probe_zip, options)


def memray_argv(out: str) -> list[str] | None:
    exe = shutil.which("memray", path=os.path.dirname(sys.executable)) or shutil.which("memray")
    if exe is not None:
        return [exe, "run", "-f", "-q", "-o", out, "-c", "pass"]
    try:
        import memray  # noqa: F401
    except ImportError:
        return None
    return [sys.executable, "-m", "memray", "run", "-f", "-q", "-o", out, "-c", "pass"]


def commands(work_dir: str) -> list[Runs]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    py = sys.executable
    empty = [py, "-c", "pass"]
    runs = [
        Runs("bare", empty, env),
        Runs("memtui", [py, "-m", "memtui", "run", "--headless", "--", *empty], env),
        Runs("agent only", empty, agent_env(env, work_dir)),
        Runs("monitor only", [py, "-m", "memtui", "run", "--headless", "--", "true"], env),
    ]
    memray = memray_argv(os.path.join(work_dir, "x.bin"))
    if memray is not None:
        runs.append(Runs("memray", memray, env))
    return runs


def spread(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def report(runs: list[Runs]) -> None:
    bare = runs[0]
    print(f"{'command':<13} {'wall s':>22} {'CPU s':>22} {'wall x bare':>12} {'CPU x bare':>11}")
    for r in runs:
        wall_ratio = statistics.median(w / b for w, b in zip(r.wall, bare.wall, strict=True))
        cpu_ratio = statistics.median(c / b for c, b in zip(r.cpu, bare.cpu, strict=True))
        print(
            f"{r.name:<13} {spread(r.wall):>22} {spread(r.cpu):>22} "
            f"{wall_ratio:>12.1f} {cpu_ratio:>11.1f}"
        )
    memtui = runs[1]
    extra = statistics.median(m - b for m, b in zip(memtui.wall, bare.wall, strict=True))
    wall = statistics.median(memtui.wall)
    verdict = "within" if wall <= GOAL_WALL_S else "over"
    print(
        f"\nmemtui run --headless -- python -c pass: {wall:.3f} s wall (median), "
        f"{extra:+.3f} s over bare; {verdict} the {GOAL_WALL_S:g} s goal"
    )
    outcomes: dict[str, int] = {}
    for line in memtui.stderr_lines:
        key = "no agent seen (unprofiled)" if "before its agent answered" in line else "report"
        outcomes[key] = outcomes.get(key, 0) + 1
    print("memtui runs:", ", ".join(f"{n} {k}" for k, n in sorted(outcomes.items())))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="counted rounds (default 15)")
    parser.add_argument("--warmup", type=int, default=1, help="rounds not counted (default 1)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memtui-bench-fixed-") as work_dir:
        runs = commands(work_dir)
        err_path = os.path.join(work_dir, "stderr")
        for round_no in range(args.warmup + args.rounds):
            shift = round_no % len(runs)
            order = runs[shift:] + runs[:shift]  # rotated: no command always runs first
            if round_no % 2:
                order.reverse()
            for r in order:
                # In the work directory: `-m memtui` then runs the memtui on PYTHONPATH (or
                # installed), never a checkout that happens to be the current directory.
                wall, cpu = timed(r.argv, r.env, err_path, work_dir)
                if round_no < args.warmup:
                    continue
                r.wall.append(wall)
                r.cpu.append(cpu)
                with open(err_path, encoding="utf-8", errors="replace") as f:
                    r.stderr_lines.append(f.read().strip())
        print(
            f"{args.rounds} rounds (+{args.warmup} warm-up), {os.cpu_count()} CPUs, "
            f"Python {sys.version.split()[0]}; median [min-max]; ratios: median of per-round"
        )
        report(runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
