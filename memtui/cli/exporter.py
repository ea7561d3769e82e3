"""Provides `memtui exporter`: Prometheus metrics for every agent on this host."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memtui.cli.common import Parser, positive_float, positive_int
from memtui.errors import UsageError

if TYPE_CHECKING:
    pass


def cmd_exporter(argv: Sequence[str]) -> int:
    from memtui.remote.exporter import (
        DEFAULT_INTERVAL_S,
        DEFAULT_LISTEN,
        DEFAULT_TOP_TYPES,
        AgentPoller,
        start_exporter,
    )

    parser = Parser(
        prog="memtui exporter",
        description="Serve Prometheus metrics for every memtui agent this user can reach on "
        "this host (memtui run, attach); scrapes are answered from the last polling round.",
    )
    parser.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"address of the /metrics endpoint (default {DEFAULT_LISTEN}; ':PORT' = all)",
    )
    parser.add_argument(
        "--interval",
        type=positive_float,
        default=DEFAULT_INTERVAL_S,
        help=f"seconds between polls of the agents (default {DEFAULT_INTERVAL_S:g})",
    )
    parser.add_argument(
        "--top-types",
        type=positive_int,
        default=DEFAULT_TOP_TYPES,
        help=f"memtui_objects series per process (default {DEFAULT_TOP_TYPES})",
    )
    parser.add_argument(
        "--growth-threshold",
        type=positive_float,
        default=10.0,
        help="leak threshold in MB/hour for memtui_leak_state (default 10)",
    )
    parser.add_argument(
        "--socket-dir",
        default=None,
        metavar="DIR",
        help="discover the agents started with MEMTUI_SOCKET_DIR=DIR (default: /tmp/memtui-UID)",
    )
    args = parser.parse_args(argv)
    from memtui.remote.discovery import agent_sockets

    if args.socket_dir is not None and not os.path.isdir(args.socket_dir):
        raise UsageError(f"--socket-dir {args.socket_dir!r} is not a directory")
    poller = AgentPoller(
        interval_s=args.interval,
        top_types=args.top_types,
        growth_threshold_mb_per_hour=args.growth_threshold,
        discover=lambda: agent_sockets(directory=args.socket_dir),
    )
    exporter = start_exporter(args.listen, poller)
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    print(
        f"memtui: exporter on {exporter.url} ({len(poller.snapshot.figures)} agents now)",
        file=sys.stderr,
        flush=True,
    )
    try:
        stop.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        exporter.close()
    return 0
