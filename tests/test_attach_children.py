"""`memtui attach --children PID`: a running tree gets agents (existing and future forks)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from memtui.cli import main
from memtui.remote.client import find_socket

pytestmark = pytest.mark.skipif(shutil.which("gdb") is None, reason="attach needs gdb")

TREE = textwrap.dedent("""\
    import os, sys, time
    log = open(sys.argv[1], "a", buffering=1)

    def child(seconds):
        pid = os.fork()
        if pid == 0:
            end = time.monotonic() + seconds
            junk = []
            while time.monotonic() < end:
                junk.append("x" * 100)
                del junk[:-1000]
                time.sleep(0.01)
            os._exit(0)
        log.write(f"{pid}\\n")
        return pid

    kids = [child(120), child(120)]
    print("ready", flush=True)
    while True:  # a new short-lived worker every 2 s, as a recycling pool does
        time.sleep(2.0)
        child(4.0)
        while True:
            try:
                if os.waitpid(-1, os.WNOHANG)[0] == 0:
                    break
            except ChildProcessError:
                break
    """)


@pytest.fixture
def tree(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path]]:
    script = tmp_path / "tree.py"
    script.write_text(TREE)
    forks = tmp_path / "forks.txt"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(forks)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    try:
        yield proc, forks
    finally:
        pids = [proc.pid]
        with contextlib.suppress(psutil.Error):
            pids += [c.pid for c in psutil.Process(proc.pid).children(recursive=True)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        proc.wait()


def test_attach_children_covers_the_tree_and_later_forks(
    tree: tuple[subprocess.Popen[str], Path], tmp_path: Path
) -> None:
    proc, forks = tree
    before = {int(x) for x in forks.read_text().split()}
    out = tmp_path / "tree.json"
    code = main(
        [
            "attach",
            "--children",
            str(proc.pid),
            "--headless",
            "--duration",
            "10",
            "--sample-interval",
            "0.5",
            "--output",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    by_pid = {p["pid"]: p for p in report["processes"]}
    assert report["processes"][0]["pid"] == proc.pid
    long_lived = sorted(before)[:2]
    assert set(long_lived) <= set(by_pid), (long_lived, list(by_pid))  # attached by gdb
    later = {int(x) for x in forks.read_text().split()} - before
    followed = later & set(by_pid)
    assert followed, (later, list(by_pid))  # forked after attach: started their own agent
    assert all(by_pid[p]["role"] == "worker" for p in followed)
    # A worker lives 4 s: one seen in its last moments may exit before its first sample.
    sampled = [p for p in followed if by_pid[p]["summary"]["samples"] > 0]
    assert sampled, {p: by_pid[p]["summary"] for p in followed}
    time.sleep(0.5)
    for pid in long_lived:
        assert find_socket(pid) is not None  # the agents stay (the tree runs on)
