"""follow_forks in one real process: a fork gets a fresh agent; the heap dump's writer does not."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from memtui.remote.client import AgentClient

TARGET = textwrap.dedent("""\
    import os, sys, time
    import memtui.probe.agent as agent

    agent.follow_forks(True)
    agent.start_agent(sock_dir=sys.argv[1], record_path=sys.argv[2])
    KEEP = [str(i) * 5 for i in range(50000)]
    print("ready", flush=True)
    sys.stdin.readline()  # "fork"
    pid = os.fork()
    if pid == 0:
        time.sleep(60)
        os._exit(0)
    print(pid, flush=True)
    sys.stdin.readline()  # quit: kill the child, leave
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    """)


def test_fork_gets_its_own_agent_history_and_recording_but_not_the_dump_writer(
    tmp_path: Path,
) -> None:
    sock_dir = tmp_path / "socks"
    sock_dir.mkdir(mode=0o700)
    script = tmp_path / "target.py"
    script.write_text(TARGET)
    record = tmp_path / "run.db"
    proc = subprocess.Popen(
        [sys.executable, str(script), str(sock_dir), str(record)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        parent_sock = sock_dir / f"agent-{proc.pid}.sock"
        with AgentClient(str(parent_sock)) as client:
            reply = client.request("heap_dump", out_dir=str(tmp_path), writer="fork", wait_s=60)
            assert reply["writer"] == "fork" and not reply["pending"]
            time.sleep(0.5)
            # the dump's copy started no agent: only the parent's socket is there
            assert os.listdir(sock_dir) == [parent_sock.name]
            parent_started = float(client.hello["started_at"])
        proc.stdin.write("fork\n")
        proc.stdin.flush()
        child = int(proc.stdout.readline())
        child_sock = sock_dir / f"agent-{child}.sock"
        deadline = time.monotonic() + 20
        while not child_sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        deadline = time.monotonic() + 20
        while True:  # the socket listens a moment before the recorder is open
            with AgentClient(str(child_sock)) as client:
                if client.hello["recording"] or time.monotonic() > deadline:
                    break
            time.sleep(0.05)
        with AgentClient(str(child_sock)) as client:
            assert client.hello["pid"] == child
            assert client.hello["recording"] == str(tmp_path / f"run-{child}.db")
            assert float(client.hello["started_at"]) > parent_started + 0.3  # a fresh agent
            frame = client.request("frame", since=0)
            assert all(s[1] > parent_started + 0.3 for s in frame["samples"])  # own history
        with AgentClient(str(parent_sock)) as client:
            assert client.hello["pid"] == proc.pid  # the parent's agent serves on
        proc.stdin.write("quit\n")
        proc.stdin.flush()
        assert proc.wait(20) == 0
        # the child was SIGKILLed: its socket stays until someone prunes it
        from memtui.probe.follow import prune_dead_sockets

        assert child_sock.exists()
        assert prune_dead_sockets(str(sock_dir)) == 1 and not child_sock.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
