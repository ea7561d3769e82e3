"""Provides the watch of another process through its agent: session, monitor, report.

Imported by `memtui run` before its program starts: the engine, asyncio and the profiler are
imported inside the functions that use them.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

from memtui.cli.common import EXIT_TARGET_ENDED, gate, summary_line

if TYPE_CHECKING:
    from memtui.engine.monitor.frame import Source
    from memtui.remote.fleet import Fleet
    from memtui.remote.launcher import LaunchedProgram
    from memtui.remote.session import AgentSession


def watch_session(
    session: AgentSession | Fleet,
    duration_s: float | None,
    interval_s: float,
    program: LaunchedProgram | None = None,
) -> bool:
    """Poll the agent until the duration passes, the target ends or a signal arrives.

    Returns True when a signal (Ctrl+C / SIGTERM) ended the watch.
    """
    from memtui.remote.launcher import ExitWatch

    stop = threading.Event()
    # A launched program's exit (or a signal) ends the wait at once: a short run does not
    # wait out the poll interval.
    exited = ExitWatch(program.pid) if program is not None else None

    def on_signal(*_: object) -> None:
        stop.set()
        if exited is not None:
            exited.wake()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set():
            alive = session.poll()
            print_notices(session)
            if not alive:
                break
            if program is not None and program.process.poll() is not None:
                session.poll()
                session.ended = True
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            if exited is None:
                stop.wait(interval_s)
            else:
                exited.wait(interval_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if exited is not None:
            exited.close()
    return stop.is_set()


def print_notices(session: AgentSession | Fleet) -> None:
    """The sessions' one-line notices (a recording that stopped or resumed), on stderr."""
    from memtui.remote.session import AgentSession

    members = [session] if isinstance(session, AgentSession) else session.sessions().values()
    for member in members:
        for line in member.notices:
            print(f"memtui: pid {member.pid}: {line}", file=sys.stderr, flush=True)
        member.notices.clear()


def finish_session(
    session: AgentSession, args: argparse.Namespace, fleet: Fleet | None = None
) -> tuple[dict[str, Any], str]:
    from memtui.engine.report.json_report import add_processes, build_report
    from memtui.engine.report.writer import write_report

    report = build_report(session.report_input())
    if fleet is not None:  # the pool: one entry per process seen, the root's sections kept
        fleet.finish()
        if fleet.seen_total > 1:  # a single process keeps the report it always had
            add_processes(report, fleet.processes(), fleet.seen_total)
        fleet.close()
    where = write_report(report, args.output)
    if not args.quiet:
        print(summary_line(report, f"pid {session.pid}", where), file=sys.stderr)
        for entry in report.get("processes", [])[1:]:
            v = entry["leak_detection"]
            if v["leak_detected"]:
                print(
                    f"memtui: pid {entry['pid']} ({entry['role']}): LEAK "
                    f"{v['leak_rate_mb_per_hour']:+.1f} MB/h",
                    file=sys.stderr,
                )
    return report, where


def fleet_for(session: AgentSession, args: argparse.Namespace) -> Fleet | None:
    """A Fleet over the session's process tree when children are followed (else None)."""
    if not getattr(args, "children", False):
        return None
    from memtui.remote.fleet import Fleet

    attacher = None
    if getattr(args, "attach_children", False):
        from memtui.remote.attach import attach_quietly

        attacher = attach_quietly
    return Fleet(session, attacher=attacher)


def wants_monitor(args: argparse.Namespace) -> bool:
    """The monitor needs a terminal and no report destination; otherwise run headless."""
    explicit_output = args.output != "-"
    return not (args.headless or explicit_output) and sys.stdin.isatty() and sys.stdout.isatty()


def open_monitor(
    source: Source, args: argparse.Namespace, launched: bool, log_path: str | None = None
) -> bool:
    """Run the monitor until the user quits; print its one-line summary. True: stop the target."""
    from memtui.remote.pool_source import PoolSource
    from memtui.tui.app import run_monitor

    refresh_s = max(1.0, args.sample_interval)
    if isinstance(source, PoolSource):  # a pool: the process list first (memtui/tui/pool_app)
        from memtui.tui.pool_app import run_pool_monitor

        outcome = run_pool_monitor(
            source, out_dir=args.out_dir, launched=launched, refresh_s=refresh_s
        )
    else:
        outcome = run_monitor(source, out_dir=args.out_dir, launched=launched, refresh_s=refresh_s)
    print(f"memtui: {outcome.summary}", file=sys.stderr)
    if outcome.report_path:
        print(f"memtui: report saved to {outcome.report_path}", file=sys.stderr)
    if log_path:
        print(f"memtui: the program's output is in {log_path}", file=sys.stderr)
    return bool(outcome.stop_target)


def watch_pid(pid: int, args: argparse.Namespace, fallback: bool) -> int:
    """Watch another process: through its agent (attaching if needed) or from outside."""
    attach = not getattr(args, "no_attach", False)
    session, why = agent_session_for(pid, args, attach=attach, fallback=fallback)
    if wants_monitor(args):
        from memtui.remote.sources import AgentSource, OutsideSource

        source: Source
        pool = fleet_for(session, args) if session is not None else None
        if pool is not None:
            from memtui.remote.pool_source import PoolSource

            source = PoolSource(pool, args.sample_interval)
        elif session is not None:
            source = AgentSource(session, args.sample_interval)
        else:
            source = OutsideSource(
                pid,
                why,
                args.growth_threshold,
                args.alert_threshold,
                args.sample_interval,
                record_path=args.record,
            )
        open_monitor(source, args, launched=False)
        return 0
    if session is None:
        import asyncio

        from memtui.cli.profiling import finish, profile_until_done, profiler_for

        profiler = profiler_for(args, pid)
        interrupted = asyncio.run(
            profile_until_done(profiler, None if args.monitor else args.duration)
        )
        return finish(profiler, args, interrupted, expected_end=args.monitor)
    fleet = fleet_for(session, args)
    interrupted = watch_session(
        session if fleet is None else fleet,
        None if args.monitor else args.duration,
        min(args.sample_interval, 1.0),
    )
    report, _ = finish_session(session, args, fleet)
    session.close()
    if session.ended:
        print(
            f"memtui: pid {session.pid} exited before the end; the report covers what was seen",
            file=sys.stderr,
        )
        return EXIT_TARGET_ENDED
    if interrupted and not args.monitor:
        return 130
    return gate(args, report)


def agent_session_for(
    pid: int, args: argparse.Namespace, attach: bool, fallback: bool
) -> tuple[AgentSession | None, str]:
    """A session with pid's agent, attaching when allowed; else (None, why) or an error."""
    from memtui.errors import TargetProcessError
    from memtui.remote.client import AgentClient, AgentNotAnswering, AgentUnavailable
    from memtui.remote.procstate import stopped_reason
    from memtui.remote.session import AgentSession

    if not os.path.exists(f"/proc/{pid}"):
        raise TargetProcessError(f"no process with pid {pid}")
    stopped = stopped_reason(pid)
    if stopped:  # nothing in it can answer: say so now rather than after the timeouts
        if not fallback:
            raise TargetProcessError(stopped)
        print(f"memtui: {stopped}; watching pid {pid} from outside (memory only)", file=sys.stderr)
        return None, stopped
    try:
        client = AgentClient.for_pid(pid)
    except AgentNotAnswering:
        # An agent is in there but cannot run: a second injection would not help either.
        why = (
            f"the memtui agent in pid {pid} does not answer (a thread holds the GIL, e.g. a "
            "long C call); nothing was injected; try again when the call returns"
        )
        if not fallback:
            raise TargetProcessError(why) from None
        print(f"memtui: {why}; watching pid {pid} from outside (memory only)", file=sys.stderr)
        return None, why
    except AgentUnavailable:
        if not attach:
            return None, "--no-attach: watched from outside only"
        from memtui.remote.attach import AttachError
        from memtui.remote.attach import attach as attach_agent

        try:
            result = attach_agent(pid, follow_forks=getattr(args, "children", False))
            client = AgentClient(result.socket_path)
        except (AttachError, AgentUnavailable) as exc:
            if not fallback:
                raise
            why = f"attach failed: {exc}"
            print(f"memtui: {why}; watching pid {pid} from outside (memory only)", file=sys.stderr)
            return None, why
    session = AgentSession(client, args.growth_threshold, args.alert_threshold, args.trace_limit)
    return session, ""
