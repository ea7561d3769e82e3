"""Provides `memtui heapdump PID` and `memtui heapdump analyze FILE`."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memtui.cli.common import Parser, positive_float, positive_int
from memtui.cli.watch import agent_session_for

if TYPE_CHECKING:
    pass


def cmd_heapdump(argv: Sequence[str]) -> int:
    if argv and argv[0] == "analyze":
        return cmd_heapdump_analyze(argv[1:])
    parser = Parser(
        prog="memtui heapdump",
        description="Dump the heap of a running CPython through its agent (attaching it if "
        "needed); `memtui heapdump analyze FILE` explains a dump.",
    )
    parser.add_argument("pid", type=positive_int)
    parser.add_argument("--out-dir", default="heap_dumps", help="where the dump goes")
    parser.add_argument(
        "--writer",
        choices=("auto", "fork", "inplace"),
        default="auto",
        help="fork (the target pauses for the fork only) or inplace; auto: fork where possible",
    )
    parser.add_argument("--timeout", type=positive_float, default=600.0, help="seconds")
    args = parser.parse_args(argv)
    args.growth_threshold, args.alert_threshold, args.trace_limit = 10.0, None, 100
    from memtui.remote.client import AgentClient

    session, _ = agent_session_for(args.pid, args, attach=True, fallback=False)
    assert session is not None
    path = session.client.path
    session.close()
    from memtui.remote.client import AgentUnavailable

    try:
        with AgentClient(path, timeout_s=args.timeout + 10.0) as client:
            reply = client.request(
                "heap_dump",
                out_dir=os.path.abspath(args.out_dir),
                writer=args.writer,
                wait_s=args.timeout,
            )
    except AgentUnavailable:
        from memtui.errors import TargetProcessError

        if os.path.exists(f"/proc/{args.pid}"):
            raise TargetProcessError(
                f"the agent of pid {args.pid} was detached before the heap dump was reported; "
                f"a dump under way still completes in {os.path.abspath(args.out_dir)!r} "
                "(an incomplete one leaves no file)"
            ) from None
        raise TargetProcessError(
            f"pid {args.pid} exited before the heap dump was reported"
        ) from None
    if reply.get("pending"):
        print(f"memtui: heap dump of pid {args.pid} still being written to {reply['path']}")
        return 1
    print(
        f"memtui: heap dump of pid {args.pid}: {reply['path']} ({reply['objects']:,} objects, "
        f"{reply['bytes'] / 1e6:.1f} MB; {reply['writer']} writer paused the target "
        f"{reply['pause_s'] * 1e3:.1f} ms)"
    )
    return 0


def cmd_heapdump_analyze(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="memtui heapdump analyze",
        description="What holds the memory in a heap dump: retained sizes by type, the largest "
        "retainers, and the shortest chains from a root to a type's instances.",
    )
    parser.add_argument("file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--type", dest="type_name", help="chains to this type ('mod.Cls' or 'Cls')")
    parser.add_argument("--object", help="an object's address (0x...) to explain")
    parser.add_argument("--diff", metavar="OTHER", help="compare with an earlier dump")
    parser.add_argument("--top", type=positive_int, default=20, help="rows per table")
    args = parser.parse_args(argv)
    from memtui.engine.heap.diff import diff_heap_dumps, format_diff
    from memtui.engine.heap.dumps import analyze_heap_dump, format_analysis

    if args.diff:
        result = diff_heap_dumps(args.diff, args.file, top=args.top)
        print(json.dumps(result) if args.json else format_diff(result))
        return 0
    result = analyze_heap_dump(args.file, args.type_name, args.object, args.top)
    print(json.dumps(result) if args.json else format_analysis(result))
    return 0
