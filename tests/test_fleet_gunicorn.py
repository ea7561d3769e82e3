"""A real gunicorn pool under `memtui run --headless`: every worker has its own agent and
verdict, and recycling workers (--max-requests, SIGKILL) piles up no socket, thread or fd."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
from pool_harness import (
    GUNICORN,
    children_of,
    count,
    free_port,
    get,
    kill_group,
    start_pool,
    wait_until_serving,
)

from memtui.probe.protocol import socket_path

pytest.importorskip("flask")
pytestmark = pytest.mark.skipif(not GUNICORN.exists(), reason="gunicorn is not installed")


def _memtui_pid_tree(proc_pid: int) -> tuple[int, int]:
    """(memtui's own pid, the gunicorn master's pid)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        kids = children_of(proc_pid)
        if kids:
            return proc_pid, kids[0]
        time.sleep(0.1)
    raise AssertionError("gunicorn did not start")


def test_each_worker_gets_its_own_verdict_and_fail_on_leak(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "pool.json"
    args = ["--headless", "--fail-on-leak", "--sample-interval", "0.5", "--duration", "30"]
    proc = start_pool(tmp_path, port, [*args, "--output", str(out)], [])
    try:
        wait_until_serving(port, proc)
        leaker = get(port, "/leak")
        workers = {get(port) for _ in range(40)}
        code = proc.wait(60)
    finally:
        kill_group(proc)
    report = json.loads(out.read_text())
    assert code == 3, (tmp_path / "err.log").read_text()  # one worker leaks: the build fails
    by_pid = {p["pid"]: p for p in report["processes"]}
    root = report["processes"][0]
    assert root["role"] == "root" and root["pid"] == report["source"]["pid"]
    assert leaker in by_pid and workers <= set(by_pid), (workers, list(by_pid))
    assert by_pid[leaker]["role"] == "worker" and by_pid[leaker]["ppid"] == root["pid"]
    assert by_pid[leaker]["leak_detection"]["verdict"] == "leak"
    assert by_pid[leaker]["leak_detection"]["leak_detected"] is True
    assert report["pool"]["leaking_pids"] == [leaker]
    # the root's own sections are the master's, and the master does not leak
    assert report["leak_detection"]["leak_detected"] is False
    assert root["leak_detection"]["verdict"] != "leak"
    for entry in report["processes"]:
        assert entry["summary"]["samples"] > 0 and entry["started_at"]
        assert entry["exited"] is True and entry["ended_at"]  # all stopped with the master
    assert "LEAK" in (tmp_path / "err.log").read_text()


def test_recycled_workers_pile_up_nothing(tmp_path: Path) -> None:
    port = free_port()
    out = tmp_path / "pool.json"
    args = ["--headless", "--sample-interval", "0.5", "--duration", "40"]
    gunicorn_args = ["--max-requests", "5", "--max-requests-jitter", "0"]
    proc = start_pool(tmp_path, port, [*args, "--output", str(out)], gunicorn_args)
    memtui_pid = proc.pid
    try:
        wait_until_serving(port, proc)
        _, master = _memtui_pid_tree(memtui_pid)
        for _ in range(20):  # warm up: the first workers recycle
            get(port)
            time.sleep(0.15)
        time.sleep(1.0)
        threads0 = count(f"/proc/{master}/task")
        fds0 = count(f"/proc/{master}/fd")
        memtui_fds0 = count(f"/proc/{memtui_pid}/fd")
        seen: set[int] = set()
        for _ in range(80):  # 80 requests at 5 per worker: about 16 more workers
            seen.add(get(port))
            time.sleep(0.15)
        # a worker killed hard cannot remove its own socket: it is pruned for it
        victim = get(port)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 15
        while os.path.exists(socket_path(victim)) and time.monotonic() < deadline:
            get(port)
            time.sleep(0.2)
        assert not os.path.exists(socket_path(victim))
        time.sleep(1.0)
        assert len(seen) >= 10, seen
        dead = [pid for pid in seen if not os.path.exists(f"/proc/{pid}")]
        assert len(dead) >= 8
        assert [pid for pid in dead if os.path.exists(socket_path(pid))] == []
        live = children_of(master)
        assert all(os.path.exists(socket_path(pid)) for pid in live)  # the live ones: agents
        # The master's agent keeps its threads; a heap summary under way adds its reaper (one).
        assert count(f"/proc/{master}/task") <= threads0 + 1
        assert count(f"/proc/{master}/fd") <= fds0 + 2
        assert count(f"/proc/{memtui_pid}/fd") <= memtui_fds0 + 4  # dead workers: closed
        os.kill(memtui_pid, signal.SIGINT)  # end the watch now: the report is written
        proc.wait(60)
    finally:
        kill_group(proc)
    report = json.loads(out.read_text())
    pids = [p["pid"] for p in report["processes"]]
    assert len(pids) == len(set(pids))
    assert report["pool"]["processes_seen"] >= 12
    found = seen & set(pids)
    assert len(found) >= 0.7 * len(seen), (len(found), len(seen))  # short-lived ones may slip
    for entry in report["processes"][1:]:
        assert entry["role"] == "worker"
        verdicts = ("ok", "suspected", "leak", "insufficient_data")
        assert entry["leak_detection"]["verdict"] in verdicts
