"""Provides the agent's socket server: a private 0700 directory, a 0600 socket, peer uid checks.

One accept thread and one thread per connection (at most MAX_VIEWERS). Each connection must
open with ``hello`` at our protocol version; a peer that stalls for IDLE_TIMEOUT_S, sends an
oversized length or bytes that are not a JSON object is closed. Replies are only ever sent in
answer to a request (pull, never push), from the connection's own thread, so a slow or vanished
viewer can only ever block its own thread. Standard library only.
"""

from __future__ import annotations

import contextlib
import os
import socket
import stat
import struct
import threading
from collections.abc import Callable
from typing import Any

from memtui.probe import protocol

MAX_VIEWERS: int = 8
STOPPING_ERROR = "the agent is stopping (its program is exiting)"
IDLE_TIMEOUT_S: float = 30.0
_UCRED = struct.Struct("3i")  # struct ucred: pid, uid, gid

Reply = dict[str, Any]
After = Callable[[], None]
Dispatch = Callable[[object, dict[str, Any]], tuple[Reply, "After | None"]]
"""(cmd, message) -> (reply without id, something to run once the reply is sent, or None)."""


class AgentError(Exception):
    """The agent cannot start here (unsafe socket directory, bad settings); one line."""


def check_dir(path: str) -> None:
    """Create ``path`` 0700, or accept it only when it is ours and private; never chmod others'."""
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o700)  # we just made it: undo a umask that took our own bits
    except FileExistsError:
        pass
    except OSError as exc:
        raise AgentError(f"memtui: cannot create the socket directory {path!r}: {exc}") from None
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise AgentError(f"memtui: {path!r} is not a directory; refusing to put the socket there")
    if st.st_uid != os.getuid():
        raise AgentError(
            f"memtui: {path!r} belongs to uid {st.st_uid}, not to us (uid {os.getuid()}); "
            "refusing to use it"
        )
    if st.st_mode & 0o077:
        raise AgentError(
            f"memtui: {path!r} has mode {stat.S_IMODE(st.st_mode):04o}, open to other users; "
            "refusing to use it (expected 0700)"
        )


def _send_quietly(conn: socket.socket, message: Reply) -> None:
    with contextlib.suppress(OSError, protocol.ProtocolError):  # the peer is going away
        conn.sendall(protocol.encode(message))


class AgentServer:
    """Serves ``dispatch`` on ``sock_path``; ``on_error`` records failures not caused by a peer."""

    def __init__(
        self, sock_path: str, dispatch: Dispatch, on_error: Callable[[BaseException], None]
    ) -> None:
        self.sock_path = sock_path
        self.pid = os.getpid()
        self._dispatch = dispatch
        self._on_error = on_error
        self._stop = threading.Event()
        self._stopped = False
        self._lock = threading.Lock()
        self._conns: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._sock_ino = 0
        self._thread: threading.Thread | None = None
        self.refused = 0
        """Peers of another uid that were turned away."""

    @property
    def viewers(self) -> int:
        with self._lock:
            return len(self._conns)

    def start(self) -> None:
        """Check the directory, bind the socket 0600 and start accepting (AgentError if unsafe)."""
        check_dir(os.path.dirname(self.sock_path))
        if os.path.lexists(self.sock_path):
            os.unlink(self.sock_path)  # a stale socket of a previous agent with our pid
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.sock_path)
            os.chmod(self.sock_path, 0o600)
            listener.listen(16)
            listener.settimeout(0.5)
        except OSError as exc:
            listener.close()
            raise AgentError(f"memtui: cannot listen on {self.sock_path!r}: {exc}") from None
        self._listener = listener
        self._sock_ino = os.stat(self.sock_path).st_ino
        self._thread = threading.Thread(
            target=self._accept_loop, name="memtui-agent-accept", daemon=True
        )
        self._thread.start()

    def stop(self, join_s: float = 2.0) -> None:
        """Close the listener and every connection and remove the socket; idempotent."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            conns = list(self._conns)
        self._stop.set()
        if self._listener is not None:
            with contextlib.suppress(OSError):  # wakes the accept thread now (Linux), not at
                self._listener.shutdown(socket.SHUT_RDWR)  # its timeout: a quick exit
            self._listener.close()
        with contextlib.suppress(OSError):  # already gone
            if self.pid == os.getpid() and os.stat(self.sock_path).st_ino == self._sock_ino:
                os.unlink(self.sock_path)
        for conn in conns:
            with contextlib.suppress(OSError):  # already closed by its peer
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(join_s)

    def after_fork_in_child(self) -> None:
        """In a forked child: close our copies of the fds; the parent's socket stays."""
        self._stopped = True
        self._stop.set()
        for sock in [self._listener, *self._conns]:
            if sock is not None:
                sock.close()  # no shutdown: that would act on the socket the parent serves
        self._conns = set()

    def _accept_loop(self) -> None:
        listener = self._listener
        assert listener is not None
        while not self._stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stop.is_set():
                    break
                self._on_error(exc)  # e.g. EMFILE: back off instead of spinning
                self._stop.wait(0.2)
                continue
            try:
                self._admit(conn)
            except OSError as exc:
                self._on_error(exc)
                conn.close()

    def _admit(self, conn: socket.socket) -> None:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
        _, uid, _ = _UCRED.unpack(creds)
        if uid not in (os.getuid(), 0):
            self.refused += 1
            conn.close()
            return
        with self._lock:
            stopping = self._stopped
            full = len(self._conns) >= MAX_VIEWERS
            if not (full or stopping):
                self._conns.add(conn)
        if full or stopping:
            conn.settimeout(1.0)
            if stopping:  # the program is exiting: "gone" tells the client it is not busy
                refusal = {"id": None, "ok": False, "gone": True, "error": STOPPING_ERROR}
            else:
                error = f"too many viewers ({MAX_VIEWERS}) are connected; try again later"
                refusal = {"id": None, "ok": False, "error": error}
            _send_quietly(conn, refusal)
            conn.close()
            return
        thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
        thread.name = "memtui-agent-conn"
        thread.start()

    def _serve(self, conn: socket.socket) -> None:
        after: After | None = None
        try:
            conn.settimeout(IDLE_TIMEOUT_S)  # idle, stalled or half-sent: closed, never waited on
            greeted = False
            while not self._stop.is_set():
                try:
                    message = protocol.read_message(conn)
                except protocol.ProtocolError as exc:
                    _send_quietly(conn, {"id": None, "ok": False, "error": str(exc)})
                    return
                except (OSError, ConnectionError):
                    return
                mid = message.get("id")
                if mid is not None and type(mid) not in (int, str):
                    mid = None  # echo only plain ids (a NaN id could not be sent back)
                cmd = message.get("cmd")
                if not greeted:
                    error = _hello_error(cmd, message.get("version"))
                    if error:
                        _send_quietly(conn, {"id": mid, "ok": False, "error": error})
                        return
                    greeted = True
                reply, after = self._dispatch(cmd, message)
                try:
                    data = protocol.encode({"id": mid, **reply})
                except (protocol.ProtocolError, TypeError, ValueError) as exc:
                    err = {"id": mid, "ok": False, "error": f"reply could not be encoded: {exc}"}
                    data = protocol.encode(err)
                try:
                    conn.sendall(data)
                except OSError:
                    return
                if after is not None:
                    return
        finally:
            with self._lock:
                self._conns.discard(conn)
            conn.close()
            if after is not None:
                after()


def _hello_error(cmd: object, version: object) -> str:
    """Why a connection's first request is refused ('' when it is a good hello)."""
    if cmd != "hello":
        return "the first request must be 'hello'"
    if type(version) is not int or version != protocol.PROTOCOL_VERSION:
        return (
            f"protocol version {version!r} is not supported; "
            f"this agent speaks version {protocol.PROTOCOL_VERSION}"
        )
    return ""
