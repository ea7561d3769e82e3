"""A real gunicorn + Flask pool under `memtui run`, driven by urllib (for the fleet tests)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

APP = textwrap.dedent("""\
    import os, threading, time
    from flask import Flask

    app = Flask(__name__)
    HOARD = []


    def _hoard():
        while True:
            HOARD.append(bytearray(400 * 1024))  # about 4 MB/s, never freed
            time.sleep(0.1)


    @app.route("/")
    def index():
        return f"{os.getpid()}"


    @app.route("/leak")
    def leak():
        threading.Thread(target=_hoard, daemon=True).start()
        return f"{os.getpid()}"
    """)

GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get(port: int, path: str = "/", timeout_s: float = 5.0) -> int:
    """One request; the pid of the worker that answered."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout_s) as r:
        return int(r.read().decode())


def wait_until_serving(port: int, proc: subprocess.Popen[bytes], timeout_s: float = 30.0) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"memtui run exited early with {proc.returncode}")
        with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
            return get(port, timeout_s=1.0)
        time.sleep(0.2)
    raise AssertionError("the pool never answered")


def start_pool(
    tmp: Path, port: int, memtui_args: Sequence[str], gunicorn_args: Sequence[str]
) -> subprocess.Popen[bytes]:
    """`memtui run ... -- gunicorn -w 2 app:app` in its own session (killed as a group)."""
    (tmp / "app.py").write_text(APP)
    env = {
        **os.environ,
        "MEMTUI_CENSUS_INTERVAL": "2",
        "MEMTUI_WATCH_PERIOD": "2",
        "MEMTUI_WATCH_WINDOW": "0.25",
    }
    command = [
        sys.executable,
        "-c",
        "import sys; from memtui.cli import main; sys.exit(main())",
        "run",
        *memtui_args,
        "--",
        str(GUNICORN),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(tmp),
        *gunicorn_args,
        "app:app",
    ]
    return subprocess.Popen(
        command,
        cwd=tmp,
        env=env,
        stdout=open(tmp / "out.log", "wb"),
        stderr=open(tmp / "err.log", "wb"),
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Every process of the test's tree goes: memtui, the gunicorn master, its workers."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def children_of(pid: int) -> list[int]:
    import psutil

    try:
        kids = psutil.Process(pid).children(recursive=True)
        # memtui's heap-summary and heap-dump walkers are short-lived copies, not workers
        return [c.pid for c in kids if not c.name().startswith("memtui-")]
    except psutil.Error:
        return []


def count(path: str) -> int:
    try:
        return len(os.listdir(path))
    except OSError:
        return -1
