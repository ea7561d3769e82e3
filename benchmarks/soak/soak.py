"""Provides the real soak: two identical Flask services under gunicorn, one watched by memtui.

Why two services side by side: on a shared, noisy 2-core machine a "before, then with memtui"
comparison measures the neighbours as much as memtui. Here the same load generator drives both
services at once (closed loop, the same number of client threads each), so whatever else runs on
the machine slows both alike and the throughput ratio (watched / control) is memtui's cost.

Service B runs as ``memtui run --headless --monitor --record soak.db -- gunicorn -w 1 ...``
(the agent in the master and in the worker, recording on); service A is the same gunicorn alone.
Every ``--every`` seconds the script samples both workers' RSS, the monitor's (``memtui run``)
RSS, threads and fds. At the end it stops memtui with SIGTERM (it writes its report), reads the
worker's recording and prints one JSON object of figures:

- ``throughput_ratio``: requests/s of B over A, whole run after warm-up, and per 10 min;
- slopes (least squares, MB/h, after warm-up) of the monitor's RSS, of B's worker RSS minus A's
  (memtui's own memory inside the target: the app is the same, so the difference is ours), and
  of B's allocated blocks from the recording;
- ``samples``: rows in the worker's recording against the seconds watched, and the largest gap.

With ``--rate R`` the client is open loop instead: R requests/s per service on a fixed
schedule (``--threads`` senders each), so both services do the same work and the cost shows as
the worker's CPU seconds per request (watched / control) and as latency (p50, p99, measured
from each request's scheduled time, so a stalled worker's queue counts), not as throughput.
The slopes are also given over the last ``--tail-min`` minutes, after the bounded buffers fill.

Usage: ``python benchmarks/soak/soak.py --minutes 30 --out /tmp/soak`` (bounded: it stops by
itself; every request goes to 127.0.0.1); ``--minutes 75 --rate 120`` for the open loop.
"""

from __future__ import annotations

import argparse
import array
import contextlib
import http.client
import itertools
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
GUNICORN = Path(sys.executable).with_name("gunicorn")
MB = 1e6


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request(port: int, timeout_s: float = 10.0) -> bool:
    """One GET / (a new connection: gunicorn's sync worker closes it after each request)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        conn.request("GET", "/")
        resp = conn.getresponse()
        resp.read()
        return resp.status == 200
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()


def wait_serving(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"soak: a service exited early with {proc.returncode}")
        if request(port, 1.0):
            return
        time.sleep(0.3)
    raise SystemExit(f"soak: the service on port {port} never answered")


def gunicorn_cmd(port: int) -> list[str]:
    return [str(GUNICORN), "-w", "1", "-b", f"127.0.0.1:{port}", "--chdir", str(HERE), "app:app"]


def worker_of(root: int) -> psutil.Process | None:
    """The gunicorn worker under ``root`` (memtui's short-lived walkers excluded)."""
    try:
        procs = psutil.Process(root).children(recursive=True)
    except psutil.Error:
        return None
    workers = [p for p in procs if not p.name().startswith("memtui-")]
    # the worker is the deepest gunicorn process: a child of the master
    for p in workers:
        with contextlib.suppress(psutil.Error):
            if p.ppid() != root or len(workers) == 1:
                return p
    return workers[0] if workers else None


class Load:
    """Closed-loop clients: ``threads`` per port, counting completed and failed requests."""

    def __init__(self, ports: list[int], threads: int) -> None:
        self.ports = ports
        self.ok = dict.fromkeys(ports, 0)
        self.failed = dict.fromkeys(ports, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(p,), daemon=True)
            for p in ports
            for _ in range(threads)
        ]

    def _run(self, port: int) -> None:
        while not self._stop.is_set():
            good = request(port)
            with self._lock:
                if good:
                    self.ok[port] += 1
                else:
                    self.failed[port] += 1

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(15)

    def counts(self) -> dict[int, int]:
        with self._lock:
            return dict(self.ok)

    def latencies(self, since: float = 0.0) -> dict[int, array.array[float]]:
        return {}


class OpenLoad(Load):
    """Open-loop clients: ``rate`` requests/s per port on a fixed schedule, ``threads`` senders
    per port each taking every ``threads``-th slot. A request's latency runs from its scheduled
    time, so time spent queued behind a stalled worker is counted (no coordinated omission)."""

    def __init__(self, ports: list[int], threads: int, rate: float) -> None:
        super().__init__(ports, threads)
        self.rate = rate
        self._lat: dict[int, array.array[float]] = {p: array.array("d") for p in ports}
        self._due: dict[int, array.array[float]] = {p: array.array("d") for p in ports}
        self._threads = [
            threading.Thread(target=self._run_open, args=(p, k, threads), daemon=True)
            for p in ports
            for k in range(threads)
        ]
        self._t0 = 0.0

    def start(self) -> None:
        self._t0 = time.monotonic() + 0.5
        super().start()

    def _run_open(self, port: int, k: int, n: int) -> None:
        step = n / self.rate
        due = self._t0 + k / self.rate
        while not self._stop.is_set():
            wait = due - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            good = request(port)
            lat = time.monotonic() - due
            with self._lock:
                if good:
                    self.ok[port] += 1
                    self._lat[port].append(lat)
                    self._due[port].append(due)
                else:
                    self.failed[port] += 1
            due += step

    def latencies(self, since: float = 0.0) -> dict[int, array.array[float]]:
        """Latencies of the requests scheduled from ``since`` (monotonic time) on."""
        with self._lock:
            return {
                p: array.array("d", (x for x, d in zip(a, self._due[p], strict=True) if d >= since))
                for p, a in self._lat.items()
            }


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def percentiles_ms(values: array.array[float]) -> dict[str, float] | None:
    if not values:
        return None
    q = np.percentile(np.frombuffer(values, dtype=float), [50, 99, 99.9]) * 1000.0
    return {
        "p50": round(float(q[0]), 2),
        "p99": round(float(q[1]), 2),
        "p99.9": round(float(q[2]), 2),
        "max": round(max(values) * 1000.0, 1),
    }


def slope_mb_per_h(t_s: list[float], values: list[float]) -> float | None:
    if len(t_s) < 3:
        return None
    fit = np.polyfit(np.asarray(t_s) / 3600.0, np.asarray(values) / MB, 1)
    return round(float(fit[0]), 3)


def read_recording(path: Path) -> dict[str, Any]:
    """Raw sample rows of a recording: count, span, largest gap, and the blocks series."""
    if not path.exists():
        return {"path": str(path), "missing": True}
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT t_ms, rss, blocks FROM samples ORDER BY t_ms").fetchall()
    finally:
        db.close()
    t = [r[0] / 1000.0 for r in rows]
    gaps = [b - a for a, b in itertools.pairwise(t)]
    return {
        "path": str(path),
        "rows": len(rows),
        "span_s": round(t[-1] - t[0], 1) if t else 0.0,
        "max_gap_s": round(max(gaps), 2) if gaps else None,
        "gaps_over_2s": sum(1 for g in gaps if g > 2.0),
        "t": t,
        "blocks": [r[2] for r in rows],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="watched time (default 30)")
    parser.add_argument("--warmup-s", type=float, default=120.0, help="left out of the slopes")
    parser.add_argument("--threads", type=int, default=2, help="client threads per service")
    parser.add_argument("--every", type=float, default=10.0, help="seconds between readings")
    parser.add_argument("--out", default="/tmp/memtui-soak", help="directory for the results")
    parser.add_argument(
        "--rate", type=float, default=0.0, help="open loop: requests/s per service (0: closed)"
    )
    parser.add_argument("--tail-min", type=float, default=20.0, help="minutes of the tail slopes")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    db = out / "soak.db"
    for stale in out.glob("soak*.db*"):
        stale.unlink()
    port_a, port_b = free_port(), free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log_a = open(out / "a.log", "wb")  # noqa: SIM115 - open for the services' whole life
    log_b = open(out / "b.log", "wb")  # noqa: SIM115
    control = subprocess.Popen(
        gunicorn_cmd(port_a), stdout=log_a, stderr=subprocess.STDOUT, env=env,
        start_new_session=True,
    )  # fmt: skip
    memtui_cmd = [
        sys.executable, "-m", "memtui", "run", "--headless", "--monitor", "--quiet",
        "--record", str(db), "--output", str(out / "report.json"), "--sample-interval", "1",
        "--", *gunicorn_cmd(port_b),
    ]  # fmt: skip
    watched = subprocess.Popen(
        memtui_cmd, stdout=log_b, stderr=subprocess.STDOUT, env=env,
        start_new_session=True,
    )  # fmt: skip
    timeline: list[dict[str, Any]] = []
    load = (
        OpenLoad([port_a, port_b], args.threads, args.rate)
        if args.rate > 0
        else Load([port_a, port_b], args.threads)
    )
    try:
        wait_serving(port_a, control)
        wait_serving(port_b, watched)
        monitor = psutil.Process(watched.pid)
        worker_a, worker_b = worker_of(control.pid), worker_of(watched.pid)
        if worker_a is None or worker_b is None:
            raise SystemExit("soak: could not find the gunicorn workers")
        master_b = worker_b.parent() or monitor  # the gunicorn master (the agent is in it too)
        load.start()
        t0 = time.monotonic()
        end = t0 + args.minutes * 60.0
        while time.monotonic() < end:
            time.sleep(max(0.0, min(args.every, end - time.monotonic())))
            counts = load.counts()
            row: dict[str, Any] = {
                "t": round(time.monotonic() - t0, 1),
                "req_a": counts[port_a],
                "req_b": counts[port_b],
                "failed_a": load.failed[port_a],
                "failed_b": load.failed[port_b],
            }
            with contextlib.suppress(psutil.Error):
                row["rss_a"] = worker_a.memory_info().rss
                row["rss_b"] = worker_b.memory_info().rss
                row["threads_b"] = worker_b.num_threads()
                row["fds_b"] = worker_b.num_fds()
                row["cpu_a"] = cpu_s(worker_a)
                row["cpu_b"] = cpu_s(worker_b)
                row["cpu_master_b"] = cpu_s(master_b)
                row["cpu_monitor"] = cpu_s(monitor)
                row["rss_monitor"] = monitor.memory_info().rss
                row["threads_monitor"] = monitor.num_threads()
                row["fds_monitor"] = monitor.num_fds()
            timeline.append(row)
            with open(out / "timeline.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
        watched_s = time.monotonic() - t0
        lat = load.latencies()
        lat_tail = load.latencies(time.monotonic() - args.tail_min * 60.0)
    finally:
        load.stop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(watched.pid, signal.SIGTERM)  # memtui writes its report and stops the run
        try:
            memtui_code: int | None = watched.wait(60)
        except subprocess.TimeoutExpired:
            memtui_code = None
        for proc in (watched, control):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    rec = read_recording(db.with_name(f"soak-{worker_b.pid}.db"))
    steady = [r for r in timeline if r["t"] >= args.warmup_s and "rss_b" in r]
    ts = [r["t"] for r in steady]
    first, last = steady[0], steady[-1]
    span = last["t"] - first["t"]
    rate_a = (last["req_a"] - first["req_a"]) / span
    rate_b = (last["req_b"] - first["req_b"]) / span
    per_10min = []
    for i in range(0, len(steady) - 1, max(1, int(600 / args.every))):
        j = min(len(steady) - 1, i + int(600 / args.every))
        a = steady[j]["req_a"] - steady[i]["req_a"]
        b = steady[j]["req_b"] - steady[i]["req_b"]
        if a > 0 and j > i:
            per_10min.append(round(b / a, 3))
    rec_t, rec_blocks = rec.pop("t", []), rec.pop("blocks", [])
    keep = [
        (t, b)
        for t, b in zip(rec_t, rec_blocks, strict=True)
        if b is not None and t - rec_t[0] >= args.warmup_s
    ]
    blocks_slope = (
        float(np.polyfit(np.asarray([t for t, _ in keep]) / 3600.0, [b for _, b in keep], 1)[0])
        if len(keep) > 2
        else None
    )
    tail = [r for r in steady if r["t"] >= last["t"] - args.tail_min * 60.0]
    tts = [r["t"] for r in tail]

    def cpu_per_req(rows: list[dict[str, Any]], cpu: str, req: str) -> float | None:
        d_req = rows[-1][req] - rows[0][req]
        return (rows[-1][cpu] - rows[0][cpu]) / d_req if d_req > 0 else None

    cpu_a, cpu_b = cpu_per_req(steady, "cpu_a", "req_a"), cpu_per_req(steady, "cpu_b", "req_b")
    cpu_ratio_per_10min = []
    for i in range(0, len(steady) - 1, max(1, int(600 / args.every))):
        j = min(len(steady) - 1, i + int(600 / args.every))
        ca = cpu_per_req(steady[i : j + 1], "cpu_a", "req_a")
        cb = cpu_per_req(steady[i : j + 1], "cpu_b", "req_b")
        if ca and cb and j > i:
            cpu_ratio_per_10min.append(round(cb / ca, 3))
    figures = {
        "minutes": round(watched_s / 60.0, 1),
        "rate_per_service": args.rate or None,
        "cpu_ms_per_request": {
            "control_worker": round(cpu_a * 1000, 3) if cpu_a else None,
            "watched_worker": round(cpu_b * 1000, 3) if cpu_b else None,
            "ratio": round(cpu_b / cpu_a, 3) if cpu_a and cpu_b else None,
            "ratio_per_10min": cpu_ratio_per_10min,
            "watched_master_s": round(last["cpu_master_b"] - first["cpu_master_b"], 1),
            "monitor_s": round(last["cpu_monitor"] - first["cpu_monitor"], 1),
            "span_s": round(span, 1),
        },
        "latency_ms": {
            "control": percentiles_ms(lat.get(port_a, array.array("d"))),
            "watched": percentiles_ms(lat.get(port_b, array.array("d"))),
            "tail_control": percentiles_ms(lat_tail.get(port_a, array.array("d"))),
            "tail_watched": percentiles_ms(lat_tail.get(port_b, array.array("d"))),
        },
        "tail_slope_mb_per_h": {
            "minutes": round((tts[-1] - tts[0]) / 60.0, 1) if tts else 0.0,
            "monitor_rss": slope_mb_per_h(tts, [r["rss_monitor"] for r in tail]),
            "watched_worker_rss": slope_mb_per_h(tts, [r["rss_b"] for r in tail]),
            "control_worker_rss": slope_mb_per_h(tts, [r["rss_a"] for r in tail]),
            "memtui_in_target": slope_mb_per_h(tts, [r["rss_b"] - r["rss_a"] for r in tail]),
        },
        "memtui_exit": memtui_code,
        "requests": {"control": last["req_a"], "watched": last["req_b"]},
        "failed": {"control": last["failed_a"], "watched": last["failed_b"]},
        "req_per_s": {"control": round(rate_a, 1), "watched": round(rate_b, 1)},
        "throughput_ratio": round(rate_b / rate_a, 3) if rate_a else None,
        "throughput_ratio_per_10min": per_10min,
        "slope_mb_per_h": {
            "monitor_rss": slope_mb_per_h(ts, [r["rss_monitor"] for r in steady]),
            "watched_worker_rss": slope_mb_per_h(ts, [r["rss_b"] for r in steady]),
            "control_worker_rss": slope_mb_per_h(ts, [r["rss_a"] for r in steady]),
            "memtui_in_target": slope_mb_per_h(ts, [r["rss_b"] - r["rss_a"] for r in steady]),
        },
        "blocks_slope_per_h": round(blocks_slope, 1) if blocks_slope is not None else None,
        "rss_mb": {
            "monitor_first_last": [
                round(first["rss_monitor"] / MB, 1),
                round(last["rss_monitor"] / MB, 1),
            ],
            "watched_minus_control_first_last": [
                round((first["rss_b"] - first["rss_a"]) / MB, 1),
                round((last["rss_b"] - last["rss_a"]) / MB, 1),
            ],
        },
        "threads": {
            "worker_first_last": [first["threads_b"], last["threads_b"]],
            "monitor_first_last": [first["threads_monitor"], last["threads_monitor"]],
        },
        "fds": {
            "worker_first_last": [first["fds_b"], last["fds_b"]],
            "monitor_first_last": [first["fds_monitor"], last["fds_monitor"]],
        },
        "recording": rec,
        "expected_samples": int(watched_s),
    }
    (out / "figures.json").write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
