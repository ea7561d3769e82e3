"""Provides where memtui's in-target cost goes: one configuration at a time against a bare twin.

Each configuration runs as service B next to a bare service A (the soak's app, gunicorn, one
sync worker each), both under the same closed-loop client for ``--seconds``, so the machine's
noise slows both alike. For each it prints B/A of throughput and of the worker's CPU seconds
per request (the worker's own, and with its reaped children: heap summaries fork). The parts
(cost_conf.py) run alone in the worker, with no monitor, at ``COST_EVERY`` seconds, so a rare
event (a census every 30 s) can be run often and its cost per event scaled to its real rate.

Configurations: ``bare`` (B is bare too: the noise floor), ``run-off`` (``memtui run
--headless --monitor --record`` with MEMTUI_TRACE=off, no heap summaries, census every
10,000 s: the sampler, GC callback, socket and frames, recording), ``run-off-census`` (census
back at its default), ``run-off-summary`` (heap summaries back), ``run-default`` (memtui run's
defaults: watch mode, census, heap summaries), ``gc``, ``sampler``, ``census@S``, ``watch@S``,
``summary@S`` (the part alone, every S s), ``run-census@3``, ``run-watch@1.5``,
``run-summary@5`` (under memtui run, that part alone at ten times or more its rate).

Usage: ``python benchmarks/soak/cost.py --seconds 60 bare run-off run-default watch@1.5``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from soak import HERE, Load, free_port, gunicorn_cmd, wait_serving, worker_of

RUN_ENV: dict[str, dict[str, str]] = {
    "run-off": {
        "MEMTUI_TRACE": "off",
        "MEMTUI_HEAP_SUMMARY": "0",
        "MEMTUI_CENSUS_INTERVAL": "10000",
    },
    "run-off-census": {"MEMTUI_TRACE": "off", "MEMTUI_HEAP_SUMMARY": "0"},
    "run-census@3": {
        "MEMTUI_TRACE": "off",
        "MEMTUI_HEAP_SUMMARY": "0",
        "MEMTUI_CENSUS_INTERVAL": "3",
    },
    "run-watch@1.5": {
        "MEMTUI_HEAP_SUMMARY": "0",
        "MEMTUI_CENSUS_INTERVAL": "10000",
        "MEMTUI_WATCH_PERIOD": "1.5",
    },
    "run-summary@5": {
        "MEMTUI_TRACE": "off",
        "MEMTUI_CENSUS_INTERVAL": "10000",
        "MEMTUI_HEAP_SUMMARY_INTERVAL": "5",
    },
    "run-off-summary": {"MEMTUI_TRACE": "off", "MEMTUI_CENSUS_INTERVAL": "10000"},
    "run-off-all": {"MEMTUI_TRACE": "off"},
    "run-default": {},
}


def command(config: str, port: int, out: Path) -> tuple[list[str], dict[str, str]]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    if config == "bare":
        return gunicorn_cmd(port), env
    if config in RUN_ENV:
        env.update(RUN_ENV[config])
        db = out / f"{config}.db"
        cmd = [
            sys.executable, "-m", "memtui", "run", "--headless", "--monitor", "--quiet",
            "--record", str(db), "--output", str(out / f"{config}.json"),
            "--sample-interval", "1", "--", *gunicorn_cmd(port),
        ]  # fmt: skip
        return cmd, env
    part, _, every = config.partition("@")
    env["COST_PART"] = part
    if every:
        env["COST_EVERY"] = every
    conf = HERE / "cost_conf.py"
    cmd = gunicorn_cmd(port)
    return [*cmd[:-1], "-c", str(conf), cmd[-1]], env


def cpu(proc: psutil.Process) -> tuple[float, float]:
    """The process's own CPU seconds, and with its reaped children."""
    t = proc.cpu_times()
    own = t.user + t.system
    return own, own + t.children_user + t.children_system


def run_pair(config: str, seconds: float, threads: int, out: Path) -> dict[str, Any]:
    port_a, port_b = free_port(), free_port()
    env_a = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd_b, env_b = command(config, port_b, out)
    log = open(out / f"{config}.log", "wb")  # noqa: SIM115 - for the services' life
    a = subprocess.Popen(gunicorn_cmd(port_a), stdout=log, stderr=subprocess.STDOUT,
                         env=env_a, start_new_session=True)  # fmt: skip
    b = subprocess.Popen(cmd_b, stdout=log, stderr=subprocess.STDOUT, env=env_b,
                         start_new_session=True)  # fmt: skip
    load = Load([port_a, port_b], threads)
    try:
        wait_serving(port_a, a)
        wait_serving(port_b, b)
        wa, wb = worker_of(a.pid), worker_of(b.pid)
        if wa is None or wb is None:
            raise SystemExit("cost: no worker found")
        load.start()
        time.sleep(5.0)  # warm-up
        c0, ca0, cb0 = load.counts(), cpu(wa), cpu(wb)
        rss0 = (wa.memory_info().rss, wb.memory_info().rss)
        time.sleep(seconds)
        c1, ca1, cb1 = load.counts(), cpu(wa), cpu(wb)
        rss1 = (wa.memory_info().rss, wb.memory_info().rss)
    finally:
        load.stop()
        for proc in (b, a):
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
        for proc in (b, a):
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
        log.close()
    ra, rb = c1[port_a] - c0[port_a], c1[port_b] - c0[port_b]
    own_a, own_b = (ca1[0] - ca0[0]) / ra, (cb1[0] - cb0[0]) / rb
    all_a, all_b = (ca1[1] - ca0[1]) / ra, (cb1[1] - cb0[1]) / rb
    return {
        "config": config,
        "req_per_s": [round(ra / seconds, 1), round(rb / seconds, 1)],
        "throughput_ratio": round(rb / ra, 3),
        "cpu_ms_per_req": [round(own_a * 1e3, 3), round(own_b * 1e3, 3)],
        "cpu_ratio": round(own_b / own_a, 3),
        "cpu_ratio_with_children": round(all_b / all_a, 3),
        "rss_mb_b_minus_a": [
            round((rss0[1] - rss0[0]) / 1e6, 1),
            round((rss1[1] - rss1[0]) / 1e6, 1),
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--threads", type=int, default=2, help="client threads per service")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)
    out = Path(args.out or tempfile.mkdtemp(prefix="memtui-cost-"))
    out.mkdir(parents=True, exist_ok=True)
    for config in args.configs:
        row = run_pair(config, args.seconds, args.threads, out)
        print(json.dumps(row), flush=True)
        with open(out / "cost.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
