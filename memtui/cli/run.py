"""Provides `memtui run` and `memtui demo`: start a program with the agent already in it.

The program is started first; the engine (numpy, the analysis) is imported only once its
agent answered, while the program runs, and not at all for a program that ended before.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from memtui.cli.common import (
    Parser,
    add_agent_flags,
    add_profile_flags,
    check_output,
    gate,
    positive_float,
)
from memtui.cli.watch import finish_session, fleet_for, open_monitor, wants_monitor, watch_session
from memtui.errors import UsageError

if TYPE_CHECKING:
    from memtui.engine.monitor.frame import Source
    from memtui.remote.client import AgentClient
    from memtui.remote.fleet import Fleet
    from memtui.remote.session import AgentSession


def cmd_demo(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="memtui demo",
        description="Watch the built-in leaky demo service (memtui run -- python -m memtui.demo).",
    )
    add_profile_flags(parser)
    add_agent_flags(parser)
    parser.add_argument(
        "--leak-rate",
        type=positive_float,
        default=2.0,
        help="how fast the demo leaks, MB/s (default 2)",
    )
    parser.set_defaults(duration=20.0, sample_interval=0.5)
    args = parser.parse_args(argv)
    check_output(args)
    if wants_monitor(args):
        args.duration = None
    command = [sys.executable, "-m", "memtui.demo", "--leak-rate", str(args.leak_rate)]
    return run_launched(command, args)


def agent_options(args: argparse.Namespace) -> dict[str, str]:
    options = {
        "MEMTUI_SAMPLE_INTERVAL": str(sample_interval(args)),
        "MEMTUI_TRACE": "off" if args.no_tracemalloc else args.trace_mode,
        "MEMTUI_TRACE_FRAMES": str(args.tracemalloc_frames),
    }
    if args.snapshot_interval < 30.0:  # the agent's census default is 30 s
        options["MEMTUI_CENSUS_INTERVAL"] = str(args.snapshot_interval)
    if getattr(args, "record", None):
        options["MEMTUI_RECORD"] = os.path.abspath(args.record)
    if getattr(args, "children", False):
        options["MEMTUI_CHILDREN"] = "1"  # every Python process of the tree gets an agent
    return options


def sample_interval(args: argparse.Namespace) -> float:
    """Sample at least as often as snapshots, and >= 32 times in a run of known length (never
    faster than 20 Hz): a 10 s CI run then has the samples a verdict needs."""
    gap = min(args.sample_interval, args.snapshot_interval)
    if args.duration and not getattr(args, "monitor", False):
        gap = min(gap, max(args.duration / 32.0, 0.05))
    return float(round(gap, 3))


def cmd_run(argv: Sequence[str]) -> int:
    args_list = list(argv)
    if "--" not in args_list:
        raise UsageError("memtui run: put the program after '--', e.g. memtui run -- python app.py")
    split = args_list.index("--")
    own, command = args_list[:split], args_list[split + 1 :]
    parser = Parser(
        prog="memtui run",
        description="Run a Python program with memtui's agent in it: the monitor, or with "
        "--headless a report when it exits (or after --duration).",
    )
    add_profile_flags(parser)
    add_agent_flags(parser)
    parser.add_argument(
        "--no-children",
        dest="children",
        action="store_false",
        help="profile the started process only (default: every Python process of its tree, "
        "forked workers and exec'ed children, each with its own agent)",
    )
    parser.set_defaults(duration=None)
    args = parser.parse_args(own)
    check_output(args)
    return run_launched(command, args)


def run_launched(command: list[str], args: argparse.Namespace) -> int:
    """Launch ``command`` with the agent, watch it (monitor or headless), pass its status on."""
    from memtui.remote.launcher import launch, stop_program

    monitor = wants_monitor(args)
    log_path = None
    if monitor:
        log_path = os.path.abspath(os.path.join(args.out_dir, f"memtui-run-{os.getpid()}.log"))
    program = launch(command, options=agent_options(args), log_path=log_path)
    answered = time.monotonic()  # --duration counts from here, not from the engine's import
    try:
        if program.client is None:
            print(f"memtui: {program.agent_error}; the program runs unprofiled", file=sys.stderr)
            return program.process.wait()
        # The engine (numpy, the analysis) is imported now, while the program runs; its
        # frames are pulled meanwhile, or a short program could end with its samples unseen.
        early = EarlyFrames(program.client, min(args.sample_interval, 1.0))
        try:
            from memtui.remote.session import AgentSession
        finally:
            frames = early.stop()
        session = AgentSession(
            program.client, args.growth_threshold, args.alert_threshold, args.trace_limit
        )
        for frame in frames:  # as the first polls would have applied them, in order
            session.apply_frame(frame)
        if args.record and session.recording_path is None:
            print(
                f"memtui: the agent could not record to {args.record} (see the agent's errors); "
                "profiling goes on without a recording",
                file=sys.stderr,
            )
        if monitor:
            from memtui.remote.sources import AgentSource

            source: Source = AgentSource(session, args.sample_interval, program.process)
            pool = fleet_for(session, args)
            if pool is not None:
                from memtui.remote.pool_source import PoolSource

                source = PoolSource(pool, args.sample_interval, program.process)
            stop = open_monitor(source, args, launched=True, log_path=log_path)
            if stop:
                ended = stop_program(program)
                print(f"memtui: stopped pid {program.pid} ({ended.describe()})", file=sys.stderr)
            return 0
        fleet = fleet_for(session, args)
        watched: AgentSession | Fleet = session if fleet is None else fleet
        duration = None if args.monitor or args.duration is None else args.duration
        if duration is not None:
            duration = max(0.0, duration - (time.monotonic() - answered))
        interrupted = watch_session(
            watched,
            duration,
            min(args.sample_interval, 1.0),
            program,
        )
        ended_by_us = None
        if program.process.poll() is None and (interrupted or args.duration is not None):
            watched.poll()
            ended_by_us = stop_program(program)
            status = ended_by_us.returncode
        else:
            status = program.process.wait()
        session.ended = True
        report, _ = finish_session(session, args, fleet)
        if ended_by_us is not None and not interrupted:
            # memtui ended the run (--duration): not the program's failure.
            print(
                f"memtui: --duration {args.duration:g} s reached: stopped pid {program.pid} "
                f"({ended_by_us.describe()})",
                file=sys.stderr,
            )
            return gate(args, report)
        if status == 0:
            return gate(args, report)
        return exit_status(status)
    finally:
        program.cleanup()


class EarlyFrames:
    """Pulls an agent's frames in a thread while the caller imports the engine.

    The same requests the session's polls make (``since`` the last sequence number, every
    ``interval_s``), kept raw for the session to apply in order: what the analysis sees does
    not change, only when it is decoded. Ends when stopped or when the agent goes away.
    """

    def __init__(self, client: AgentClient, interval_s: float) -> None:
        self.frames: list[dict[str, Any]] = []
        self._client = client
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._pull, name="memtui-early-frames", daemon=True)
        self._thread.start()

    def _pull(self) -> None:
        from memtui.remote.client import AgentNotAnswering, AgentUnavailable

        since = 0
        while not self._stop.is_set():
            try:
                frame = self._client.request("frame", since=since, summary_seq=0)
            except AgentNotAnswering:
                self._client.close()  # a late reply must not answer the session's request:
                return  # its poll fails, and the session reconnects as it always does
            except AgentUnavailable:
                return  # the program ended (or detached): the session finds out on its poll
            self.frames.append(frame)
            seq = frame.get("seq")
            since = seq if isinstance(seq, int) else since
            self._stop.wait(self._interval_s)

    def stop(self) -> list[dict[str, Any]]:
        """Stop pulling (after a request under way) and return the frames, oldest first."""
        self._stop.set()
        self._thread.join()
        return self.frames


def exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: killed by signal N gives 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode
