"""Provides `memtui run`: start a Python program with the agent already inside it.

The program gets a private directory on PYTHONPATH holding a ``sitecustomize`` that (1) runs
the environment's own sitecustomize, if any, (2) with ``MEMTUI_CHILDREN=1`` (the default of
`memtui run`) stays on PYTHONPATH so that exec'ed Python children start their own agent too
(forked children restart theirs, see memtui.probe.agent.follow_forks), otherwise removes
itself so that children are not profiled by accident, and (3) puts the standard-library-only
probe zip (with bytecode, cached in /tmp/memtui-UID/probe, see memtui.remote.probe_zip) at the
END of sys.path and starts the agent. Nothing is installed into the program's environment.
A program started with -I/-E/-S skips sitecustomize: the launcher then reports that the agent
did not start, and the caller may attach instead. The launcher waits for the agent without
fixed sleeps: looks with backoff, and the program's exit ends the wait at once.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import IO, NamedTuple

from memtui.errors import TargetProcessError, UsageError
from memtui.probe.protocol import PROTOCOL_VERSION
from memtui.remote.client import AgentClient, AgentNotAnswering, AgentUnavailable, find_socket
from memtui.remote.probe_zip import build_probe_zip, cached_probe_zip

AGENT_START_TIMEOUT_S: float = 15.0

_SITECUSTOMIZE = '''\
"""memtui's bootstrap: starts the memtui agent in this process (see memtui.remote.launcher)."""
import os as _os
import sys as _sys

_here = _os.path.dirname(_os.path.abspath(__file__))
CHILD_AGENT_DELAY_S = 0.5


def _memtui_chain_original():
    # Run the sitecustomize this environment would have run without us.
    import importlib.util
    saved = list(_sys.path)
    _sys.path[:] = [p for p in _sys.path if _os.path.abspath(p or ".") != _here]
    # We are sitecustomize, still being imported: step aside while looking, then come back,
    # or the import machinery loses track of us.
    me = _sys.modules.pop("sitecustomize", None)
    try:
        spec = importlib.util.find_spec("sitecustomize")
        if spec is not None and spec.loader is not None:
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
    finally:
        _sys.path[:] = saved
        if me is not None:
            _sys.modules["sitecustomize"] = me


def _memtui_start():
    if _os.environ.get("MEMTUI_CHILDREN") == "1":
        # Follow the tree: exec'ed Python children inherit PYTHONPATH and start their agent.
        probe_zip = _os.environ.get("MEMTUI_PROBE_ZIP", "")
    else:
        paths = [p for p in _os.environ.get("PYTHONPATH", "").split(_os.pathsep) if p]
        paths = [p for p in paths if _os.path.abspath(p) != _here]
        if paths:
            _os.environ["PYTHONPATH"] = _os.pathsep.join(paths)
        else:
            _os.environ.pop("PYTHONPATH", None)
        probe_zip = _os.environ.pop("MEMTUI_PROBE_ZIP", "")
    if probe_zip and probe_zip not in _sys.path:
        _sys.path.append(probe_zip)
    root = _os.environ.get("MEMTUI_TREE_ROOT")
    if _os.environ.get("MEMTUI_CHILDREN") == "1" and root and root != str(_os.getpid()):
        # An exec'ed descendant: its agent starts in the background after a moment, so a
        # short-lived helper (python -c ..., a compiler step) pays nothing for it.
        import threading

        def _later():
            import time

            time.sleep(CHILD_AGENT_DELAY_S)
            import memtui.probe.bootstrap  # noqa: F401

        threading.Thread(target=_later, name="memtui-agent-boot", daemon=True).start()
        return
    import memtui.probe.bootstrap  # noqa: F401  (starts the agent; never raises)


try:
    _memtui_chain_original()
except Exception as _exc:  # the program's own sitecustomize failed: tell, as Python would
    print(f"Error in sitecustomize; set PYTHONVERBOSE for traceback: {_exc!r}", file=_sys.stderr)
try:
    _memtui_start()
except Exception as _exc:  # never stop the program because memtui could not start
    print(f"memtui: the agent did not start: {_exc!r}", file=_sys.stderr)
'''


class LaunchedProgram:
    """A program started by `memtui run`, with its agent (when it came up).

    A plain class, not a dataclass: `memtui run` imports this module before its program
    starts, and dataclasses (with inspect) is ~10 ms of every run's fixed cost.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        bootstrap_dir: str,
        command: list[str],
        log_path: str | None = None,
        client: AgentClient | None = None,
        agent_error: str = "",
        _log_file: IO[bytes] | None = None,
    ) -> None:
        self.process = process
        self.bootstrap_dir = bootstrap_dir
        self.command = command
        self.log_path = log_path
        self.client = client
        self.agent_error = agent_error
        self._log_file = _log_file

    def __repr__(self) -> str:
        return f"LaunchedProgram(pid={self.pid}, command={self.command!r})"

    @property
    def pid(self) -> int:
        return self.process.pid

    def cleanup(self) -> None:
        """Remove the bootstrap directory and close our ends (the program is left alone)."""
        if self.client is not None:
            self.client.close()
        if self._log_file is not None:
            self._log_file.close()
        shutil.rmtree(self.bootstrap_dir, ignore_errors=True)


def agent_environment(
    base: Mapping[str, str], bootstrap_dir: str, probe_zip: str, options: Mapping[str, str]
) -> dict[str, str]:
    """The program's environment: ours first on PYTHONPATH, the agent's settings as MEMTUI_*."""
    env = dict(base)
    existing = env.get("PYTHONPATH", "")
    env["PYTHONPATH"] = bootstrap_dir + (os.pathsep + existing if existing else "")
    env["MEMTUI_PROBE_ZIP"] = probe_zip
    env.update(options)
    return env


def launch(
    command: Sequence[str],
    *,
    options: Mapping[str, str] | None = None,
    log_path: str | None = None,
    wait_for_agent_s: float = AGENT_START_TIMEOUT_S,
) -> LaunchedProgram:
    """Start ``command`` (``python app.py …`` or ``python -m mod …``) with the agent in it.

    With ``log_path``, the program's stdout and stderr go to that file (for the monitor,
    which owns the terminal); otherwise they stay on ours. Its stdin is ours either way.
    """
    if not command:
        raise UsageError("memtui run needs a command after '--', e.g. memtui run -- python app.py")
    if shutil.which(command[0]) is None and not os.path.exists(command[0]):
        raise UsageError(f"cannot run {command[0]!r}: no such program")
    bootstrap_dir = tempfile.mkdtemp(prefix="memtui-run-")
    try:
        with open(os.path.join(bootstrap_dir, "sitecustomize.py"), "w", encoding="utf-8") as f:
            f.write(_SITECUSTOMIZE)
        # Bytecode inside, so the program does not compile the agent at every start: the
        # user's cached zip, else one of this run's own (no fsync: it lives as long as the run).
        probe_zip = cached_probe_zip() or build_probe_zip(
            bootstrap_dir, bytecode=True, durable=False
        )
        env = agent_environment(os.environ, bootstrap_dir, probe_zip, options or {})
        log_file = open(log_path, "ab") if log_path else None  # noqa: SIM115 - kept open
        try:
            process = subprocess.Popen(
                list(command), env=env, stdout=log_file, stderr=log_file, close_fds=True
            )
        except OSError as exc:
            if log_file is not None:
                log_file.close()
            raise UsageError(f"cannot run {command[0]!r}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(bootstrap_dir, ignore_errors=True)
        raise
    program = LaunchedProgram(process, bootstrap_dir, list(command), log_path, _log_file=log_file)
    program.client, program.agent_error = _wait_for_agent(process, wait_for_agent_s)
    return program


AGENT_POLL_FIRST_S: float = 0.002
AGENT_POLL_GROWTH: float = 1.1
AGENT_POLL_MAX_S: float = 0.05
"""The wait for the agent's socket (a stat or two) looks again after 2 ms, then backs off by
10% a look to 50 ms (10 ms at ~0.1 s, 50 ms from ~0.5 s): an agent that is up in ~0.1 s is
found within a few ms, one that takes long costs few looks. The program's exit ends the wait
at once (ExitWatch), not at the next look."""


def _connect(pid: int) -> AgentClient | None:
    """A connection to ``pid``'s agent once its socket listens (its hello answered), or None."""
    path = find_socket(pid)
    if path is None:
        return None
    try:
        return AgentClient(path)
    except AgentUnavailable:
        return None  # the socket exists but is not listening yet


AGENT_SETTLE_S: float = 1.0
"""How long an agent that answers may take to take its first sample (the end of its start)
before it is taken as it is."""


def _ready(client: AgentClient, settled: bool) -> str:
    """Whether the agent behind ``client`` has finished starting: "ready", "starting" or
    "gone".

    An agent listens before it has finished starting (its recording, its collector), so a
    quick look can get a hello that says "no recording" of a run that records. Its first
    sample ends its start: from then on a fresh hello tells the truth. An agent that went
    away after its hello belongs to a program that ends as it starts (``python -c pass``
    stops its agent at exit): nothing was watched. Frames and hellos are read-only.
    """
    try:
        frame = client.request("frame", since=0, summary_seq=0)
        if int(frame.get("seq", 0)) < 1 and not settled:
            return "starting"
        client.hello = client.request("hello", version=PROTOCOL_VERSION)
    except AgentNotAnswering:
        return "ready"  # alive but busy (a C call holding the GIL): the session copes
    except AgentUnavailable:
        return "gone"
    return "ready"


class ExitWatch:
    """Waits that end as soon as a process exits or ``wake()`` is called, without polling.

    Uses a pidfd (Linux 5.3+) and a self-pipe that ``wake()`` (safe in a signal handler)
    writes to; where there is no pidfd, a wait returns at its timeout as a sleep would.
    """

    def __init__(self, pid: int) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._write, False)
        self._pidfd: int | None = None
        with contextlib.suppress(AttributeError, OSError):  # no pidfd here, or already reaped
            self._pidfd = os.pidfd_open(pid)

    def wait(self, timeout_s: float) -> None:
        """Return after ``timeout_s``, or at once when the process has exited or was woken."""
        fds = [self._read] if self._pidfd is None else [self._read, self._pidfd]
        ready, _, _ = select.select(fds, [], [], max(0.0, timeout_s))
        if self._read in ready:
            with contextlib.suppress(OSError):
                os.read(self._read, 512)

    def wake(self) -> None:
        with contextlib.suppress(OSError):  # a full pipe is already a wake-up
            os.write(self._write, b"\0")

    def close(self) -> None:
        for fd in (self._read, self._write, self._pidfd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._pidfd = None

    def __enter__(self) -> ExitWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _wait_for_agent(
    process: subprocess.Popen[bytes], timeout_s: float
) -> tuple[AgentClient | None, str]:
    deadline = time.monotonic() + timeout_s
    pause = AGENT_POLL_FIRST_S
    client: AgentClient | None = None
    answered_at = 0.0
    with ExitWatch(process.pid) as exited:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                if client is not None:
                    client.close()
                return (
                    None,
                    f"the program exited (status {process.returncode}) before its agent answered",
                )
            if client is None:
                client = _connect(process.pid)
                answered_at = time.monotonic()
            if client is not None:
                state = _ready(client, time.monotonic() - answered_at >= AGENT_SETTLE_S)
                if state == "ready":
                    return client, ""
                if state == "gone":
                    client.close()
                    client = None
            exited.wait(min(pause, deadline - time.monotonic()))
            pause = min(pause * AGENT_POLL_GROWTH, AGENT_POLL_MAX_S)
    if client is not None:
        client.close()
    return None, (
        f"no agent answered within {timeout_s:.0f} s (was the program started with -I, -E or -S, "
        "or is it not a Python program?)"
    )


STOP_GRACE_S: float = 5.0


class StopResult(NamedTuple):
    """How a program that memtui stopped ended: its status and the last signal memtui sent."""

    returncode: int
    """The program's status (negative: the signal that ended it)."""
    signal_name: str
    """SIGTERM normally; SIGKILL when it ignored SIGTERM for the grace period; "" if it had
    already exited."""

    def describe(self) -> str:
        how = (
            f"killed by {signal.Signals(-self.returncode).name}"
            if self.returncode < 0
            else f"exit status {self.returncode}"
        )
        if not self.signal_name:
            return f"it had already exited ({how})"
        return f"sent {self.signal_name}; {how}"


def stop_program(program: LaunchedProgram, grace_s: float = STOP_GRACE_S) -> StopResult:
    """Stop the program gently: SIGTERM (Python exits quietly on it, without the traceback
    that SIGINT's KeyboardInterrupt prints; a program with its own handler cleans up), then
    SIGKILL after ``grace_s``. TargetProcessError if even SIGKILL does not end it."""
    process = program.process
    sent = ""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        try:
            process.send_signal(sig)
        except ProcessLookupError:
            break
        sent = sig.name
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            continue
    if process.poll() is None:
        raise TargetProcessError(f"pid {process.pid} did not stop")
    return StopResult(process.returncode, sent)
