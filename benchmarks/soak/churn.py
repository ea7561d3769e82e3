"""Provides the monitor-churn scenario: connect/disconnect cycles and concurrent viewers against
one real agent, with the agent's threads, fds and RSS before and after and the target's speed.

The target is a real process that does a fixed unit of Python work in a loop and writes its
iteration count to a file every 0.2 s; memtui attaches to it by gdb. Its speed during the churn
over its speed just before is the slowdown (a figure, not an assertion: the machine is shared).

    python benchmarks/soak/churn.py --cycles 1000 --viewers 8 --viewer-s 20

tests/test_reliability_churn.py runs the same code with small counts.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from memtui.remote.attach import attach, detach
from memtui.remote.client import AgentClient, AgentUnavailable

TARGET = """\
import os, sys, time
path = sys.argv[1]
parent = os.getppid()
n = 0
last = time.monotonic()
print("ready", flush=True)
while os.getppid() == parent:  # a scenario that died leaves no busy target behind
    sum(i * i for i in range(200))
    n += 1
    now = time.monotonic()
    if now - last >= 0.2:
        with open(path + ".tmp", "w") as f:
            f.write(f"{now} {n}")
        os.replace(path + ".tmp", path)
        last = now
"""


@dataclass
class Reading:
    """The target's own figures (/proc): threads, open fds, RSS bytes."""

    threads: int
    fds: int
    rss_bytes: int


@dataclass
class ChurnFigures:
    cycles: int
    cycles_failed: int
    cycle_ms_median: float
    viewers: int
    viewer_frames: int
    viewer_errors: int
    before: Reading
    after: Reading
    rate_before: float
    """Target loop iterations per second just before the churn."""
    rate_after: float
    """... and once it is over (the machine is shared: the baseline is their mean)."""
    rate_churn: float
    rate_viewers: float

    def slowdown(self, rate: float) -> float:
        """Undisturbed speed over the speed during a phase (>1: the phase slowed the target)."""
        base = (self.rate_before + self.rate_after) / 2.0
        return round(base / rate, 3) if rate else float("inf")


class TargetDied(RuntimeError):
    """The target exited during the scenario: memtui must never make that happen."""


def read(pid: int) -> Reading:
    with open(f"/proc/{pid}/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    if "VmRSS" not in status:  # a zombie: the process has exited, its memory is gone
        raise TargetDied(f"pid {pid} exited ({status.get('State', '?').strip()})")
    return Reading(
        threads=int(status["Threads"]),
        fds=len(os.listdir(f"/proc/{pid}/fd")),
        rss_bytes=int(status["VmRSS"].split()[0]) * 1024,
    )


class Target:
    """The working target process and its iteration counter."""

    def __init__(self, directory: Path) -> None:
        self.counter = directory / "count"
        self.stderr_path = directory / "churn_target.err"
        script = directory / "churn_target.py"
        script.write_text(TARGET)
        with self.stderr_path.open("w") as err:  # faulthandler: a crash leaves its traceback
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-X", "faulthandler", str(script), str(self.counter)],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
        assert self.proc.stdout is not None and self.proc.stdout.readline().strip() == "ready"
        while not self.counter.exists():
            time.sleep(0.05)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def death(self) -> str:
        """How the target ended and the end of its stderr ('' while it runs)."""
        if self.proc.poll() is None:
            return ""
        err = self.stderr_path.read_text(errors="replace")
        shown = err if len(err) < 6000 else f"{err[:4000]}\n...\n{err[-2000:]}"
        return f"the target exited with status {self.proc.returncode}; its stderr:\n{shown}"

    def count(self) -> tuple[float, int]:
        t, n = self.counter.read_text().split()
        return float(t), int(n)

    def rate_during(self, work: object) -> float:
        """Iterations per second while ``work()`` runs."""
        t0, n0 = self.count()
        work()  # type: ignore[operator]
        time.sleep(0.25)
        t1, n1 = self.count()
        return (n1 - n0) / (t1 - t0) if t1 > t0 else 0.0

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        detach(self.pid)
        self.proc.kill()
        self.proc.wait(10)


def settle(pid: int, baseline: Reading, timeout_s: float = 5.0) -> Reading:
    """The target's reading once its connection threads and fds have gone (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    now = read(pid)
    while (now.threads, now.fds) != (baseline.threads, baseline.fds):
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
        now = read(pid)
    return now


def run_churn(
    target: Target, cycles: int, viewers: int, viewer_s: float, measure_s: float = 2.0
) -> ChurnFigures:
    """``measure_s``: how long the target's undisturbed speed is measured first (0: a test)."""
    path = attach(target.pid).socket_path
    with AgentClient(path) as warm:  # the first frame builds the agent's caches
        warm.request("frame", since=0)
    time.sleep(0.5 if measure_s else 0.1)
    before = read(target.pid)
    rate_before = target.rate_during(lambda: time.sleep(measure_s))
    durations: list[float] = []
    failed = 0

    def cycle_all() -> None:
        nonlocal failed
        for _ in range(cycles):
            started = time.perf_counter()
            try:
                with AgentClient(path, timeout_s=5.0) as client:
                    client.request("frame", since=0)
            except AgentUnavailable:
                failed += 1
            durations.append(time.perf_counter() - started)

    rate_churn = target.rate_during(cycle_all)
    frames = [0] * viewers
    errors = [0] * viewers

    def viewer(i: int, until: float) -> None:
        try:
            with AgentClient(path, timeout_s=5.0) as client:
                seq = 0
                while time.monotonic() < until:
                    reply = client.request("frame", since=seq)
                    seq = int(reply.get("seq", seq))
                    frames[i] += 1
                    time.sleep(0.1)  # a monitor refreshing 10x faster than the default
        except AgentUnavailable:
            errors[i] += 1

    def watch_all() -> None:
        until = time.monotonic() + viewer_s
        threads = [threading.Thread(target=viewer, args=(i, until)) for i in range(viewers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    rate_viewers = target.rate_during(watch_all)
    after = settle(target.pid, before)
    rate_after = target.rate_during(lambda: time.sleep(measure_s))
    durations.sort()
    return ChurnFigures(
        cycles=cycles,
        cycles_failed=failed,
        cycle_ms_median=round(durations[len(durations) // 2] * 1e3, 2) if durations else 0.0,
        viewers=viewers,
        viewer_frames=sum(frames),
        viewer_errors=sum(errors),
        before=before,
        after=after,
        rate_before=round(rate_before, 1),
        rate_after=round(rate_after, 1),
        rate_churn=round(rate_churn, 1),
        rate_viewers=round(rate_viewers, 1),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--viewers", type=int, default=8)
    parser.add_argument("--viewer-s", type=float, default=20.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        target = Target(Path(tmp))
        try:
            figures = run_churn(target, args.cycles, args.viewers, args.viewer_s)
        finally:
            target.stop()
    out = asdict(figures)
    out["slowdown_churn"] = figures.slowdown(figures.rate_churn)
    out["slowdown_viewers"] = figures.slowdown(figures.rate_viewers)
    out["agent_rss_growth_bytes"] = figures.after.rss_bytes - figures.before.rss_bytes
    print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
