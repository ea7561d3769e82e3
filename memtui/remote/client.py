"""Provides AgentClient: the monitor's connection to an in-target agent (pull, never pushed)."""

from __future__ import annotations

import os
import socket
import threading
from typing import Any

from memtui.errors import TargetProcessError
from memtui.probe.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    read_message,
    socket_path,
    write_message,
)


def _timeout_from_env(default: float = 10.0) -> float:
    try:
        value = float(os.environ.get("MEMTUI_AGENT_TIMEOUT", default))
    except ValueError:
        return default
    return value if value > 0 else default


DEFAULT_TIMEOUT_S: float = _timeout_from_env()
"""Seconds a request waits for the agent (MEMTUI_AGENT_TIMEOUT; 10 by default)."""


class AgentUnavailable(TargetProcessError):
    """No agent answers for this process (none running, socket gone, or it went away)."""


class AgentNotAnswering(AgentUnavailable):
    """The agent is there (its socket accepts) but no reply came in time: its process is
    stopped or a thread holds the GIL (a long C call); injecting another agent would not help."""


def find_socket(pid: int) -> str | None:
    """The agent socket of ``pid``, looking in our /tmp and in the target's own (private) /tmp."""
    uid: int | None = None
    try:
        uid = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None
    for root in ("", f"/proc/{pid}/root"):
        path = socket_path(pid, uid, root)
        if os.path.exists(path):
            return path
    return None


class AgentClient:
    """One connection to an agent; thread-safe (one request at a time)."""

    def __init__(self, path: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._next_id = 0
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout_s)
        try:
            self._sock.connect(path)
        except OSError as exc:
            self._sock.close()
            raise AgentUnavailable(f"cannot connect to the agent at {path!r}: {exc}") from None
        self.hello = self.request("hello", version=PROTOCOL_VERSION)

    @classmethod
    def for_pid(cls, pid: int, timeout_s: float = DEFAULT_TIMEOUT_S) -> AgentClient:
        path = find_socket(pid)
        if path is None:
            raise AgentUnavailable(f"no memtui agent is running in pid {pid}")
        return cls(path, timeout_s)

    def request(self, cmd: str, **args: Any) -> dict[str, Any]:
        """Send one command and wait for its reply; AgentUnavailable when the agent is gone."""
        with self._lock:
            self._next_id += 1
            message = {"cmd": cmd, "id": self._next_id, **args}
            try:
                write_message(self._sock, message)
                reply = read_message(self._sock)
            except TimeoutError:
                raise AgentNotAnswering(
                    f"the agent at {self.path!r} did not answer {cmd!r} within "
                    f"{self._sock.gettimeout():g} s"
                ) from None
            except (OSError, ConnectionError, ProtocolError) as exc:
                raise AgentUnavailable(
                    f"the agent at {self.path!r} stopped answering: {exc}"
                ) from None
        if not reply.get("ok", False):
            if reply.get("gone"):  # an agent that is stopping: as good as no agent
                raise AgentUnavailable(f"the agent at {self.path!r}: {reply.get('error')}")
            raise TargetProcessError(
                f"agent refused {cmd!r}: {reply.get('error', 'no reason given')}"
            )
        return reply

    def set_timeout(self, timeout_s: float) -> None:
        """Seconds each later request may wait for its reply."""
        self._sock.settimeout(timeout_s)

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> AgentClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
