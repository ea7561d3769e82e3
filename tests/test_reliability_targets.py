"""Stopped and slow targets: a SIGSTOP'd process, a main thread in a long C call holding the
GIL, and a process with 200 threads. Attach, watch, dump and detach must each end in bounded
time with a line that names the real cause (never "no agent" for an agent that is there, never
"exited" for a process that lives), and memtui must not resume a process the user stopped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from reliability_harness import MEMTUI, kill, memtui, one_clear_line, spawn_target

from memtui.remote.client import AgentClient
from memtui.remote.procstate import process_state

pytestmark = [
    pytest.mark.skipif(shutil.which("gdb") is None, reason="attach needs gdb"),
    pytest.mark.timeout(120),
]

BUSY = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.02)\n"
# Loops in Python until told (a file appears), then sleeps in C with the GIL held.
GIL_LATER = """\
import ctypes, os, sys, time
print("ready", flush=True)
while not os.path.exists(sys.argv[0] + ".go"):
    time.sleep(0.02)
ctypes.PyDLL("libc.so.6").sleep(60)
"""
THREADS = """\
import threading, time
stop = threading.Event()
for i in range(200):
    threading.Thread(target=stop.wait, name=f"worker-{i}", daemon=True).start()
print("ready", flush=True)
while True:
    time.sleep(0.02)
"""


def _threads(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("Threads:")).split()[1])


def test_stopped_target_is_named_at_once_and_left_stopped(tmp_path: Path) -> None:
    target = spawn_target(BUSY, tmp_path)
    try:
        target.send_signal(signal.SIGSTOP)
        # (heapdump takes attach's path to the agent: the same check answers it)
        for args in (
            ["attach", str(target.pid), "--headless", "--duration", "1"],
            ["detach", str(target.pid)],
        ):
            started = time.monotonic()
            done = memtui(*args)
            assert done.returncode != 0, args
            line = one_clear_line(done.stderr)
            assert f"pid {target.pid} is stopped" in line and "kill -CONT" in line, line
            assert time.monotonic() - started < 8.0, args
        assert process_state(target.pid) == "T", "memtui resumed a stopped process"

        # stopped in the middle of a watch: the watch goes on and the report says it lives
        target.send_signal(signal.SIGCONT)
        out = tmp_path / "r.json"
        watch = subprocess.Popen(
            [*MEMTUI, "attach", str(target.pid), "--headless", "--duration", "4",
             "--sample-interval", "0.5", "--output", str(out)],
            stderr=subprocess.PIPE, text=True,
            env={**os.environ, "MEMTUI_AGENT_TIMEOUT": "0.5"},  # the stop outlasts a request
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not list(Path("/tmp").glob(f"memtui-*/agent-{target.pid}.sock")):
            assert time.monotonic() < deadline and watch.poll() is None, "never attached"
            time.sleep(0.1)
        time.sleep(0.5)
        target.send_signal(signal.SIGSTOP)
        time.sleep(1.5)
        target.send_signal(signal.SIGCONT)
        _, err = watch.communicate(timeout=40)
        assert watch.returncode == 0, err
        report = json.loads(out.read_text())
        assert report["source"]["target_exited"] is False, err
        assert f"pid {target.pid}: the agent is not answering (pid {target.pid} is stopped" in err
        assert "the agent answers again" in err, err
        assert "Traceback" not in err
    finally:
        target.send_signal(signal.SIGCONT)
        memtui("detach", str(target.pid))
        kill(target)


def test_agent_behind_a_gil_holding_c_call_is_not_reinjected(tmp_path: Path) -> None:
    target = spawn_target(GIL_LATER, tmp_path)
    try:
        attached = memtui("attach", str(target.pid), "--headless", "--duration", "1")
        assert attached.returncode == 0, attached.stderr
        Path(f"{target.args[-1]}.go").touch()  # the main thread goes into the C call
        time.sleep(0.5)
        started = time.monotonic()
        dump = memtui(
            "heapdump", str(target.pid), "--out-dir", str(tmp_path), MEMTUI_AGENT_TIMEOUT="2"
        )
        elapsed = time.monotonic() - started
        assert dump.returncode != 0
        line = one_clear_line(dump.stderr)
        assert "does not answer" in line and "nothing was injected" in line, line
        assert elapsed < 10.0, elapsed
        assert target.poll() is None
    finally:
        kill(target)


def test_two_hundred_threads_dump_watch_detach(tmp_path: Path) -> None:
    target = spawn_target(THREADS, tmp_path)
    try:
        dump = memtui("heapdump", str(target.pid), "--out-dir", str(tmp_path / "d"), timeout_s=60)
        assert dump.returncode == 0, dump.stderr
        assert len(list((tmp_path / "d").glob("*.mtdump"))) == 1
        # a monitor's frame from the agent the dump attached (what `memtui attach` polls)
        with AgentClient.for_pid(target.pid) as client:
            frame = client.request("frame", since=0)
        assert frame["samples"], frame
        detached = memtui("detach", str(target.pid))
        assert detached.returncode == 0, detached.stderr
        assert target.poll() is None
        deadline = time.monotonic() + 5.0  # memtui's own threads end within a second or two
        while _threads(target.pid) != 201 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _threads(target.pid) == 201
    finally:
        kill(target)
