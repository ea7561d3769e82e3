"""Provides what every subcommand shares: the parser, flags, exit codes and the CI gate."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from memtui.engine.report.writer import format_for
from memtui.errors import UsageError

if TYPE_CHECKING:
    pass


EXIT_LEAK = 3


EXIT_TARGET_ENDED = 4


EXIT_INCONCLUSIVE = 5


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage and exiting."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def add_profile_flags(parser: argparse.ArgumentParser) -> None:
    """The spec's command-line arguments (names and defaults as documented)."""
    parser.add_argument(
        "--duration",
        type=positive_float,
        default=3600.0,
        help="profiling duration in seconds (default 3600)",
    )
    parser.add_argument(
        "--snapshot-interval",
        type=positive_float,
        default=60.0,
        help="seconds between snapshots (default 60)",
    )
    parser.add_argument(
        "--trace-limit",
        type=positive_int,
        default=100,
        help="number of top allocations to track (default 100)",
    )
    parser.add_argument(
        "--alert-threshold",
        type=positive_float,
        default=1000.0,
        help="memory threshold in MB (default 1000)",
    )
    parser.add_argument(
        "--growth-threshold",
        type=positive_float,
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
    add_gate_flags(parser)
    parser.add_argument(
        "--sample-interval",
        type=positive_float,
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
        type=positive_int,
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


def add_gate_flags(parser: argparse.ArgumentParser) -> None:
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


def gate(args: argparse.Namespace, report: dict[str, Any]) -> int:
    """The CI verdict: EXIT_LEAK, EXIT_INCONCLUSIVE (never a silent pass) or 0."""
    leak = report["leak_detection"]
    if args.fail_on_leak and leaked(report):
        return EXIT_LEAK
    if leak.get("state") != "insufficient_data":
        return 0
    gated = args.fail_on_inconclusive or (args.fail_on_leak and not args.allow_inconclusive)
    word = "failing" if gated else "passing anyway (--allow-inconclusive)"
    if args.fail_on_leak or args.fail_on_inconclusive:
        print(f"memtui: inconclusive, {word}: {leak.get('reason', '')}", file=sys.stderr)
    return EXIT_INCONCLUSIVE if gated else 0


def check_output(args: argparse.Namespace) -> None:
    """Fail before profiling for an hour, not after, when the report could not be written."""
    if args.detailed_report and args.output == "-":
        args.output = "memory_report.html"
    format_for(args.output)


def summary_line(report: dict[str, Any], who: str, where: str) -> str:
    """The one line printed after a headless run: verdict, peak, culprit, where the report is."""
    v = report["leak_detection"]
    s = report["summary"]
    verdict = (
        f"LEAK {v['leak_rate_mb_per_hour']:+.1f} MB/h (confidence {v['confidence']:.0%})"
        if v["leak_detected"]
        else "inconclusive (too little data for a verdict)"
        if v.get("state") == "insufficient_data"
        else "leak suspected"
        if v.get("state") == "suspected"
        else "no leak"
    )
    line = f"memtui: {who}: {verdict}; peak {s['peak_memory_mb']:.1f} MiB over "
    line += f"{(s['duration_hours'] or 0) * 3600:.0f} s"
    suspects = v.get("suspects") or []
    top = report.get("top_allocators") or []
    if suspects:
        line += f"; suspect: {suspects[0]['detail']}"
    lines = [*(v.get("leaking_allocators") or []), *(report.get("top_allocators") or [])]
    filler = next((e for e in lines if e.get("fills")), None)
    if filler is not None:  # the line whose source names the growing container
        line += f"; filled at {filler['file']}:{filler['line']} in {filler['function']}"
    if top:
        first = top[0]
        line += f"; top allocator {first['file']}:{first['line']} in {first['function']}"
        rate = first.get("growth_mb_per_hour")
        if rate:  # the line's own growth, the figure that says it is the one that leaks
            line += f" ({first.get('growth_mb') or 0:+.1f} MB, {rate:+.1f} MB/h)"
    return line + ("" if where == "-" else f"; report: {where}")


def leaked(report: dict[str, Any]) -> bool:
    """--fail-on-leak: the root leaks, or (a pool report) any of its processes does."""
    pool = report.get("pool")
    return bool(report["memory_leak_detected"] or (pool and pool["leak_detected"]))


def add_agent_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trace-mode",
        choices=("watch", "continuous"),
        default="watch",
        help="allocation sites from short tracing windows (watch, default: "
        "about 1.1x) or continuous tracemalloc (2.5x-13x slower)",
    )
