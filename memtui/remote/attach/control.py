"""Provides attach, attach_quietly and detach: the agent into (and out of) a running CPython."""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import socket
import time
from typing import Literal

from memtui.errors import TargetProcessError
from memtui.probe.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    read_message,
    socket_path,
    write_message,
)
from memtui.remote.attach.lock import attach_lock
from memtui.remote.attach.remote_exec import inject_remote_exec
from memtui.remote.attach.safepoint import inject_gdb
from memtui.remote.attach.target import (
    AttachError,
    AttachResult,
    Target,
    alive,
    answering,
    boot_source,
    inspect_target,
    private_dir,
    roots,
)
from memtui.remote.probe_zip import ZIP_PREFIX, build_probe_zip


# -- the public API ---------------------------------------------------------------------------
def attach(pid: int, *, timeout_s: float = 20.0, follow_forks: bool = False) -> AttachResult:
    """Start (or find) the memtui agent inside CPython process ``pid``.

    Args:
        pid: the target process.
        timeout_s: bound on the whole attach, gdb included.
        follow_forks: the target's future forked children start their own agent (a newly
            injected agent only; one already running keeps its setting).

    Returns:
        An AttachResult; method "reused" when an agent already answered.

    Raises:
        TargetProcessError: no such process.
        AttachError: one line saying why injection failed and what would fix it.
    """
    started = time.monotonic()
    target = inspect_target(pid)
    version = "{}.{}".format(*target.version)
    found = answering(target)
    if found is not None:
        return _attach_result(target, found, "reused", version, started)
    host_dir, inner_dir = private_dir(target)
    with attach_lock(host_dir, target.inner_pid, started + timeout_s):
        found = answering(target)  # another memtui attached while we waited for the lock
        if found is not None:
            return _attach_result(target, found, "reused", version, started)
        return _attach_locked(target, host_dir, inner_dir, started, timeout_s, follow_forks)


def _attach_locked(
    target: Target,
    host_dir: str,
    inner_dir: str,
    started: float,
    timeout_s: float,
    follow_forks: bool,
) -> AttachResult:
    zip_host = build_probe_zip(host_dir, uid=target.uid, gid=target.gid)
    zip_inner = os.path.join(inner_dir, os.path.basename(zip_host))
    err_name = f"attach-{target.inner_pid}.err"
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(host_dir, err_name))
    payload = boot_source(
        zip_inner,
        secrets.token_hex(8),
        time.time() + timeout_s,
        os.path.join(inner_dir, err_name),
        follow_forks,
    ).encode()
    try:
        return _inject_and_wait(target, payload, host_dir, inner_dir, err_name, started, timeout_s)
    except AttachError:
        # an attach that failed stays failed: a pending call firing later finds this and stops
        with contextlib.suppress(OSError), open(os.path.join(host_dir, err_name), "x") as f:
            f.write("cancelled: attach gave up")
        raise


def _inject_and_wait(
    target: Target,
    payload: bytes,
    host_dir: str,
    inner_dir: str,
    err_name: str,
    started: float,
    timeout_s: float,
) -> AttachResult:
    pid, deadline = target.pid, started + timeout_s
    version = "{}.{}".format(*target.version)
    method: Literal["gdb", "remote_exec"]
    if target.version >= (3, 14):
        method = "remote_exec"
        inject_remote_exec(target, payload, host_dir, inner_dir, deadline)
    else:
        method = "gdb"
        inject_gdb(target, payload, deadline)
    if not alive(pid):
        raise AttachError(f"pid {pid} exited during attach")
    while time.monotonic() < deadline:
        found = answering(target, timeout_s=max(0.1, min(1.0, deadline - time.monotonic())))
        if found is not None:
            return _attach_result(target, found, method, version, started)
        if not alive(pid):
            raise AttachError(f"pid {pid} exited during attach")
        with contextlib.suppress(OSError), open(os.path.join(host_dir, err_name)) as f:
            raise AttachError(f"the agent did not start in pid {pid}: {f.read().strip()}")
        time.sleep(0.05)
    raise AttachError(
        f"the agent of pid {pid} did not answer within {timeout_s:g} s (its main "
        "thread never reached a safe point); the probe starts if it does soon"
    )


def _attach_result(
    target: Target,
    found: tuple[str, dict[str, object]],
    method: Literal["reused", "gdb", "remote_exec"],
    version: str,
    started: float,
) -> AttachResult:
    path, hello = found
    return AttachResult(
        pid=target.pid,
        socket_path=path,
        method=method,
        python_version=str(hello.get("python") or version),
        seconds=time.monotonic() - started,
    )


def attach_quietly(pid: int, timeout_s: float = 15.0) -> str | None:
    """attach --children: the agent socket of ``pid`` (attaching, following its forks), or
    None when it is not a CPython we can attach to (a shell, a C helper, gone)."""
    try:
        return attach(pid, timeout_s=timeout_s, follow_forks=True).socket_path
    except TargetProcessError:  # AttachError included: not ours to watch
        return None


def detach(pid: int) -> bool:
    """Stop the agent of ``pid`` and remove its files; False when no agent was there."""
    uid: int | None
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
        with open(f"/proc/{pid}/status") as f:
            nspid = [line for line in f if line.startswith("NSpid:")]
        inner = int(nspid[0].split()[-1]) if nspid else pid
    except OSError:
        uid, inner = None, pid
    stopped = False
    for root in roots(pid):
        path = socket_path(inner, uid, root)
        if not os.path.exists(path):
            continue
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5.0)
        try:
            sock.connect(path)
            write_message(sock, {"cmd": "hello", "id": 1, "version": PROTOCOL_VERSION})
            read_message(sock)
            write_message(sock, {"cmd": "detach", "id": 2})
            stopped = bool(read_message(sock).get("ok"))
        except (OSError, ProtocolError):
            continue
        finally:
            sock.close()
        end = time.monotonic() + 3.0
        while os.path.exists(path) and time.monotonic() < end:
            time.sleep(0.02)
        _cleanup(os.path.dirname(path), inner)
        break
    return stopped


PROBE_ZIP_IDLE_S: float = 86400.0
"""A probe zip beside the sockets is removed once no agent is running and nobody attached with it
for a day. Never sooner: another memtui may be attaching with it right now (its target imports it
before its socket exists), and a running agent imports from it later (heap summaries)."""


def _cleanup(directory: str, inner_pid: int) -> None:
    """Remove our attach files, and probe zips unused for a day once no agent socket remains."""
    with contextlib.suppress(OSError):
        os.unlink(os.path.join(directory, f"attach-{inner_pid}.err"))
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        if name.startswith(f"attach-{inner_pid}-") and name.endswith(".py"):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
    live = [
        n
        for n in names
        if re.fullmatch(r"agent-(\d+)\.sock", n) and os.path.exists(f"/proc/{n[6:-5]}")
    ]  # a dead pid's socket is stale
    if live:
        return
    now = time.time()
    for name in names:
        if name.startswith(ZIP_PREFIX) and name.endswith(".zip"):
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                if now - os.lstat(path).st_mtime > PROBE_ZIP_IDLE_S:
                    os.unlink(path)
