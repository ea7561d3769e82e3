"""Provides the agent's wire protocol: length-prefixed JSON messages with a hard size cap.

Frame: 4-byte big-endian unsigned length, then that many bytes of UTF-8 JSON (an object).
Every request is ``{"cmd": NAME, "id": N, ...args}``; every reply is
``{"id": N, "ok": true, ...result}`` or ``{"id": N, "ok": false, "error": "one line"}``.
The first request on a connection must be ``hello`` with ``"version": PROTOCOL_VERSION``;
anything else, a wrong version, an oversized length or bytes that are not a JSON object
closes the connection. Commands are a fixed set of names: nothing sent is ever evaluated.

Commands (arguments → result):
- hello {version} → {version, pid, python, argv, executable, started_at, capabilities: [...],
  recording: path|null (the SQLite recording the agent writes, see memtui.probe.recorder)}
- frame {since: seq} → {seq, samples: [[seq, t, rss, vms, traced, blocks], ...],
  gc: {...}, census: {...}|null, sites: [...]|null, tracing: {...}, uptime_s,
  markers: [[t, label, source], ...] (the last 50)}
- snapshot {} → the same summary as ``frame``'s latest snapshot, taken now
- tracemalloc {on: bool, frames: int} → {tracing: {...}}
- gc_collect {} → {collected: int, duration_s: float}
- set_baseline {} → {baseline_at: float}
- heap_dump {path? | out_dir?, writer?, wait_s?} → {path, writer, pause_s, objects, edges,
  bytes, duration_s, pending} (see memtui.probe.heap.dump)
- report_data {} → everything a monitor needs to build the JSON report
- mark {label} → {marked: label}: a marker from the monitor at the target's now
- heap_summary {} → {requested, seq, ...}: take a heap summary soon (memtui.probe.heap.summary);
  ``frame {summary_seq}`` carries the latest one (``heap_summary``) when newer than summary_seq
- detach {} → stops the agent and removes its socket (the reply is sent first)

Standard library only.
"""

from __future__ import annotations

import json
import socket
import struct
from typing import Any

PROTOCOL_VERSION: int = 1
MAX_MESSAGE_BYTES: int = 16 * 1024 * 1024
"""Hard cap for one message either way; a larger length closes the connection."""
_HEADER = struct.Struct(">I")

COMMANDS: frozenset[str] = frozenset(
    {
        "hello",
        "frame",
        "snapshot",
        "tracemalloc",
        "gc_collect",
        "set_baseline",
        "heap_dump",
        "report_data",
        "mark",
        "heap_summary",
        "detach",
    }
)


class ProtocolError(Exception):
    """The peer broke the protocol (bad length, bad JSON, wrong version, unknown command)."""


def encode(message: dict[str, Any]) -> bytes:
    """One frame for ``message``; raises ProtocolError when it exceeds the cap."""
    body = json.dumps(message, separators=(",", ":"), allow_nan=False).encode("utf-8")
    if len(body) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message of {len(body)} bytes exceeds the {MAX_MESSAGE_BYTES} cap")
    return _HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"message is not UTF-8 JSON: {exc}") from None
    if not isinstance(message, dict):
        raise ProtocolError("message is not a JSON object")
    return message


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    chunks = []
    remaining = n
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("peer closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def read_message(sock: socket.socket) -> dict[str, Any]:
    """Read one frame (the socket's timeout applies to each recv)."""
    (length,) = _HEADER.unpack(_recv_exact(sock, _HEADER.size))
    if length > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"peer announced {length} bytes, over the {MAX_MESSAGE_BYTES} cap")
    return decode_body(_recv_exact(sock, length))


def write_message(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall(encode(message))


def socket_dir(uid: int | None = None, root: str = "") -> str:
    """The private directory (mode 0700) holding the agents' sockets of user ``uid``.

    ``root`` prefixes the path, e.g. ``/proc/PID/root`` to reach a target's own /tmp when it
    runs with a private /tmp or in another mount namespace.
    """
    import os

    return f"{root}/tmp/memtui-{os.getuid() if uid is None else uid}"


def socket_path(pid: int, uid: int | None = None, root: str = "") -> str:
    """Where the agent of process ``pid`` listens (mode 0600)."""
    return f"{socket_dir(uid, root)}/agent-{pid}.sock"
