"""Provides profiling through a MemoryProfiler: this process, or another pid from outside."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from typing import TYPE_CHECKING

from memtui.cli.common import (
    EXIT_TARGET_ENDED,
    gate,
    summary_line,
)
from memtui.engine.report.writer import write_report

if TYPE_CHECKING:
    from memtui.engine.profiler import MemoryProfiler


def profiler_for(args: argparse.Namespace, pid: int | None) -> MemoryProfiler:
    from memtui.engine.profiler import MemoryProfiler

    return MemoryProfiler(
        snapshot_interval=args.snapshot_interval,
        trace_limit=args.trace_limit,
        alert_threshold_mb=args.alert_threshold,
        growth_threshold_mb_per_hour=args.growth_threshold,
        enable_tracemalloc=not args.no_tracemalloc,
        tracemalloc_frames=args.tracemalloc_frames,
        sample_interval=args.sample_interval,
        pid=pid,
        record_path=getattr(args, "record", None),
    )


async def profile_until_done(profiler: MemoryProfiler, duration_s: float | None) -> bool:
    """Profile until the duration passes, the target exits or a signal arrives.

    Returns True when interrupted by a signal.
    """
    loop = asyncio.get_running_loop()
    interrupted = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, interrupted.set)
    await profiler.start()
    try:
        forever = 10.0 * 365 * 86400
        run = asyncio.ensure_future(profiler.monitor_continuous(seconds=duration_s or forever))
        waiter = asyncio.ensure_future(interrupted.wait())
        await asyncio.wait({run, waiter}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()
        if not run.done():
            run.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await run
    finally:
        if profiler.is_running:
            await profiler.stop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)
    return interrupted.is_set()


def finish(
    profiler: MemoryProfiler,
    args: argparse.Namespace,
    interrupted: bool,
    expected_end: bool,
    command: str = "",
) -> int:
    """Write the report, print the one-line summary, and choose the exit status."""
    report = profiler.generate_report(command=command)
    if not profiler.in_process:
        from memtui.remote.process_source import process_facts

        report["process"] = process_facts(profiler.pid)  # maps, children, USS/PSS from outside
    where = write_report(report, args.output)
    if not args.quiet:
        print(summary_line(report, f"pid {profiler.pid}", where), file=sys.stderr)
    if profiler.target_ended:
        print(
            f"memtui: pid {profiler.pid} exited before the end; the report covers what was seen",
            file=sys.stderr,
        )
        return EXIT_TARGET_ENDED
    if interrupted and not expected_end:
        return 130
    return gate(args, report)
