"""Provides `memtui` itself (no subcommand): profile this process, or --pid another."""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memtui import __version__
from memtui.cli.common import (
    EPILOG,
    Parser,
    add_profile_flags,
    check_output,
    positive_int,
)
from memtui.cli.watch import watch_pid

if TYPE_CHECKING:
    pass
from memtui.cli.profiling import finish, profile_until_done, profiler_for


def cmd_profile(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="memtui",
        description="Profile a Python process's memory and report leaks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"memtui {__version__}")
    add_profile_flags(parser)
    parser.add_argument(
        "--pid",
        type=positive_int,
        default=None,
        help="process to profile (default: this process); memtui attaches its agent to a "
        "CPython process, else watches it from outside (memory only)",
    )
    parser.add_argument(
        "--no-attach",
        action="store_true",
        help="with --pid: never inject the agent; watch from outside only",
    )
    args = parser.parse_args(argv)
    check_output(args)
    pid = args.pid if args.pid is not None and args.pid != os.getpid() else None
    if pid is not None:
        return watch_pid(pid, args, fallback=True)
    profiler = profiler_for(args, pid)
    interrupted = asyncio.run(profile_until_done(profiler, None if args.monitor else args.duration))
    return finish(profiler, args, interrupted, expected_end=args.monitor)
