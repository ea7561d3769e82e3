"""What heap summaries cost the program: the agent with and without them, paired with bare runs.

    python benchmarks/bench_summary_cost.py [--rounds 5] [--scale 1.0]

Each run is a fresh interpreter doing the fixed work of ``workloads.py`` (alloc, alloc0, mixed,
leak; ~4 s bare) as ``memtui run`` starts it (the agent via ``memtui.probe.bootstrap``,
``MEMTUI_TRACE=off`` so tracing windows do not blur the figure): ``bare`` (no memtui),
``nosum`` (agent, ``MEMTUI_HEAP_SUMMARY=0``) and ``summary`` (agent, default summary cadence:
2 s after start, then every 5 s in the first minute — the costliest stretch of a run). Rounds run
the three in a rotated order; ratios are taken against the same round's bare run and the median
over rounds is printed with [min-max]. The summaries' own account (how many, the fork pauses,
the children's time) comes from the agent of the last ``summary`` run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ITERATIONS: dict[str, int] = {
    "alloc": 2600,
    "alloc0": 120_000,
    "mixed": 5_500_000,
    "leak": 3_000_000,
}
MODES: tuple[str, ...] = ("bare", "nosum", "summary")
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
    result["summaries"] = agent.summaries.state() if agent else {}
print(json.dumps(result))
"""


def run_child(mode: str, workload: str, iterations: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTUI_")}
    if mode != "bare":
        env["MEMTUI_TRACE"] = "off"
        env["MEMTUI_HEAP_SUMMARY"] = "0" if mode == "nosum" else "1"
    agent = "0" if mode == "bare" else "1"
    out = subprocess.run(
        [sys.executable, "-c", DRIVER, agent, HERE, workload, str(iterations)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--scale", type=float, default=1.0)
    args = parser.parse_args(argv)
    iterations = {w: max(1, int(n * args.scale)) for w, n in ITERATIONS.items()}
    ratios: dict[tuple[str, str], list[float]] = {}
    bare_s: dict[str, list[float]] = {}
    last: dict[str, dict[str, Any]] = {}
    for r in range(args.rounds):
        order = MODES[r % 3 :] + MODES[: r % 3]
        for workload, n in iterations.items():
            runs = {mode: run_child(mode, workload, n) for mode in order}
            bare = runs["bare"]["seconds"]
            bare_s.setdefault(workload, []).append(bare)
            for mode in ("nosum", "summary"):
                ratios.setdefault((workload, mode), []).append(runs[mode]["seconds"] / bare)
            last[workload] = runs["summary"].get("summaries", {})
        print(f"  round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    print(f"in-target time x bare, median of {args.rounds} rounds [min-max]")
    print(f"{'workload':<9}{'bare s':>7}  {'agent, no summaries':<22}{'agent + summaries':<22}")
    for workload in iterations:
        cells = []
        for mode in ("nosum", "summary"):
            v = ratios[(workload, mode)]
            cells.append(f"{statistics.median(v):.3f} [{min(v):.2f}-{max(v):.2f}]")
        print(
            f"{workload:<9}{statistics.median(bare_s[workload]):>7.2f}  "
            f"{cells[0]:<22}{cells[1]:<22}"
        )
        s = last[workload]
        print(
            f"{'':<9}summaries {s.get('taken')}, pauses {s.get('pause_s_total')} s "
            f"(max {s.get('max_pause_s')}), children {s.get('child_s_total')} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
