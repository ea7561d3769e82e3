"""Provides end-to-end tests of attach/detach against real CPython processes and real gdb."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memtui.errors import TargetProcessError
from memtui.probe.protocol import PROTOCOL_VERSION, read_message, write_message
from memtui.remote.attach import AttachError, attach, detach

pytestmark = [
    pytest.mark.skipif(shutil.which("gdb") is None, reason="gdb is not installed"),
    pytest.mark.skipif(sys.platform != "linux", reason="attach needs Linux /proc and ptrace"),
]

PYTHONS = {
    "3.11": sys.executable,
    "3.10": "/root/.pyenv/versions/3.10.13/bin/python",
    "3.12": "/root/.pyenv/versions/3.12.1/bin/python",
    "3.13": "/root/.pyenv/versions/3.13.0/bin/python",
}
BUSY = "import time\nprint('ready', flush=True)\nwhile True:\n    time.sleep(0.05)\n"
SLEEPING = "import time\nprint('ready', flush=True)\ntime.sleep(600)\n"
GIL_HELD = "import ctypes\nprint('ready', flush=True)\nctypes.PyDLL('libc.so.6').sleep(600)\n"


def _spawn(python: str, source: str, tmp_path: Path) -> subprocess.Popen[str]:
    script = tmp_path / "target.py"
    script.write_text(source)
    # -I: nothing of ours (no venv site-packages, no cwd) is importable in the target
    proc = subprocess.Popen([python, "-I", str(script)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    return proc


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def make(python: str, source: str) -> subprocess.Popen[str]:
        proc = _spawn(python, source, tmp_path)
        procs.append(proc)
        return proc

    yield make
    for proc in procs:
        detach(proc.pid)
        proc.kill()
        proc.wait()


def _request(path: str, cmd: str, **args: object) -> dict[str, object]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        sock.connect(path)
        write_message(sock, {"cmd": "hello", "id": 1, "version": PROTOCOL_VERSION})
        hello = read_message(sock)
        if cmd == "hello":
            return hello
        write_message(sock, {"cmd": cmd, "id": 2, **args})
        return read_message(sock)


@pytest.mark.parametrize("version", list(PYTHONS), ids=[f"py{v}" for v in PYTHONS])
def test_attach_hello_frame_reuse_detach(version: str, spawn: object) -> None:
    """Inject into a target with nothing of memtui importable; reuse; detach leaves it running."""
    python = PYTHONS[version]
    if not os.path.exists(python):
        pytest.skip(f"no Python {version} here")
    proc = spawn(python, BUSY)  # type: ignore[operator]
    result = attach(proc.pid, timeout_s=20)
    assert result.method == "gdb"
    assert result.python_version.startswith(version + ".")
    hello = _request(result.socket_path, "hello")
    assert hello["pid"] == proc.pid
    assert str(hello["python"]).startswith(version + ".")
    deadline = time.monotonic() + 5
    while True:
        frame = _request(result.socket_path, "frame", since=0)
        if frame.get("samples") or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert frame["ok"] and frame["samples"]
    again = attach(proc.pid)
    assert again.method == "reused"
    assert again.socket_path == result.socket_path
    assert detach(proc.pid) is True
    assert not os.path.exists(result.socket_path)
    # the zip stays for the next attach (another memtui may be attaching with it right now)
    directory = Path(result.socket_path).parent
    assert any(p.name.startswith("memtui-probe-") for p in directory.iterdir())
    time.sleep(0.2)
    assert proc.poll() is None
    assert detach(proc.pid) is False


@pytest.mark.parametrize("source", [SLEEPING, GIL_HELD], ids=["sleep600", "c-call-holding-gil"])
def test_blocked_target_never_hangs(source: str, spawn: object) -> None:
    """A main thread in time.sleep(600) or in a C call holding the GIL: bounded, target alive."""
    proc = spawn(sys.executable, source)  # type: ignore[operator]
    started = time.monotonic()
    try:
        attach(proc.pid, timeout_s=10)
    except AttachError as exc:
        assert "GIL" in str(exc) or "safe point" in str(exc)
    assert time.monotonic() - started < 12
    time.sleep(0.3)
    assert proc.poll() is None


def test_not_python() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    deadline = time.monotonic() + 5
    while Path(f"/proc/{proc.pid}/comm").read_text().strip() != "sleep":  # until exec is done
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        with pytest.raises(AttachError, match=rf"pid {proc.pid} \(sleep\) is not a Python process"):
            attach(proc.pid)
    finally:
        proc.kill()
        proc.wait()


def test_dead_pid() -> None:
    proc = subprocess.Popen(["true"])
    proc.wait()
    with pytest.raises(TargetProcessError, match=f"no process with pid {proc.pid}"):
        attach(proc.pid)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another uid")
def test_other_user_refused_quickly(spawn: object) -> None:
    """memtui as uid 65534 may not attach to root's process: a ptrace explanation, fast."""
    proc = spawn(sys.executable, BUSY)  # type: ignore[operator]
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.close(read_end)
        message = "no error"
        try:
            os.setgid(65534)
            os.setuid(65534)
            started = time.monotonic()
            try:
                attach(proc.pid, timeout_s=5)
            except AttachError as exc:
                message = f"{time.monotonic() - started:.3f} {exc}"
        finally:
            os.write(write_end, message.encode())
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as f:
        message = f.read()
    os.waitpid(child, 0)
    seconds, _, text = message.partition(" ")
    assert "ptrace" in text and "uid 0" in text, message
    assert float(seconds) < 1.0
    assert proc.poll() is None


def test_detach_keeps_the_probe_zip_for_a_day(spawn: object) -> None:
    """Two memtuis attach and detach different pids at once: a detach never removes the zip the
    other's target is about to import (that failed the other attach with FileNotFoundError).
    Only zips nobody attached with for a day go, once no agent runs."""
    proc = spawn(sys.executable, BUSY)  # type: ignore[operator]
    result = attach(proc.pid, timeout_s=20)
    directory = Path(result.socket_path).parent
    used = [p for p in directory.iterdir() if p.name.startswith("memtui-probe-")]
    stale = directory / "memtui-probe-0.0.0-000000000000.zip"
    stale.write_bytes(b"PK\x05\x06" + bytes(18))
    two_days_ago = time.time() - 2 * 86400
    os.utime(stale, (two_days_ago, two_days_ago))
    assert detach(proc.pid) is True
    assert used and all(p.exists() for p in used)
    live = [
        n
        for n in os.listdir(directory)
        if n.startswith("agent-") and n.endswith(".sock") and os.path.exists(f"/proc/{n[6:-5]}")
    ]
    assert stale.exists() == bool(live)  # another agent still running keeps every zip
    stale.unlink(missing_ok=True)
