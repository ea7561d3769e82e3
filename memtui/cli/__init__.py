"""Provides the command line: main(argv) -> exit code; one module per subcommand.

``memtui`` with no subcommand profiles (memtui.cli.profile); ``memtui run``, ``demo``,
``attach``, ``detach``, ``heapdump``, ``analyze``, ``report`` and ``exporter`` each have their
own module, sharing the parser, flags, exit codes and CI gate of memtui.cli.common. Only the
subcommand asked for is imported: `memtui run` must not pay for attach's or the profiler's
imports before the program starts.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from memtui.cli.common import EXIT_INCONCLUSIVE, EXIT_LEAK, EXIT_TARGET_ENDED
from memtui.errors import MemtuiError

__all__ = ["EXIT_INCONCLUSIVE", "EXIT_LEAK", "EXIT_TARGET_ENDED", "main"]

Command = Callable[[Sequence[str]], int]


def _exporter() -> Command:
    from memtui.cli.exporter import cmd_exporter

    return cmd_exporter


def _analyze() -> Command:
    from memtui.cli.analyze import cmd_analyze

    return cmd_analyze


def _demo() -> Command:
    from memtui.cli.run import cmd_demo

    return cmd_demo


def _run() -> Command:
    from memtui.cli.run import cmd_run

    return cmd_run


def _attach() -> Command:
    from memtui.cli.attach import cmd_attach

    return cmd_attach


def _detach() -> Command:
    from memtui.cli.attach import cmd_detach

    return cmd_detach


def _heapdump() -> Command:
    from memtui.cli.heapdump import cmd_heapdump

    return cmd_heapdump


def _report() -> Command:
    from memtui.cli.report import cmd_report

    return cmd_report


def _profile() -> Command:
    from memtui.cli.profile import cmd_profile

    return cmd_profile


_SUBCOMMANDS: dict[str, Callable[[], Command]] = {
    "exporter": _exporter,
    "analyze": _analyze,
    "demo": _demo,
    "run": _run,
    "attach": _attach,
    "detach": _detach,
    "heapdump": _heapdump,
    "report": _report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run memtui with ``argv`` (default: sys.argv[1:]) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in _SUBCOMMANDS:
            return _SUBCOMMANDS[args[0]]()(args[1:])
        return _profile()(args)
    except MemtuiError as exc:
        print(f"memtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("memtui: interrupted", file=sys.stderr)
        return 130
