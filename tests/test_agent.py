"""Provides end-to-end tests of the in-target agent: real target processes, real Unix sockets."""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memtui.probe import protocol

MAIN = str(Path(__file__).resolve().parent.parent)

TARGET = textwrap.dedent(
    """\
    import sys, time
    sys.path.insert(0, {main!r})
    import memtui.probe.bootstrap
    LEAK = []


    def main():
        deadline = time.monotonic() + {lifetime}
        while time.monotonic() < deadline:
            t0 = time.monotonic()
            for _ in range(100):
                LEAK.append(bytearray(1000))  # LEAKING LINE
            words = " ".join(str(i) for i in range(300)).split()
            del words
            time.sleep(max(0.0, 0.1 - (time.monotonic() - t0)))


    main()
    """
)


def _leak_line(script: str) -> int:
    return next(i for i, line in enumerate(script.splitlines(), 1) if "LEAKING LINE" in line)


class Target:
    """A target process running the agent, with its socket."""

    def __init__(self, python: str = sys.executable, lifetime: float = 120.0, **env: str) -> None:
        self.tmp = tempfile.mkdtemp(prefix="mtt")  # short: AF_UNIX paths max 107 bytes
        self.sock_dir = os.path.join(self.tmp, "s")
        self.script = TARGET.format(main=MAIN, lifetime=lifetime)
        self.script_path = os.path.join(self.tmp, "target.py")
        Path(self.script_path).write_text(self.script)
        self.leak_line = _leak_line(self.script)
        full_env = dict(
            os.environ,
            MEMTUI_SOCKET_DIR=self.sock_dir,
            MEMTUI_WATCH_WINDOW="0.2",
            MEMTUI_WATCH_PERIOD="1.0",
            **env,
        )
        self.proc = subprocess.Popen(
            [python, self.script_path], env=full_env, stderr=subprocess.PIPE
        )
        self.sock_path = os.path.join(self.sock_dir, f"agent-{self.proc.pid}.sock")
        deadline = time.monotonic() + 15
        while not os.path.exists(self.sock_path):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                self.kill()
                raise AssertionError(f"the agent did not come up: {err}")
            time.sleep(0.02)
        self.started = time.monotonic()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        if self.proc.stderr:
            self.proc.stderr.close()


class Client:
    """A minimal viewer: one connection, one request at a time."""

    def __init__(self, path: str, timeout: float = 10.0, hello: bool = True) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.next_id = 0
        self.hello = self.request("hello", version=protocol.PROTOCOL_VERSION) if hello else {}

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        self.next_id += 1
        protocol.write_message(self.sock, {"cmd": cmd, "id": self.next_id, **args})
        reply = protocol.read_message(self.sock)
        assert reply["id"] == self.next_id
        return reply

    def close(self) -> None:
        self.sock.close()


@contextlib.contextmanager
def client(path: str, timeout: float = 10.0) -> Iterator[Client]:
    c = Client(path, timeout)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    t = Target()
    yield t
    t.kill()


def test_keeps_collecting_without_a_viewer(target: Target) -> None:
    """Nobody connects for 5 s; then the ring holds about one sample per second."""
    time.sleep(max(0.0, target.started + 5.0 - time.monotonic()))
    with client(target.sock_path) as c:
        samples = c.request("frame", since=0)["samples"]
    assert 4 <= len(samples) <= 8
    seqs = [s[0] for s in samples]
    assert seqs == sorted(seqs) and seqs[0] == 1
    assert all(s[2] > 0 and s[3] >= s[2] and s[5] > 0 for s in samples)  # rss, vms, blocks


def test_private_directory_and_socket(target: Target) -> None:
    assert stat.S_IMODE(os.stat(target.sock_dir).st_mode) == 0o700
    st = os.stat(target.sock_path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600


def test_watch_mode_names_the_leaking_line(target: Target) -> None:
    with client(target.sock_path) as c:
        deadline = time.monotonic() + 30
        top: dict[str, Any] = {}
        while time.monotonic() < deadline:
            frame = c.request("frame", since=0)
            assert frame["tracing"]["mode"] == "watch"
            sites = frame["sites"] or []
            if sites:
                top = sites[0]
                if (top["file"], top["line"]) == (target.script_path, target.leak_line):
                    break
            time.sleep(0.5)
        assert (top.get("file"), top.get("line")) == (target.script_path, target.leak_line)
        assert top["size_bytes"] > 0 and top["frames"][0] == [top["file"], top["line"]]
        tracing = frame["tracing"]
        assert tracing["windows"] >= 1 and 0 < tracing["duty_cycle"] < 0.5


def test_commands(target: Target) -> None:
    with client(target.sock_path) as c:
        hello = c.hello
        assert hello["ok"] and hello["pid"] == target.proc.pid
        assert hello["python"] == "{}.{}.{}".format(*sys.version_info[:3])
        assert hello["argv"] == [target.script_path] and "watch" in hello["capabilities"]
        assert {"executable", "started_at", "version"} <= hello.keys()

        first = c.request("frame", since=0)
        assert first["seq"] == first["samples"][-1][0] and first["gc"]["collections"]
        assert first["census"]["total_objects"] > 0 and "history" not in first
        time.sleep(1.2)
        later = c.request("frame", since=first["seq"])
        assert later["samples"] and all(s[0] > first["seq"] for s in later["samples"])

        snap = c.request("snapshot")
        assert snap["ok"] and snap["census"]["counts"] and snap["sites"] is not None
        collected = c.request("gc_collect")
        assert collected["collected"] >= 0 and collected["duration_s"] >= 0

        base = c.request("set_baseline")
        assert base["baseline_at"] > 0
        after = c.request("snapshot")
        assert "delta" in after["census"] and "total_delta" in after["census"]
        assert c.request("frame", since=0)["baseline"]["at"] == base["baseline_at"]

        unknown = c.request("launch_missiles")
        assert unknown == {
            "id": c.next_id,
            "ok": False,
            "error": "unknown command 'launch_missiles'",
        }
        dump = c.request("heap_dump")
        assert not dump["ok"] and "out_dir" in dump["error"]  # never a default location
        bad = c.request("frame", since="yesterday")
        assert not bad["ok"] and "since" in bad["error"]

        on = c.request("tracemalloc", on=True, frames=2)
        assert on["tracing"]["mode"] == "continuous" and on["tracing"]["frames"] == 2
        time.sleep(1.2)
        traced = c.request("frame", since=0)
        assert traced["samples"][-1][4] > 0  # traced bytes now reported
        off = c.request("tracemalloc", on=False)
        assert off["tracing"]["mode"] == "watch" and not off["tracing"]["started_by_agent"]

        report = c.request("report_data")
        keys = {"history", "first_census", "latest_census", "gc", "sites", "snapshots"}
        assert keys <= report.keys() and len(report["snapshots"]) == 2
        assert report["history"] and report["first_census"]["taken_at"] <= time.time()


def test_two_viewers_at_once(target: Target) -> None:
    with client(target.sock_path) as a, client(target.sock_path) as b:
        fa = a.request("frame", since=0)
        fb = b.request("frame", since=0)
        assert fa["ok"] and fb["ok"] and fa["agent"]["viewers"] >= 2


def test_too_many_viewers_get_an_error(target: Target) -> None:
    clients = [Client(target.sock_path) for _ in range(8)]
    try:
        extra = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        extra.settimeout(5)
        extra.connect(target.sock_path)
        reply = protocol.read_message(extra)
        assert not reply["ok"] and "too many viewers" in reply["error"]
        extra.close()
    finally:
        for c in clients:
            c.close()
    time.sleep(0.2)
    with client(target.sock_path) as c:
        assert c.request("frame", since=0)["ok"]


def test_viewer_killed_mid_request_does_not_disturb(target: Target) -> None:
    with client(target.sock_path) as c:
        before = c.request("frame", since=0)["seq"]
    half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    half.connect(target.sock_path)
    protocol.write_message(half, {"cmd": "hello", "id": 1, "version": 1})
    half.sendall(b"\x00\x00")  # half a frame header, then gone
    half.close()
    body = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    body.connect(target.sock_path)
    body.sendall(struct.pack(">I", 1000) + b'{"cmd": "hel')  # a body cut short
    body.close()
    time.sleep(1.5)
    with client(target.sock_path) as c:
        frame = c.request("frame", since=before)
    assert frame["samples"] and frame["seq"] > before
    assert target.proc.poll() is None


def _connect_as_nobody(path: str, keep_dac_override: bool) -> str:
    """Fork; the child drops to uid 65534 and tries the socket; returns what it saw."""
    libc = ctypes.CDLL(None, use_errno=True)
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest machinery from here on, just os._exit
        outcome = "?"
        try:
            if keep_dac_override:
                libc.prctl(8, 1, 0, 0, 0)  # PR_SET_KEEPCAPS
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            if keep_dac_override:
                header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
                data = (ctypes.c_uint32 * 6)(0b110, 0b110, 0, 0, 0, 0)  # DAC_OVERRIDE|READ_SEARCH
                if libc.capset(header, data) != 0:
                    raise OSError(ctypes.get_errno(), "capset failed")
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(5)
            s.connect(path)
            s.sendall(protocol.encode({"cmd": "hello", "id": 1, "version": 1}))
            outcome = "closed" if s.recv(100) == b"" else "answered"
        except PermissionError:
            outcome = "permission denied"
        except ConnectionError:  # reset or broken pipe: the agent closed on us
            outcome = "closed"
        except OSError as exc:
            outcome = f"error {exc}"
        os.write(write_fd, outcome.encode())
        os._exit(0)
    os.close(write_fd)
    os.waitpid(pid, 0)
    with os.fdopen(read_fd, "rb") as f:
        return f.read().decode()


def test_peer_of_another_uid_is_refused(target: Target) -> None:
    if os.getuid() != 0:
        pytest.skip("needs root to switch to another uid")
    # The 0700 directory and 0600 socket stop another user before the agent sees them.
    assert _connect_as_nobody(target.sock_path, keep_dac_override=False) == "permission denied"
    # With the file permissions overridden, SO_PEERCRED still refuses uid 65534.
    outcome = _connect_as_nobody(target.sock_path, keep_dac_override=True)
    if outcome.startswith("error capset"):
        pytest.skip("cannot keep CAP_DAC_OVERRIDE here")
    assert outcome == "closed"
    with client(target.sock_path) as c:
        assert c.request("frame", since=0)["agent"]["refused_peers"] >= 1


def test_detach_removes_the_socket_and_the_program_runs_on(target: Target) -> None:
    with client(target.sock_path) as c:
        reply = c.request("detach")
        assert reply["ok"]
        with pytest.raises((ConnectionError, OSError)):
            c.request("frame", since=0)
    deadline = time.monotonic() + 5
    while os.path.exists(target.sock_path) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(target.sock_path)
    time.sleep(0.3)
    assert target.proc.poll() is None


def test_target_killed_mid_frame_gives_connection_error() -> None:
    t = Target()
    try:
        c = Client(t.sock_path, timeout=5)
        c.sock.sendall(struct.pack(">I", 40))  # a request header, body still to come
        os.kill(t.proc.pid, signal.SIGKILL)
        t.proc.wait(5)
        started = time.monotonic()
        with pytest.raises(ConnectionError):
            c.sock.sendall(b'{"cmd": "frame", "id": 2, "since": 0}   ')
            protocol.read_message(c.sock)
        assert time.monotonic() - started < 4
        c.close()
    finally:
        t.kill()


def test_socket_removed_when_the_program_exits() -> None:
    t = Target(lifetime=1.0)
    try:
        assert t.proc.wait(15) == 0
        assert not os.path.exists(t.sock_path)
    finally:
        t.kill()


@pytest.mark.parametrize("mode", ["0755", "other-owner"])
def test_unsafe_socket_directory_is_refused(tmp_path: Path, mode: str) -> None:
    sock_dir = tmp_path / "s"
    sock_dir.mkdir()
    if mode == "0755":
        sock_dir.chmod(0o755)
    else:
        if os.getuid() != 0:
            pytest.skip("needs root to chown")
        sock_dir.chmod(0o700)
        os.chown(sock_dir, 65534, 65534)
    before = os.stat(sock_dir)
    code = f"import sys; sys.path.insert(0, {MAIN!r}); import memtui.probe.bootstrap; print('ran')"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=dict(os.environ, MEMTUI_SOCKET_DIR=str(sock_dir)),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0 and proc.stdout == "ran\n"
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "refusing" in lines[0] and str(sock_dir) in lines[0]
    after = os.stat(sock_dir)
    assert (after.st_mode, after.st_uid) == (before.st_mode, before.st_uid)
    assert os.listdir(sock_dir) == []


FORK_CHECK = textwrap.dedent(
    """\
    import os, sys, tracemalloc
    sys.path.insert(0, {main!r})
    from memtui.probe import agent
    a = agent.start_agent(sock_dir={sock_dir!r}, trace_mode="continuous")
    pid = os.fork()
    if pid == 0:
        ok = agent.current_agent() is None and not tracemalloc.is_tracing()
        os._exit(0 if ok else 3)
    _, status = os.waitpid(pid, 0)
    print(os.waitstatus_to_exitcode(status), os.path.exists(a.sock_path), a.running)
    """
)


def test_forked_child_does_not_run_the_parents_agent() -> None:
    sock_dir = os.path.join(tempfile.mkdtemp(prefix="mtf"), "s")
    proc = subprocess.run(
        [sys.executable, "-c", FORK_CHECK.format(main=MAIN, sock_dir=sock_dir)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.stdout.split() == ["0", "True", "True"], proc.stderr


def _other_pythons() -> list[str]:
    found = []
    for minor in ("3.10", "3.12", "3.13"):
        matches = sorted(glob.glob(f"/root/.pyenv/versions/{minor}.*/bin/python"))
        found.append(matches[-1] if matches else f"missing-{minor}")
    return found


@pytest.mark.parametrize("python", _other_pythons())
def test_agent_runs_under_other_pythons(python: str) -> None:
    if python.startswith("missing-"):
        pytest.skip(f"no CPython {python[8:]} installed")
    t = Target(python=python)
    try:
        with client(t.sock_path) as c:
            version = subprocess.run(
                [python, "-c", "import platform; print(platform.python_version())"],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()
            assert c.hello["python"] == version
            time.sleep(1.3)
            frame = c.request("frame", since=0)
            assert len(frame["samples"]) >= 2 and frame["census"]["total_objects"] > 0
            assert c.request("snapshot")["ok"] and c.request("report_data")["ok"]
            assert c.request("detach")["ok"]
        deadline = time.monotonic() + 5
        while os.path.exists(t.sock_path) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not os.path.exists(t.sock_path) and t.proc.poll() is None
    finally:
        t.kill()


def test_an_agent_that_is_stopping_says_so_and_counts_as_gone(tmp_path: Path) -> None:
    """A program that ends as memtui connects (``memtui run -- python -c ...``): its agent is
    stopping; it used to answer "too many viewers (8)", which the launcher took for an error."""
    from memtui.probe.server import AgentServer
    from memtui.remote.client import AgentClient, AgentUnavailable

    sock_dir = tmp_path / "s"
    sock_dir.mkdir(mode=0o700)
    server = AgentServer(str(sock_dir / "agent-1.sock"), lambda cmd, msg: ({"ok": True}, None),
                         lambda exc: None)  # fmt: skip
    server.start()
    try:
        server._stopped = True  # the instant between stop()'s flag and its listener closing
        with pytest.raises(AgentUnavailable, match="stopping"):
            AgentClient(server.sock_path, timeout_s=5.0)
    finally:
        server._stopped = False
        server.stop()
