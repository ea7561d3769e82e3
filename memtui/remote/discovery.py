"""Provides agent discovery on this host: every agent socket this user can reach.

Why: the exporter and the pool watcher must find agents that come and go (recycled workers)
without a list given to them, and must not keep the sockets of dead pids around.
"""

from __future__ import annotations

import os

from memtui.probe.follow import prune_dead_sockets
from memtui.probe.protocol import socket_dir


def prune_stale_sockets(uid: int | None = None, directory: str | None = None) -> int:
    """Remove the sockets of dead pids in our socket directory; how many were removed."""
    return prune_dead_sockets(directory or socket_dir(uid))


def agent_sockets(uid: int | None = None, directory: str | None = None) -> dict[int, str]:
    """pid -> socket path of every live agent of ``uid`` (default: ours), stale ones pruned.

    ``directory``: another socket directory (agents started with MEMTUI_SOCKET_DIR).
    """
    directory = directory or socket_dir(uid)
    prune_stale_sockets(uid, directory)
    try:
        names = os.listdir(directory)
    except OSError:
        return {}
    found: dict[int, str] = {}
    for name in names:
        if name.startswith("agent-") and name.endswith(".sock"):
            try:
                pid = int(name[6:-5])
            except ValueError:
                continue
            found[pid] = os.path.join(directory, name)
    return found
