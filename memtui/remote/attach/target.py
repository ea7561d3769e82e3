"""Provides what attach learns of a target first (pid, version, namespaces), and its payload."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
import stat
import struct
import subprocess
from typing import Literal

from memtui.errors import TargetProcessError
from memtui.probe.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    read_message,
    socket_dir,
    socket_path,
    write_message,
)
from memtui.remote.procstate import stopped_reason


class AttachError(TargetProcessError):
    """The agent could not be injected; the caller watches from outside instead."""


@dataclasses.dataclass(frozen=True, slots=True)
class AttachResult:
    """What attach() did."""

    pid: int
    socket_path: str
    """Where the agent listens, as seen from this process."""
    method: Literal["reused", "gdb", "remote_exec"]
    python_version: str
    seconds: float
    """From the call to the first answered hello."""


@dataclasses.dataclass(frozen=True, slots=True)
class Target:
    pid: int
    name: str
    uid: int
    gid: int
    inner_pid: int
    """The pid inside the target's own pid namespace (names its socket)."""
    exe: str
    version: tuple[int, int]


# -- inspecting the target --------------------------------------------------------------------
def ptrace_help(pid: int) -> str:
    try:
        with open("/proc/sys/kernel/yama/ptrace_scope") as f:
            scope = f"kernel.yama.ptrace_scope is {f.read().strip()}"
    except OSError:
        scope = "no Yama ptrace_scope here"
    return (
        f"no permission to trace pid {pid} ({scope}): attaching needs the same user with "
        "ptrace_scope 0 (sysctl kernel.yama.ptrace_scope=0), or root / CAP_SYS_PTRACE"
    )


def _has_cap_sys_ptrace() -> bool:
    with contextlib.suppress(OSError, ValueError), open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> 19 & 1)
    return False


def _elf_machine(path: str) -> int | None:
    with contextlib.suppress(OSError), open(path, "rb") as f:
        head = f.read(20)
        if head[:4] == b"\x7fELF" and len(head) == 20:
            order = "<" if head[5] == 1 else ">"
            return int(struct.unpack(order + "H", head[18:20])[0])
    return None


def _python_version(pid: int, name: str, exe: str) -> tuple[int, int]:
    try:
        with open(f"/proc/{pid}/maps") as f:
            maps = f.read()
    except OSError as exc:
        raise AttachError(f"cannot read the memory map of pid {pid}: {exc}") from None
    found = re.search(r"libpython(\d+)\.(\d+)", maps)
    if found:
        return int(found.group(1)), int(found.group(2))
    if not re.search(r"python", os.path.basename(exe), re.IGNORECASE):
        raise AttachError(f"pid {pid} ({name}) is not a Python process")
    try:
        out = subprocess.run(
            [
                f"/proc/{pid}/exe",
                "-I",
                "-S",
                "-c",
                "import sys;print(sys.implementation.name,*sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            timeout=5.0,
            check=True,
            stdin=subprocess.DEVNULL,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError) as exc:
        raise AttachError(f"cannot tell the Python version of pid {pid} ({name}): {exc}") from None
    if len(out) != 3 or out[0] != "cpython":
        raise AttachError(f"pid {pid} ({name}) is not CPython ({' '.join(out) or 'unknown'})")
    return int(out[1]), int(out[2])


def inspect_target(pid: int) -> Target:
    try:
        with open(f"/proc/{pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
    except (FileNotFoundError, ProcessLookupError):
        raise TargetProcessError(f"no process with pid {pid}") from None
    except OSError as exc:
        raise TargetProcessError(f"cannot read /proc/{pid}/status: {exc}") from None
    name = status.get("Name", "?").strip()
    if status.get("State", "").strip().startswith("Z"):
        raise TargetProcessError(f"pid {pid} ({name}) has exited (zombie)")
    stopped = stopped_reason(pid)
    if stopped:
        raise AttachError(stopped)
    uid, gid = int(status["Uid"].split()[0]), int(status["Gid"].split()[0])
    inner_pid = int(status.get("NSpid", str(pid)).split()[-1])
    if os.geteuid() != 0 and uid != os.geteuid() and not _has_cap_sys_ptrace():
        raise AttachError(
            f"pid {pid} belongs to uid {uid}, we are uid {os.geteuid()}; " + ptrace_help(pid)
        )
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError as exc:
        raise AttachError(
            f"cannot see the executable of pid {pid} ({name}): {exc}; " + ptrace_help(pid)
        ) from None
    ours, theirs = _elf_machine("/proc/self/exe"), _elf_machine(f"/proc/{pid}/exe")
    if theirs is not None and ours is not None and theirs != ours:
        raise AttachError(
            f"pid {pid} ({name}) is built for another architecture "
            f"(ELF machine {theirs}, ours {ours}); run memtui natively next to it"
        )
    return Target(pid, name, uid, gid, inner_pid, exe, _python_version(pid, name, exe))


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


# -- sockets and files ------------------------------------------------------------------------
def roots(pid: int) -> list[str]:
    return ["", f"/proc/{pid}/root"]


def _hello(path: str, timeout_s: float) -> dict[str, object] | None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(timeout_s)
    try:
        sock.connect(path)
        write_message(sock, {"cmd": "hello", "id": 1, "version": PROTOCOL_VERSION})
        reply = read_message(sock)
    except (OSError, ProtocolError):
        return None
    finally:
        sock.close()
    return reply if reply.get("ok") else None


def answering(target: Target, timeout_s: float = 1.0) -> tuple[str, dict[str, object]] | None:
    for root in roots(target.pid):
        path = socket_path(target.inner_pid, target.uid, root)
        if os.path.exists(path):
            reply = _hello(path, timeout_s)
            if reply is not None:
                return path, reply
    return None


def private_dir(target: Target) -> tuple[str, str]:
    """(path for us, path for the target) of the target user's socket directory, made 0700."""
    inner = socket_dir(target.uid)
    root = f"/proc/{target.pid}/root"
    host = root + inner if os.path.isdir(root + "/tmp") else inner
    try:
        os.mkdir(host, 0o700)
        os.chmod(host, 0o700)
        if target.uid != os.geteuid():
            os.chown(host, target.uid, target.gid)
    except FileExistsError:
        pass
    except OSError as exc:
        raise AttachError(f"cannot create the socket directory {host!r}: {exc}") from None
    st = os.lstat(host)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != target.uid or st.st_mode & 0o077:
        raise AttachError(
            f"{host!r} is not a private directory of uid {target.uid}; remove it and attach again"
        )
    return host, inner


def boot_source(
    zip_path: str, token: str, deadline: float, err_path: str, follow_forks: bool = False
) -> str:
    """What the new thread in the target runs: once per token, never after the deadline.

    ``follow_forks``: the target's forked children start their own agent (attach --children).
    """
    follow = "        agent.follow_forks(True)\n" if follow_forks else ""
    boot = (
        "def _memtui_boot(zip_path, token, deadline, err_path):\n"
        "    import os, sys, time\n"
        "    done = sys.__dict__.setdefault('_memtui_attach_tokens', set())\n"
        "    if token in done or time.time() > deadline or os.path.exists(err_path):\n"
        "        return\n"
        "    done.add(token)\n"
        "    try:\n"
        "        if zip_path not in sys.path:\n"
        "            sys.path.insert(0, zip_path)\n"
        "        import memtui.probe.agent as agent\n"
        "        agent.start_agent(attached=True)\n"
        f"{follow}"
        "    except BaseException as exc:\n"
        "        try:\n"
        "            with open(err_path, 'w') as f:\n"
        "                f.write(type(exc).__name__ + ': ' + str(exc))\n"
        "        except OSError:\n"
        "            pass\n"
        f"_memtui_boot({zip_path!r}, {token!r}, {deadline!r}, {err_path!r})\n"
    )
    # Run at the safe point: binds nothing in __main__, never raises an Exception, never waits.
    return (
        "try:\n"
        f"    __import__('_thread').start_new_thread(exec, ({boot!r}, "
        "{'__name__': '__memtui_attach__'}))\n"
        "except Exception:\n"
        "    pass\n"
    )
