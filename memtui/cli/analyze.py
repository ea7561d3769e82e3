"""Provides `memtui analyze FILE.csv`: the leak verdict for a recorded memory series."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from memtui.cli.common import Parser, positive_float

if TYPE_CHECKING:
    pass


def cmd_analyze(argv: Sequence[str]) -> int:
    parser = Parser(
        prog="memtui analyze",
        description="Leak verdict for a recorded memory series (CSV: timestamp,rss_bytes).",
    )
    parser.add_argument("csv", help="CSV file with a 'timestamp,rss_bytes' header")
    parser.add_argument(
        "--growth-threshold",
        type=positive_float,
        default=10.0,
        help="growth rate threshold in MB/hour (default 10)",
    )
    parser.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    args = parser.parse_args(argv)

    from memtui.engine.detect.series_file import analyze_series, read_series_csv

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
