"""Measures `memtui exporter`: scrape latency, what scraping costs the targets, its memory.

- **Targets**: 8 fresh interpreters, each with the agent (``import memtui.probe.bootstrap``,
  watch mode, as `memtui run` starts it) in a private socket directory, each doing the same
  fixed ``mixed`` work from ``workloads.py`` at the same time; the work's wall and CPU
  seconds are what is compared.
- **Modes**: ``unscraped`` (the 8 agents, no exporter) and ``scraped`` (``memtui exporter
  --socket-dir DIR --interval 1`` polling them, and a scraper GETting /metrics every second).
  Rounds alternate the order; the ratio scraped/unscraped is taken per round (mean of the 8
  targets), the median of the rounds is printed with [min-max].
- **Scrape latency**: every GET of the scraped mode, median and p99.
- **Exporter memory**: 8 idle agents, 10,000 back-to-back scrapes; the exporter's RSS after
  each 1,000 (flat means no growth per scrape).

    .venv/bin/python benchmarks/bench_exporter.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from typing import Any

import psutil

HERE = os.path.dirname(os.path.abspath(__file__))
TARGETS = 8
ITERATIONS = 1_500_000
"""About 1.5-2 s of bare ``mixed`` work alone; 8 at once on 2 cores take longer."""
DRIVER = """
import json, sys
import memtui.probe.bootstrap
sys.path.insert(0, sys.argv[1])
import workloads
if sys.argv[2] == "idle":
    print("ready", flush=True)
    sys.stdin.read()
else:
    sys.stdin.readline()  # start together
    print(json.dumps(workloads.timed("mixed", int(sys.argv[2]))), flush=True)
"""


def _targets(sock_dir: str, arg: str) -> list[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTUI_")}
    env.update({"MEMTUI_SOCKET_DIR": sock_dir, "MEMTUI_TRACE": "watch"})
    return [
        subprocess.Popen(
            [sys.executable, "-c", DRIVER, HERE, arg],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(TARGETS)
    ]


def _wait_for_sockets(sock_dir: str, procs: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + 30
    want = {f"agent-{p.pid}.sock" for p in procs}
    while not want <= set(os.listdir(sock_dir)):
        if time.monotonic() > deadline:
            raise RuntimeError("the agents did not start")
        time.sleep(0.05)


def _start_exporter(sock_dir: str) -> tuple[subprocess.Popen[str], str]:
    cmd = [sys.executable, "-c", "import sys; from memtui.cli import main; sys.exit(main())"]
    cmd += ["exporter"]
    cmd += ["--listen", "127.0.0.1:0", "--interval", "1", "--socket-dir", sock_dir]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    line = proc.stderr.readline()
    match = re.search(r"(http://\S+/metrics)", line)
    if match is None:
        proc.kill()
        raise RuntimeError(f"exporter did not start: {line}")
    return proc, match.group(1)


def _scrape(url: str) -> float:
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()
    return time.perf_counter() - t0


class Scraper(threading.Thread):
    """Prometheus' part: GET /metrics every second until stopped."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.latencies: list[float] = []

    def run(self) -> None:
        while not self.stop.is_set():
            self.latencies.append(_scrape(self.url))
            self.stop.wait(1.0)


def run_mode(mode: str, iterations: int) -> tuple[float, float, list[float]]:
    """(mean wall s, mean CPU s) of the 8 targets' work, and the scrape latencies."""
    with tempfile.TemporaryDirectory(prefix="memtui-bench-") as sock_dir:
        os.chmod(sock_dir, 0o700)
        procs = _targets(sock_dir, str(iterations))
        exporter = scraper = None
        try:
            _wait_for_sockets(sock_dir, procs)
            if mode == "scraped":
                exporter, url = _start_exporter(sock_dir)
                scraper = Scraper(url)
                scraper.start()
                time.sleep(2.5)  # the exporter has connected to every agent
            for p in procs:
                assert p.stdin is not None
                p.stdin.write("go\n")
                p.stdin.flush()
            results = [json.loads(p.communicate(timeout=600)[0].splitlines()[-1]) for p in procs]
        finally:
            if scraper is not None:
                scraper.stop.set()
                scraper.join(10)
            if exporter is not None:
                exporter.terminate()
                exporter.wait(10)
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
    wall = statistics.mean(r["seconds"] for r in results)
    cpu = statistics.mean(r["cpu_seconds"] for r in results)
    return wall, cpu, scraper.latencies if scraper is not None else []


def frame_cost_ms(frames: int = 400) -> float:
    """CPU the target spends serving one poll (a ``frame`` request), from /proc/PID/stat."""
    from memtui.remote.client import AgentClient

    with tempfile.TemporaryDirectory(prefix="memtui-bench-") as sock_dir:
        os.chmod(sock_dir, 0o700)
        procs = _targets(sock_dir, "idle")[:1]
        try:
            _wait_for_sockets(sock_dir, procs)
            target = psutil.Process(procs[0].pid)
            with AgentClient(os.path.join(sock_dir, f"agent-{procs[0].pid}.sock")) as client:
                seq = int(client.request("frame", since=0)["seq"])
                time.sleep(3.0)  # past the first census
                before = target.cpu_times()
                idle_t0 = time.perf_counter()
                time.sleep(2.0)  # the agent's own cost when nobody asks
                idle = target.cpu_times()
                idle_s = (idle.user + idle.system - before.user - before.system) / (
                    time.perf_counter() - idle_t0
                )
                t0 = time.perf_counter()
                for _ in range(frames):
                    seq = int(client.request("frame", since=seq)["seq"])
                wall = time.perf_counter() - t0
                after = target.cpu_times()
            used = float(after.user + after.system - idle.user - idle.system - idle_s * wall)
            return 1000.0 * max(0.0, used) / frames
        finally:
            for p in procs:
                p.kill()
                p.wait()


def exporter_cpu_share(seconds: float = 20.0) -> float:
    """Share of one core the exporter uses with 8 idle agents, polled and scraped at 1 Hz."""
    with tempfile.TemporaryDirectory(prefix="memtui-bench-") as sock_dir:
        os.chmod(sock_dir, 0o700)
        procs = _targets(sock_dir, "idle")
        exporter = None
        try:
            _wait_for_sockets(sock_dir, procs)
            exporter, url = _start_exporter(sock_dir)
            time.sleep(3.0)  # connected, history replayed
            proc = psutil.Process(exporter.pid)
            c0, t0 = proc.cpu_times(), time.perf_counter()
            while time.perf_counter() - t0 < seconds:
                _scrape(url)
                time.sleep(1.0)
            c1, t1 = proc.cpu_times(), time.perf_counter()
            return float(c1.user + c1.system - c0.user - c0.system) / (t1 - t0)
        finally:
            if exporter is not None:
                exporter.terminate()
                exporter.wait(10)
            for p in procs:
                p.kill()
                p.wait()


def memory_after_scrapes(scrapes: int) -> tuple[list[tuple[int, float]], list[float]]:
    """(scrapes so far, exporter RSS MiB) every scrapes/10, with 8 idle agents; latencies."""
    with tempfile.TemporaryDirectory(prefix="memtui-bench-") as sock_dir:
        os.chmod(sock_dir, 0o700)
        procs = _targets(sock_dir, "idle")
        exporter = None
        try:
            _wait_for_sockets(sock_dir, procs)
            exporter, url = _start_exporter(sock_dir)
            time.sleep(2.5)
            rss = psutil.Process(exporter.pid)
            series = [(0, rss.memory_info().rss / 2**20)]
            step = max(1, scrapes // 10)
            latencies = []
            for i in range(1, scrapes + 1):
                latencies.append(_scrape(url))
                if i % step == 0:
                    series.append((i, rss.memory_info().rss / 2**20))
            return series, latencies
        finally:
            if exporter is not None:
                exporter.terminate()
                exporter.wait(10)
            for p in procs:
                p.kill()
                p.wait()


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.3f}x [{min(values):.3f}-{max(values):.3f}]"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="2 rounds, 2,000 scrapes")
    parser.add_argument("--rounds", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (2 if args.quick else 5)
    scrapes = 2000 if args.quick else 10_000
    wall_ratios: list[float] = []
    cpu_ratios: list[float] = []
    latencies: list[float] = []
    for r in range(rounds):
        order = ["unscraped", "scraped"] if r % 2 == 0 else ["scraped", "unscraped"]
        got: dict[str, Any] = {m: run_mode(m, ITERATIONS) for m in order}
        wall_ratios.append(got["scraped"][0] / got["unscraped"][0])
        cpu_ratios.append(got["scraped"][1] / got["unscraped"][1])
        latencies += got["scraped"][2]
        print(f"  round {r + 1}/{rounds}: wall {wall_ratios[-1]:.3f}x", file=sys.stderr)
    print(f"targets: {TARGETS} agents, mixed x{ITERATIONS:,} each, {rounds} rounds")
    print(f"target slowdown, scraped every 1 s / unscraped: wall {_fmt(wall_ratios)}")
    print(f"                                                 CPU  {_fmt(cpu_ratios)}")
    print(f"scrape latency, 8 busy targets: {_latency(latencies)}")
    print(f"one poll (frame request) costs the target {frame_cost_ms():.2f} ms of CPU")
    share = exporter_cpu_share()
    print(f"the exporter itself, 8 agents polled and scraped at 1 Hz: {100 * share:.1f}% of a core")
    series, idle_latencies = memory_after_scrapes(scrapes)
    print(f"scrape latency, 8 idle targets: {_latency(idle_latencies)}")
    text = ", ".join(f"{n}: {mib:.1f}" for n, mib in series)
    print(f"exporter RSS MiB after N scrapes: {text}")
    growth = series[-1][1] - series[1][1]
    print(f"growth from scrape {series[1][0]:,} to {scrapes:,}: {growth:+.1f} MiB")
    return 0


def _latency(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
    return (
        f"median {1000 * statistics.median(ordered):.1f} ms, p99 {1000 * p99:.1f} ms "
        f"({len(ordered)} scrapes)"
    )


if __name__ == "__main__":
    raise SystemExit(main())
