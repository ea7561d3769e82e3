"""Provides `memtui report RUN.db`: the JSON or HTML report rebuilt from a recording."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memtui.cli.common import Parser, add_gate_flags, gate, positive_float, summary_line
from memtui.engine.report.writer import format_for, write_report

if TYPE_CHECKING:
    pass


def cmd_report(argv: Sequence[str]) -> int:
    parser = Parser(
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
        type=positive_float,
        default=None,
        help="growth rate threshold in MB/hour (default: the recording's, else 10)",
    )
    parser.add_argument(
        "--alert-threshold",
        type=positive_float,
        default=None,
        help="memory threshold in MB (default: the recording's, else 1000)",
    )
    add_gate_flags(parser)
    parser.add_argument("--quiet", action="store_true", help="no summary line on stderr")
    args = parser.parse_args(argv)
    format_for(args.output)
    from memtui.engine.report.json_report import build_report
    from memtui.engine.report.replay import build_report_input_from_recording

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
        print(summary_line(report, who, where), file=sys.stderr)
    return gate(args, report)
