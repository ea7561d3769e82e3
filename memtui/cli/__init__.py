"""Provides the command line: main(argv) -> exit code; one module per subcommand.

``memtui`` with no subcommand profiles (memtui.cli.profile); ``memtui run``, ``demo``,
``attach``, ``detach``, ``heapdump``, ``analyze``, ``report`` and ``exporter`` each have their
own module, sharing the parser, flags, exit codes and CI gate of memtui.cli.common.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

from memtui.cli.analyze import cmd_analyze
from memtui.cli.attach import cmd_attach, cmd_detach
from memtui.cli.common import EXIT_INCONCLUSIVE, EXIT_LEAK, EXIT_TARGET_ENDED
from memtui.cli.exporter import cmd_exporter
from memtui.cli.heapdump import cmd_heapdump
from memtui.cli.profile import cmd_profile
from memtui.cli.report import cmd_report
from memtui.cli.run import cmd_demo, cmd_run
from memtui.errors import MemtuiError

__all__ = ["EXIT_INCONCLUSIVE", "EXIT_LEAK", "EXIT_TARGET_ENDED", "main"]

_SUBCOMMANDS: dict[str, Callable[[Sequence[str]], int]] = {
    "exporter": cmd_exporter,
    "analyze": cmd_analyze,
    "demo": cmd_demo,
    "run": cmd_run,
    "attach": cmd_attach,
    "detach": cmd_detach,
    "heapdump": cmd_heapdump,
    "report": cmd_report,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run memtui with ``argv`` (default: sys.argv[1:]) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in _SUBCOMMANDS:
            return _SUBCOMMANDS[args[0]](args[1:])
        return cmd_profile(args)
    except MemtuiError as exc:
        print(f"memtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("memtui: interrupted", file=sys.stderr)
        return 130
