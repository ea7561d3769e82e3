"""Provides fork following: forked children of an agent-equipped process start their own agent.

Why: worker pools (gunicorn, celery prefork, multiprocessing) fork the processes where the
leaks live; each needs its own socket, history and recording. The agent's after-fork hook
(memtui.probe.agent._after_fork_in_child) disables the parent's agent in the child, then
calls restart_in_child when following is on. Standard library only.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from memtui.probe.agent import Agent

_follow = False
"""Forked children start an agent of their own (memtui run, attach --children)."""


def follow_forks(on: bool = True) -> None:
    """Make every forked child of this process start its own agent with the same settings."""
    global _follow
    _follow = bool(on)


def following() -> bool:
    return _follow


def child_record_path(path: str, pid: int) -> str:
    """The recording of child ``pid``: ``run.db`` -> ``run-PID.db`` (one file per pid)."""
    root, ext = os.path.splitext(path)
    return f"{root}-{pid}{ext or '.db'}"


def prune_dead_sockets(sock_dir: str) -> int:
    """Remove ``agent-PID.sock`` files of pids that no longer exist; returns how many.

    Why: a worker killed with SIGKILL (gunicorn's timeout) cannot remove its own socket, and a
    pool recycling workers for weeks must not pile them up.
    """
    removed = 0
    try:
        names = os.listdir(sock_dir)
    except OSError:
        return 0
    for name in names:
        if not (name.startswith("agent-") and name.endswith(".sock")):
            continue
        try:
            pid = int(name[6:-5])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            try:
                os.unlink(os.path.join(sock_dir, name))
                removed += 1
            except OSError:
                pass
        except OSError:
            continue  # EPERM: alive, someone else's
    return removed


def reset_locks_in_child() -> None:
    """Right after fork: module locks a parent thread may have held are replaced."""
    from memtui.probe import recorder

    recorder._lock = threading.Lock()  # the marker sinks' lock


def restart_in_child(parent: Agent) -> None:
    """Start this child's own agent with the parent agent's settings; never raises."""
    from memtui.probe.agent import AgentError, start_agent

    record = parent.record_path
    try:
        start_agent(
            sample_interval_s=parent.sample_interval_s,
            census_interval_s=parent.census_interval_s,
            trace_mode=parent.tracer.base_mode,
            trace_frames=parent.tracer.frames,
            sock_dir=parent.sock_dir,
            window_s=parent.tracer.window_s,
            period_s=None if parent.tracer.budget is not None else parent.tracer.period_s,
            clock=parent.clock,
            record_path=child_record_path(record, os.getpid()) if record else None,
        )
        prune_dead_sockets(parent.sock_dir)
    except AgentError as exc:
        print(str(exc), file=sys.stderr)
    except Exception as exc:  # the child must run on, observed or not
        print(f"memtui: the agent did not start after fork: {exc!r}", file=sys.stderr)
