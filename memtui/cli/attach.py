"""Provides `memtui attach` and `memtui detach`: the agent into (and out of) a running CPython."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memtui.cli.common import Parser, add_profile_flags, check_output, positive_int
from memtui.cli.watch import watch_pid

if TYPE_CHECKING:
    pass


def cmd_attach(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="memtui attach",
        description="Inject memtui's agent into a running CPython (nothing is installed into its "
        "environment) and watch it: the monitor, or with --headless a report.",
    )
    parser.add_argument("pid", type=positive_int)
    add_profile_flags(parser)
    parser.add_argument(
        "--children",
        action="store_true",
        help="the whole tree: attach every Python descendant too (and their future forks); "
        "the report gets one entry per process",
    )
    parser.set_defaults(duration=60.0)
    args = parser.parse_args(argv)
    args.attach_children = args.children
    check_output(args)
    return watch_pid(args.pid, args, fallback=False)


def cmd_detach(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="memtui detach", description="Stop memtui's agent in a process and remove its files."
    )
    parser.add_argument("pid", type=positive_int)
    args = parser.parse_args(argv)
    from memtui.errors import TargetProcessError
    from memtui.remote.attach import detach
    from memtui.remote.procstate import stopped_reason

    stopped = stopped_reason(args.pid)
    if stopped:
        raise TargetProcessError(stopped)
    if detach(args.pid):
        print(f"memtui: agent in pid {args.pid} stopped", file=sys.stderr)
        return 0
    from memtui.remote.client import find_socket

    if find_socket(args.pid) is not None and os.path.exists(f"/proc/{args.pid}"):
        print(
            f"memtui: the memtui agent in pid {args.pid} did not answer the detach (a thread "
            "holds the GIL, e.g. a long C call); try again when the call returns",
            file=sys.stderr,
        )
        return 1
    print(f"memtui: no memtui agent is running in pid {args.pid}", file=sys.stderr)
    return 1
