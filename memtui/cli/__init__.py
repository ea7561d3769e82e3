"""Provides the command line: main(argv) -> exit code; one module per subcommand.

``memtui`` with no subcommand profiles (memtui.cli.profile); ``memtui run``, ``demo``,
``attach``, ``detach``, ``heapdump``, ``analyze``, ``report`` and ``exporter`` each have their
own module, sharing the parser, flags, exit codes and CI gate of memtui.cli.common. Only the
subcommand asked for is imported: `memtui run` must not pay for attach's or the profiler's
imports before the program starts.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Sequence

from memtui.cli.common import EXIT_INCONCLUSIVE, EXIT_LEAK, EXIT_TARGET_ENDED
from memtui.errors import MemtuiError

__all__ = ["EXIT_INCONCLUSIVE", "EXIT_LEAK", "EXIT_TARGET_ENDED", "main"]

Command = Callable[[Sequence[str]], int]


_SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "exporter": ("memtui.cli.exporter", "cmd_exporter"),
    "analyze": ("memtui.cli.analyze", "cmd_analyze"),
    "demo": ("memtui.cli.run", "cmd_demo"),
    "run": ("memtui.cli.run", "cmd_run"),
    "attach": ("memtui.cli.attach", "cmd_attach"),
    "detach": ("memtui.cli.attach", "cmd_detach"),
    "heapdump": ("memtui.cli.heapdump", "cmd_heapdump"),
    "report": ("memtui.cli.report", "cmd_report"),
}
"""Subcommand -> (module, function): only the module of the command run is imported."""


def _command(name: str) -> Command:
    module, function = _SUBCOMMANDS.get(name, ("memtui.cli.profile", "cmd_profile"))
    command: Command = getattr(importlib.import_module(module), function)
    return command


def main(argv: Sequence[str] | None = None) -> int:
    """Run memtui with ``argv`` (default: sys.argv[1:]) and return the exit status."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if args and args[0] in _SUBCOMMANDS:
            return _command(args[0])(args[1:])
        return _command("profile")(args)
    except MemtuiError as exc:
        print(f"memtui: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("memtui: interrupted", file=sys.stderr)
        return 130
