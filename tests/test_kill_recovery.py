"""Provides the kill tests: SIGKILL a recording writer at random moments, then rebuild the report.

Two writers, each a real process sampling at 20 Hz with the default 1 s commit spacing: a target
recording itself (what the agent does) and a monitor recording another process from outside.
After each kill the recording must open, pass SQLite's integrity check, build the JSON and
HTML reports, and miss at most a few seconds before the kill.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from memtui.engine.report.json_report import build_report
from memtui.engine.report.recording import Recording
from memtui.engine.report.replay import build_report_input_from_recording

MAX_LOSS_S = 2.5
"""Commit spacing (1 s) + one sampling period + scheduling slack on a loaded 2-core machine."""

WRITER = r"""
import os, sys, time
from memtui.probe.memory import ProcMemoryReader
from memtui.probe.recorder import Recorder, emit_marker
path, role, pid, raw_s = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
reader = ProcMemoryReader(pid or None)
rec = Recorder(path, {"role": role, "pid": pid or os.getpid(), "argv": ["writer"]},
               raw_s=raw_s, prune_every_s=2.0, snapshot_every_s=0.5)
hoard = []
announced = False
i = 0
while True:
    i += 1
    now = time.time()
    m = reader.read()
    if role != "monitor":
        hoard.append(bytearray(20_000))  # a leak of ~0.4 MB/s
        rec.add_snapshot(now, {"census": {"counts": {"bytearray": len(hoard)},
                                          "total_objects": len(hoard)}}, rss=m.rss_bytes)
    rec.add_sample(now, m.rss_bytes, m.vms_bytes, None, len(hoard))
    if i % 20 == 0:
        emit_marker(f"tick {i}", now)
    if rec.maybe_flush() and not announced:
        print("ready", flush=True)
        announced = True
    time.sleep(0.05)
"""


def _spawn_writer(path: Path, role: str, pid: int, raw_s: float) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), role, str(pid), str(raw_s)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


def _kill_and_check(path: Path, proc: subprocess.Popen[str], rng: random.Random) -> float:
    time.sleep(rng.uniform(0.3, 3.5))
    killed_at = time.time()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    with Recording(path) as rec:
        span = rec.span()
        assert span is not None
        assert "ended_at" not in rec.meta
    loss = killed_at - span[1]
    assert loss < MAX_LOSS_S, f"lost {loss:.2f} s of samples"
    report = build_report(build_report_input_from_recording(path))
    assert report["summary"]["samples"] > 0
    assert report["recording"]["clean_end"] is False
    assert "without a clean close" in report["source"]["note"]
    return loss


@pytest.mark.parametrize("raw_s", [86400.0, 3.0], ids=["default-retention", "folding-often"])
def test_sigkilled_target_loses_at_most_a_few_seconds(tmp_path: Path, raw_s: float) -> None:
    rng = random.Random(int(raw_s) + 6)
    losses = []
    for round_ in range(3):
        path = tmp_path / f"target-{round_}.db"
        proc = _spawn_writer(path, "agent", 0, raw_s)
        losses.append(_kill_and_check(path, proc, rng))
    print("seconds lost per kill:", [round(x, 2) for x in losses])
    report = build_report(build_report_input_from_recording(tmp_path / "target-2.db"))
    assert report["markers"], "markers written before the kill survive"
    assert report["source"]["target_exited"] is True


def test_sigkilled_monitor_loses_at_most_a_few_seconds(tmp_path: Path) -> None:
    from memtui.engine.report.html_report import render_html

    target = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        rng = random.Random(42)
        losses = []
        for round_ in range(3):
            path = tmp_path / f"monitor-{round_}.db"
            proc = _spawn_writer(path, "monitor", target.pid, 86400.0)
            losses.append(_kill_and_check(path, proc, rng))
        print("seconds lost per kill:", [round(x, 2) for x in losses])
        report = build_report(build_report_input_from_recording(tmp_path / "monitor-0.db"))
        assert report["source"]["pid"] == target.pid
        assert report["source"]["kind"] == "outside"
        assert "object_counts" in report["source"]["unavailable"]
        assert report["source"]["target_exited"] is False
        assert "memory-chart" in render_html(report)
    finally:
        target.kill()
        target.wait()
