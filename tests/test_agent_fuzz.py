"""Provides hypothesis fuzzing of the agent's server: garbage in, the agent still answers hello."""

from __future__ import annotations

import json
import os
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtui.probe import protocol

MAIN = str(Path(__file__).resolve().parent.parent)
TARGET = (
    "import sys, time; sys.path.insert(0, {main!r}); import memtui.probe.bootstrap\n"
    "time.sleep(600)\n"
)
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Agent:
    def __init__(self) -> None:
        self.sock_dir = os.path.join(tempfile.mkdtemp(prefix="mtz"), "s")
        env = dict(os.environ, MEMTUI_SOCKET_DIR=self.sock_dir, MEMTUI_TRACE="off")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", TARGET.format(main=MAIN)], env=env, stderr=subprocess.PIPE
        )
        self.path = os.path.join(self.sock_dir, f"agent-{self.proc.pid}.sock")
        deadline = time.monotonic() + 15
        while not os.path.exists(self.path):
            assert self.proc.poll() is None and time.monotonic() < deadline, "no agent"
            time.sleep(0.02)

    def connect(self) -> socket.socket:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(self.path)
        return s

    def assert_healthy(self) -> None:
        assert self.proc.poll() is None, "the target died"
        with self.connect() as s:
            protocol.write_message(s, {"cmd": "hello", "id": 7, "version": 1})
            reply = protocol.read_message(s)
        assert reply["ok"] and reply["id"] == 7 and reply["pid"] == self.proc.pid


@pytest.fixture(scope="module")
def agent() -> Iterator[Agent]:
    a = Agent()
    yield a
    a.proc.kill()
    a.proc.wait(10)
    assert a.proc.stderr is not None
    err = a.proc.stderr.read().decode()
    a.proc.stderr.close()
    assert "Traceback" not in err, err


def _drain_until_closed(s: socket.socket) -> bytes:
    """Everything the agent sends until it closes (it must close within the timeout).

    Closing with our bytes still unread makes the agent's side reset the connection, which
    may discard its last reply: a reset counts as closed.
    """
    chunks: list[bytes] = []
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


def _replies(data: bytes) -> list[dict[str, Any]]:
    out = []
    while len(data) >= 4:
        (n,) = struct.unpack(">I", data[:4])
        out.append(json.loads(data[4 : 4 + n]))
        data = data[4 + n :]
    return out


@FUZZ
@given(junk=st.binary(min_size=1, max_size=300), greet=st.booleans())
def test_random_bytes(agent: Agent, junk: bytes, greet: bool) -> None:
    with agent.connect() as s:
        if greet:
            protocol.write_message(s, {"cmd": "hello", "id": 1, "version": 1})
            assert protocol.read_message(s)["ok"]
        s.sendall(junk)
        s.shutdown(socket.SHUT_WR)
        for reply in _replies(_drain_until_closed(s)):
            assert isinstance(reply, dict) and "ok" in reply
    agent.assert_healthy()


@FUZZ
@given(length=st.integers(min_value=protocol.MAX_MESSAGE_BYTES + 1, max_value=2**32 - 1))
def test_oversized_length_closes(agent: Agent, length: int) -> None:
    with agent.connect() as s:
        s.sendall(struct.pack(">I", length) + b"{}")
        replies = _replies(_drain_until_closed(s))
        assert all(not r["ok"] and "cap" in r["error"] for r in replies)
    agent.assert_healthy()


@FUZZ
@given(
    name=st.text(max_size=40).filter(lambda n: n not in protocol.COMMANDS),
    args=st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=4),
)
def test_unknown_commands_keep_the_connection(
    agent: Agent, name: str, args: dict[str, Any]
) -> None:
    with agent.connect() as s:
        protocol.write_message(s, {"cmd": "hello", "id": 1, "version": 1})
        assert protocol.read_message(s)["ok"]
        protocol.write_message(s, {**args, "cmd": name, "id": 2})
        reply = protocol.read_message(s)
        assert reply == {"id": 2, "ok": False, "error": f"unknown command {name!r}"}
        protocol.write_message(s, {"cmd": "frame", "id": 3, "since": 0})
        assert protocol.read_message(s)["ok"]
    agent.assert_healthy()


@FUZZ
@given(
    version=st.one_of(
        st.integers().filter(lambda v: v != protocol.PROTOCOL_VERSION),
        st.booleans(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=5),
        st.none(),
    ),
    cmd=st.sampled_from(["hello", "frame", "detach", "x"]),
)
def test_wrong_version_or_no_hello_closes(agent: Agent, version: Any, cmd: str) -> None:
    with agent.connect() as s:
        protocol.write_message(s, {"cmd": cmd, "id": 1, "version": version})
        replies = _replies(_drain_until_closed(s))
        assert len(replies) <= 1 and all(not r["ok"] for r in replies)
    agent.assert_healthy()


JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.text(max_size=20)
NON_OBJECTS = st.one_of(JSON_SCALARS, st.lists(JSON_SCALARS, max_size=5))


@FUZZ
@given(value=NON_OBJECTS, greet=st.booleans())
def test_non_object_json_closes(agent: Agent, value: Any, greet: bool) -> None:
    with agent.connect() as s:
        if greet:
            protocol.write_message(s, {"cmd": "hello", "id": 1, "version": 1})
            assert protocol.read_message(s)["ok"]
        body = json.dumps(value).encode()
        s.sendall(struct.pack(">I", len(body)) + body)
        replies = _replies(_drain_until_closed(s))
        assert len(replies) == 1 and "not a JSON object" in replies[0]["error"]  # all was read
    agent.assert_healthy()


@FUZZ
@given(
    cmd=st.sampled_from(sorted(protocol.COMMANDS - {"detach", "tracemalloc", "snapshot"})),
    args=st.dictionaries(
        st.sampled_from(["since", "on", "frames", "path", "x"]),
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
        max_size=3,
    ),
)
def test_known_commands_with_odd_arguments(agent: Agent, cmd: str, args: dict[str, Any]) -> None:
    with agent.connect() as s:
        protocol.write_message(s, {"cmd": "hello", "id": 1, "version": 1})
        assert protocol.read_message(s)["ok"]
        body = json.dumps({**args, "cmd": cmd, "id": 2}).encode()  # NaN/inf as JSON allows
        s.sendall(struct.pack(">I", len(body)) + body)
        reply = protocol.read_message(s)
        assert reply["id"] == 2 and isinstance(reply["ok"], bool)
    agent.assert_healthy()
