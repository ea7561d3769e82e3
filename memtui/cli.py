"""Provides the command line: argument parsing and the commands; main(argv) -> exit code."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from memtui import __version__
from memtui.engine.report.writer import format_for, write_report
from memtui.errors import MemtuiError, UsageError

if TYPE_CHECKING:
    from memtui.engine.frame import Source
    from memtui.engine.profiler import MemoryProfiler
    from memtui.remote.fleet import Fleet
    from memtui.remote.launcher import LaunchedProgram
    from memtui.remote.session import AgentSession

EXIT_LEAK = 3
EXIT_TARGET_ENDED = 4
EXIT_INCONCLUSIVE = 5


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def _add_profile_flags(parser: argparse.ArgumentParser) -> None:
    """The spec's command-line arguments (names and defaults as documented)."""
    parser.add_argument(
        "--duration",
        type=_positive_float,
        default=3600.0,
        help="profiling duration in seconds (default 3600)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=_positive_float,
        default=60.0,
        help="seconds between snapshots (default 60)",
    )
    parser.add_argument(
        "--trace-limit",
        type=_positive_int,
        default=100,
        help="number of top allocations to track (default 100)",
    )
    parser.add_argument(
        "--alert-threshold",
        type=_positive_float,
        default=1000.0,
        help="memory threshold in MB (default 1000)",
    )
    parser.add_argument(
        "--growth-threshold",
        type=_positive_float,
        default=10.0,
        help="growth rate threshold in MB/hour (default 10)",
    )
    parser.add_argument(
        "--output",
        default="-",
        help="report file, .json or .html ('-' or absent: JSON on stdout)",
    )
    parser.add_argument(
        "--detailed-report",
        action="store_true",
        help="the detailed, self-contained HTML report (default --output: memory_report.html)",
    )
    parser.add_argument(
        "--record",
        metavar="PATH",
        default=None,
        help="also record the run to this SQLite file (memtui report PATH rebuilds reports)",
    )
    parser.add_argument(
        "--monitor",
        action="store_true",
        help="run until interrupted (Ctrl+C / SIGTERM), then write the report",
    )
    _add_gate_flags(parser)
    parser.add_argument(
        "--sample-interval",
        type=_positive_float,
        default=1.0,
        help="seconds between memory samples (default 1)",
    )
    parser.add_argument(
        "--no-tracemalloc",
        action="store_true",
        help="do not trace allocation sites (lowest overhead)",
    )
    parser.add_argument(
        "--tracemalloc-frames",
        type=_positive_int,
        default=1,
        help="traceback depth per allocation (default 1)",
    )
    parser.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    parser.add_argument(
        "--headless",
        action="store_true",
        help="no monitor: write the report (also implied by --output or a non-terminal)",
    )
    parser.add_argument(
        "--out-dir",
        default=".",
        help="where the monitor writes heap dumps and exported reports (default: .)",
    )


EPILOG = f"""\
subcommands:
  memtui run -- python app.py   run a program with the agent in it, report at exit
  memtui attach PID             inject the agent into a running CPython and report
  memtui detach PID             stop the agent in a process
  memtui demo                   profile the built-in leaky demo service
  memtui analyze FILE.csv       leak verdict for a recorded series (timestamp,rss_bytes)
  memtui report RUN.db          JSON or HTML report from a recording (--record), any time
  memtui heapdump PID           dump a running CPython's heap (heapdump analyze FILE: explain it)
  memtui exporter --listen H:P  Prometheus metrics for every agent on this host

exit status:
  0  finished (and no leak, or --fail-on-leak not given)
  1  error (unknown pid, unreadable file, report not writable...)
  2  bad command-line usage
  {EXIT_LEAK}  a leak was detected and --fail-on-leak was given
  {EXIT_INCONCLUSIVE}  inconclusive: the run was too short for a verdict (report state
     "insufficient_data") and --fail-on-leak or --fail-on-inconclusive was given
     (--allow-inconclusive lets it pass with a warning)
  {EXIT_TARGET_ENDED}  the watched process exited before the end (the report of what was seen
     is still written)
  130  interrupted before the end (the report of what was seen is still written)
"""


def _add_gate_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fail-on-leak",
        action="store_true",
        help=f"exit with status {EXIT_LEAK} when a leak is detected, {EXIT_INCONCLUSIVE} when the "
        "run was too short for a verdict (for CI)",
    )
    parser.add_argument(
        "--fail-on-inconclusive",
        action="store_true",
        help=f"exit with status {EXIT_INCONCLUSIVE} when the run was too short for a verdict, "
        "even without --fail-on-leak",
    )
    parser.add_argument(
        "--allow-inconclusive",
        action="store_true",
        help="with --fail-on-leak: a run too short for a verdict exits 0 (with a warning)",
    )


def _gate(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """The CI verdict: EXIT_LEAK, EXIT_INCONCLUSIVE (never a silent pass) or 0."""
    leak = report["leak_detection"]
    if args.fail_on_leak and _leaked(report):
        return EXIT_LEAK
    if leak.get("state") != "insufficient_data":
        return 0
    gated = args.fail_on_inconclusive or (args.fail_on_leak and not args.allow_inconclusive)
    word = "failing" if gated else "passing anyway (--allow-inconclusive)"
    if args.fail_on_leak or args.fail_on_inconclusive:
        print(f"memtui: inconclusive, {word}: {leak.get('reason', '')}", file=sys.stderr)
    return EXIT_INCONCLUSIVE if gated else 0


def _check_output(args: argparse.Namespace) -> None:
    """Fail before profiling for an hour, not after, when the report could not be written."""
    if args.detailed_report and args.output == "-":
        args.output = "memory_report.html"
    format_for(args.output)


def _profiler_for(args: argparse.Namespace, pid: int | None) -> MemoryProfiler:
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


async def _profile(profiler: MemoryProfiler, duration_s: float | None) -> bool:
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


def _summary_line(report: dict[str, Any], who: str, where: str) -> str:
    """The one line printed after a headless run: verdict, peak, culprit, where the report is."""
    v = report["leak_detection"]
    s = report["summary"]
    verdict = (
        f"LEAK {v['leak_rate_mb_per_hour']:+.1f} MB/h (confidence {v['confidence']:.0%})"
        if v["leak_detected"]
        else "inconclusive (too little data for a verdict)"
        if v.get("state") == "insufficient_data"
        else "no leak"
    )
    line = f"memtui: {who}: {verdict}; peak {s['peak_memory_mb']:.1f} MiB over "
    line += f"{(s['duration_hours'] or 0) * 3600:.0f} s"
    suspects = v.get("suspects") or []
    top = report.get("top_allocators") or []
    if suspects:
        line += f"; suspect: {suspects[0]['detail']}"
    elif top:
        line += f"; top allocator {top[0]['file']}:{top[0]['line']} in {top[0]['function']}"
    return line + ("" if where == "-" else f"; report: {where}")


def _finish(
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
        print(_summary_line(report, f"pid {profiler.pid}", where), file=sys.stderr)
    if profiler.target_ended:
        print(
            f"memtui: pid {profiler.pid} exited before the end; the report covers what was seen",
            file=sys.stderr,
        )
        return EXIT_TARGET_ENDED
    if interrupted and not expected_end:
        return 130
    return _gate(args, report)


def _cmd_profile(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui",
        description="Profile a Python process's memory and report leaks.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"memtui {__version__}")
    _add_profile_flags(parser)
    parser.add_argument(
        "--pid",
        type=_positive_int,
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
    _check_output(args)
    pid = args.pid if args.pid is not None and args.pid != os.getpid() else None
    if pid is not None:
        return _watch_pid(pid, args, fallback=True)
    profiler = _profiler_for(args, pid)
    interrupted = asyncio.run(_profile(profiler, None if args.monitor else args.duration))
    return _finish(profiler, args, interrupted, expected_end=args.monitor)


def _cmd_demo(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui demo",
        description="Watch the built-in leaky demo service (memtui run -- python -m memtui.demo).",
    )
    _add_profile_flags(parser)
    _add_agent_flags(parser)
    parser.add_argument(
        "--leak-rate",
        type=_positive_float,
        default=2.0,
        help="how fast the demo leaks, MB/s (default 2)",
    )
    parser.set_defaults(duration=20.0, sample_interval=0.5)
    args = parser.parse_args(argv)
    _check_output(args)
    if _wants_monitor(args):
        args.duration = None
    command = [sys.executable, "-m", "memtui.demo", "--leak-rate", str(args.leak_rate)]
    return _run_launched(command, args)


def _watch_session(
    session: AgentSession | Fleet,
    duration_s: float | None,
    interval_s: float,
    program: LaunchedProgram | None = None,
) -> bool:
    """Poll the agent until the duration passes, the target ends or a signal arrives.

    Returns True when a signal (Ctrl+C / SIGTERM) ended the watch.
    """
    stop = threading.Event()
    previous = {
        sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    deadline = None if duration_s is None else time.monotonic() + duration_s
    try:
        while not stop.is_set():
            alive = session.poll()
            _print_notices(session)
            if not alive:
                break
            if program is not None and program.process.poll() is not None:
                session.poll()
                session.ended = True
                break
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(interval_s)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return stop.is_set()


def _print_notices(session: AgentSession | Fleet) -> None:
    """The sessions' one-line notices (a recording that stopped or resumed), on stderr."""
    from memtui.remote.session import AgentSession

    members = [session] if isinstance(session, AgentSession) else session.sessions().values()
    for member in members:
        for line in member.notices:
            print(f"memtui: pid {member.pid}: {line}", file=sys.stderr, flush=True)
        member.notices.clear()


def _finish_session(
    session: AgentSession, args: argparse.Namespace, fleet: Fleet | None = None
) -> tuple[dict[str, Any], str]:
    from memtui.engine.report.json_report import add_processes, build_report

    report = build_report(session.report_input())
    if fleet is not None:  # the pool: one entry per process seen, the root's sections kept
        fleet.finish()
        if fleet.seen_total > 1:  # a single process keeps the report it always had
            add_processes(report, fleet.processes(), fleet.seen_total)
        fleet.close()
    where = write_report(report, args.output)
    if not args.quiet:
        print(_summary_line(report, f"pid {session.pid}", where), file=sys.stderr)
        for entry in report.get("processes", [])[1:]:
            v = entry["leak_detection"]
            if v["leak_detected"]:
                print(
                    f"memtui: pid {entry['pid']} ({entry['role']}): LEAK "
                    f"{v['leak_rate_mb_per_hour']:+.1f} MB/h",
                    file=sys.stderr,
                )
    return report, where


def _leaked(report: dict[str, Any]) -> bool:
    """--fail-on-leak: the root leaks, or (a pool report) any of its processes does."""
    pool = report.get("pool")
    return bool(report["memory_leak_detected"] or (pool and pool["leak_detected"]))


def _fleet_for(session: AgentSession, args: argparse.Namespace) -> Fleet | None:
    """A Fleet over the session's process tree when children are followed (else None)."""
    if not getattr(args, "children", False):
        return None
    from memtui.remote.fleet import Fleet

    attacher = None
    if getattr(args, "attach_children", False):
        from memtui.remote.attach import attach_quietly

        attacher = attach_quietly
    return Fleet(session, attacher=attacher)


def _agent_options(args: argparse.Namespace) -> dict[str, str]:
    options = {
        "MEMTUI_SAMPLE_INTERVAL": str(_sample_interval(args)),
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


def _sample_interval(args: argparse.Namespace) -> float:
    """Sample at least as often as snapshots, and >= 32 times in a run of known length (never
    faster than 20 Hz): a 10 s CI run then has the samples a verdict needs."""
    gap = min(args.sample_interval, args.snapshot_interval)
    if args.duration and not getattr(args, "monitor", False):
        gap = min(gap, max(args.duration / 32.0, 0.05))
    return float(round(gap, 3))


def _cmd_run(argv: Sequence[str]) -> int:
    args_list = list(argv)
    if "--" not in args_list:
        raise UsageError("memtui run: put the program after '--', e.g. memtui run -- python app.py")
    split = args_list.index("--")
    own, command = args_list[:split], args_list[split + 1 :]
    parser = _Parser(
        prog="memtui run",
        description="Run a Python program with memtui's agent in it: the monitor, or with "
        "--headless a report when it exits (or after --duration).",
    )
    _add_profile_flags(parser)
    _add_agent_flags(parser)
    parser.add_argument(
        "--no-children",
        dest="children",
        action="store_false",
        help="profile the started process only (default: every Python process of its tree, "
        "forked workers and exec'ed children, each with its own agent)",
    )
    parser.set_defaults(duration=None)
    args = parser.parse_args(own)
    _check_output(args)
    return _run_launched(command, args)


def _wants_monitor(args: argparse.Namespace) -> bool:
    """The monitor needs a terminal and no report destination; otherwise run headless."""
    explicit_output = args.output != "-"
    return not (args.headless or explicit_output) and sys.stdin.isatty() and sys.stdout.isatty()


def _run_launched(command: list[str], args: argparse.Namespace) -> int:
    """Launch ``command`` with the agent, watch it (monitor or headless), pass its status on."""
    from memtui.remote.launcher import launch, stop_program
    from memtui.remote.session import AgentSession

    monitor = _wants_monitor(args)
    log_path = None
    if monitor:
        log_path = os.path.abspath(os.path.join(args.out_dir, f"memtui-run-{os.getpid()}.log"))
    program = launch(command, options=_agent_options(args), log_path=log_path)
    try:
        if program.client is None:
            print(f"memtui: {program.agent_error}; the program runs unprofiled", file=sys.stderr)
            return program.process.wait()
        session = AgentSession(
            program.client, args.growth_threshold, args.alert_threshold, args.trace_limit
        )
        if args.record and session.recording_path is None:
            print(
                f"memtui: the agent could not record to {args.record} (see the agent's errors); "
                "profiling goes on without a recording",
                file=sys.stderr,
            )
        if monitor:
            from memtui.remote.sources import AgentSource

            source: Source = AgentSource(session, args.sample_interval, program.process)
            pool = _fleet_for(session, args)
            if pool is not None:
                from memtui.remote.pool_source import PoolSource

                source = PoolSource(pool, args.sample_interval, program.process)
            stop = _open_monitor(source, args, launched=True, log_path=log_path)
            if stop:
                ended = stop_program(program)
                print(f"memtui: stopped pid {program.pid} ({ended.describe()})", file=sys.stderr)
            return 0
        fleet = _fleet_for(session, args)
        watched: AgentSession | Fleet = session if fleet is None else fleet
        interrupted = _watch_session(
            watched,
            None if args.monitor else args.duration,
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
        report, _ = _finish_session(session, args, fleet)
        if ended_by_us is not None and not interrupted:
            # memtui ended the run (--duration): not the program's failure.
            print(
                f"memtui: --duration {args.duration:g} s reached: stopped pid {program.pid} "
                f"({ended_by_us.describe()})",
                file=sys.stderr,
            )
            return _gate(args, report)
        if status == 0:
            return _gate(args, report)
        return _exit_status(status)
    finally:
        program.cleanup()


def _exit_status(returncode: int) -> int:
    """A child's status as a shell reports it: killed by signal N gives 128 + N."""
    return returncode if returncode >= 0 else 128 - returncode


def _open_monitor(
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


def _add_agent_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-mode",
        choices=("watch", "continuous"),
        default="watch",
        help="allocation sites from short tracing windows (watch, default: "
        "about 1.1x) or continuous tracemalloc (2.5x-13x slower)",
    )


def _cmd_attach(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui attach",
        description="Inject memtui's agent into a running CPython (nothing is installed into its "
        "environment) and watch it: the monitor, or with --headless a report.",
    )
    parser.add_argument("pid", type=_positive_int)
    _add_profile_flags(parser)
    parser.add_argument(
        "--children",
        action="store_true",
        help="the whole tree: attach every Python descendant too (and their future forks); "
        "the report gets one entry per process",
    )
    parser.set_defaults(duration=60.0)
    args = parser.parse_args(argv)
    args.attach_children = args.children
    _check_output(args)
    return _watch_pid(args.pid, args, fallback=False)


def _watch_pid(pid: int, args: argparse.Namespace, fallback: bool) -> int:
    """Watch another process: through its agent (attaching if needed) or from outside."""
    attach = not getattr(args, "no_attach", False)
    session, why = _agent_session_for(pid, args, attach=attach, fallback=fallback)
    if _wants_monitor(args):
        from memtui.remote.sources import AgentSource, OutsideSource

        source: Source
        pool = _fleet_for(session, args) if session is not None else None
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
        _open_monitor(source, args, launched=False)
        return 0
    if session is None:
        profiler = _profiler_for(args, pid)
        interrupted = asyncio.run(_profile(profiler, None if args.monitor else args.duration))
        return _finish(profiler, args, interrupted, expected_end=args.monitor)
    fleet = _fleet_for(session, args)
    interrupted = _watch_session(
        session if fleet is None else fleet,
        None if args.monitor else args.duration,
        min(args.sample_interval, 1.0),
    )
    report, _ = _finish_session(session, args, fleet)
    session.close()
    if session.ended:
        print(
            f"memtui: pid {session.pid} exited before the end; the report covers what was seen",
            file=sys.stderr,
        )
        return EXIT_TARGET_ENDED
    if interrupted and not args.monitor:
        return 130
    return _gate(args, report)


def _cmd_detach(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui detach", description="Stop memtui's agent in a process and remove its files."
    )
    parser.add_argument("pid", type=_positive_int)
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


def _agent_session_for(
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


def _cmd_analyze(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui analyze",
        description="Leak verdict for a recorded memory series (CSV: timestamp,rss_bytes).",
    )
    parser.add_argument("csv", help="CSV file with a 'timestamp,rss_bytes' header")
    parser.add_argument(
        "--growth-threshold",
        type=_positive_float,
        default=10.0,
        help="growth rate threshold in MB/hour (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    args = parser.parse_args(argv)

    from memtui.engine.analyze import analyze_series, read_series_csv

    timestamps, rss = read_series_csv(args.csv)
    result = analyze_series(timestamps, rss, args.growth_threshold)
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "LEAK" if result["leak_detected"] else "no leak"
        print(
            f"{verdict}: {result['leak_rate_mb_per_hour']:.2f} MB/h, "
            f"confidence {result['confidence']:.0%}; {result.get('reason', '')}"
        )
    return 0


def _cmd_heapdump(argv: Sequence[str]) -> int:
    if argv and argv[0] == "analyze":
        return _cmd_heapdump_analyze(argv[1:])
    parser = _Parser(
        prog="memtui heapdump",
        description="Dump the heap of a running CPython through its agent (attaching it if "
        "needed); `memtui heapdump analyze FILE` explains a dump.",
    )
    parser.add_argument("pid", type=_positive_int)
    parser.add_argument("--out-dir", default="heap_dumps", help="where the dump goes")
    parser.add_argument(
        "--writer",
        choices=("auto", "fork", "inplace"),
        default="auto",
        help="fork (the target pauses for the fork only) or inplace; auto: fork where possible",
    )
    parser.add_argument("--timeout", type=_positive_float, default=600.0, help="seconds")
    args = parser.parse_args(argv)
    args.growth_threshold, args.alert_threshold, args.trace_limit = 10.0, None, 100
    from memtui.remote.client import AgentClient

    session, _ = _agent_session_for(args.pid, args, attach=True, fallback=False)
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


def _cmd_heapdump_analyze(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui heapdump analyze",
        description="What holds the memory in a heap dump: retained sizes by type, the largest "
        "retainers, and the shortest chains from a root to a type's instances.",
    )
    parser.add_argument("file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--type", dest="type_name", help="chains to this type ('mod.Cls' or 'Cls')")
    parser.add_argument("--object", help="an object's address (0x...) to explain")
    parser.add_argument("--diff", metavar="OTHER", help="compare with an earlier dump")
    parser.add_argument("--top", type=_positive_int, default=20, help="rows per table")
    args = parser.parse_args(argv)
    from memtui.engine.dump_diff import diff_heap_dumps, format_diff
    from memtui.engine.dumps import analyze_heap_dump, format_analysis

    if args.diff:
        result = diff_heap_dumps(args.diff, args.file, top=args.top)
        print(json.dumps(result) if args.json else format_diff(result))
        return 0
    result = analyze_heap_dump(args.file, args.type_name, args.object, args.top)
    print(json.dumps(result) if args.json else format_analysis(result))
    return 0


def _cmd_report(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui report",
        description="Rebuild the JSON or the detailed HTML report from a recording "
        "(memtui run --record, MemoryProfiler(output_dir=...)), also of a run that died.",
    )
    parser.add_argument("recording", help="the SQLite recording (RUN.db)")
    parser.add_argument(
        "--output", default="-", help="report file, .json or .html ('-': JSON on stdout)"
    )
    parser.add_argument(
        "--since",
        default=None,
        help="window start: seconds or a duration from the recording's start (3600, 90m, 2h), "
        "a negative one from its end (-6h), or an ISO date-time",
    )
    parser.add_argument("--until", default=None, help="window end (same forms as --since)")
    parser.add_argument(
        "--growth-threshold",
        type=_positive_float,
        default=None,
        help="growth rate threshold in MB/hour (default: the recording's, else 10)",
    )
    parser.add_argument(
        "--alert-threshold",
        type=_positive_float,
        default=None,
        help="memory threshold in MB (default: the recording's, else 1000)",
    )
    _add_gate_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    args = parser.parse_args(argv)
    format_for(args.output)
    from memtui.engine.recording import build_report_input_from_recording
    from memtui.engine.report.json_report import build_report

    report_input = build_report_input_from_recording(
        args.recording,
        args.since,
        args.until,
        growth_threshold_mb_per_hour=args.growth_threshold,
        alert_threshold_mb=args.alert_threshold,
    )
    report = build_report(report_input)
    where = write_report(report, args.output)
    if not args.quiet:
        who = f"{args.recording}: pid {report_input.source.pid}"
        print(_summary_line(report, who, where), file=sys.stderr)
    return _gate(args, report)


def _cmd_exporter(argv: Sequence[str]) -> int:
    from memtui.remote.exporter import (
        DEFAULT_INTERVAL_S,
        DEFAULT_LISTEN,
        DEFAULT_TOP_TYPES,
        AgentPoller,
        start_exporter,
    )

    parser = _Parser(
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
        type=_positive_float,
        default=DEFAULT_INTERVAL_S,
        help=f"seconds between polls of the agents (default {DEFAULT_INTERVAL_S:g})",
    )
    parser.add_argument(
        "--top-types",
        type=_positive_int,
        default=DEFAULT_TOP_TYPES,
        help=f"memtui_objects series per process (default {DEFAULT_TOP_TYPES})",
    )
    parser.add_argument(
        "--growth-threshold",
        type=_positive_float,
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


_SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "exporter": _cmd_exporter,
    "analyze": _cmd_analyze,
    "demo": _cmd_demo,
    "run": _cmd_run,
    "attach": _cmd_attach,
    "detach": _cmd_detach,
    "heapdump": _cmd_heapdump,
    "report": _cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run memtui with ``argv`` (default: sys.argv[1:]) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in _SUBCOMMANDS:
            return _SUBCOMMANDS[args[0]](args[1:])
        return _cmd_profile(args)
    except MemtuiError as exc:
        print(f"memtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("memtui: interrupted", file=sys.stderr)
        return 130
