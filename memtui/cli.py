"""Provides the command line: argument parsing and the commands; main(argv) -> exit code."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from memtui.errors import MemtuiError, UsageError


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


def _cmd_analyze(argv: Sequence[str]) -> int:
    parser = _Parser(
        prog="memtui analyze",
        description="Leak verdict for a recorded memory series (CSV: timestamp,rss_bytes).",
    )
    parser.add_argument("csv", help="CSV file with a 'timestamp,rss_bytes' header")
    parser.add_argument("--growth-threshold", type=_positive_float, default=10.0,
                        help="growth rate threshold in MB/hour (default 10)")
    parser.add_argument("--json", action="store_true", help="print the verdict as one JSON object")
    args = parser.parse_args(argv)

    from memtui.engine.analyze import analyze_series, read_series_csv

    timestamps, rss = read_series_csv(args.csv)
    result = analyze_series(timestamps, rss, args.growth_threshold)
    if args.json:
        print(json.dumps(result))
    else:
        verdict = "LEAK" if result["leak_detected"] else "no leak"
        print(f"{verdict}: {result['leak_rate_mb_per_hour']:.2f} MB/h, "
              f"confidence {result['confidence']:.0%}; {result.get('reason', '')}")
    return 0


_SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "analyze": _cmd_analyze,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run memtui with ``argv`` (default: sys.argv[1:]) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in _SUBCOMMANDS:
            return _SUBCOMMANDS[args[0]](args[1:])
        raise UsageError("memtui: not implemented yet")
    except MemtuiError as exc:
        print(f"memtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("memtui: interrupted", file=sys.stderr)
        return 130
