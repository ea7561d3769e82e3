"""Provides the analysis child: ``python -m memtui.tui.dumps.child`` under an address-space bound.

The monitor never analyses a dump in its own process (a big dump needs several times its size
in memory) and never in the target: this child sets ``RLIMIT_AS`` on itself before it imports
numpy, runs one analysis and prints one JSON object. Exit 3 means the bound was hit, exit 2 a
bad dump (one line on stderr).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
from collections.abc import Sequence
from typing import Any

EXIT_BAD_DUMP = 2
EXIT_BOUND = 3


def _run(args: argparse.Namespace) -> dict[str, Any]:
    if args.mode == "diff":
        from memtui.engine.heap.diff import diff_heap_dumps

        return diff_heap_dumps(args.file, args.other, top=args.top)
    from memtui.engine.heap.dumps import analyze_heap_dump

    return analyze_heap_dump(args.file, args.type_name, None, args.top)


def _out_of_address_space(exc: BaseException) -> bool:
    """A lazy import or a helper thread that the address-space bound refused (the loader
    says "failed to map segment", threads "can't start new thread")."""
    text = str(exc).lower()
    return any(s in text for s in ("memory", "failed to map segment", "can't start new thread"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="memtui.tui.dumps.child")
    parser.add_argument("--limit-mb", type=int, required=True)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--type", dest="type_name")
    parser.add_argument("mode", choices=("analyze", "diff"))
    parser.add_argument("file")
    parser.add_argument("other", nargs="?", help="diff: the later dump")
    args = parser.parse_args(argv)
    limit = args.limit_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        result = _run(args)
        out = json.dumps(result)
    except MemoryError:
        print(f"the analysis needs more than {args.limit_mb} MiB", file=sys.stderr)
        return EXIT_BOUND
    except Exception as exc:
        from memtui.errors import HeapDumpError

        if isinstance(exc, HeapDumpError):
            print(str(exc), file=sys.stderr)
            return EXIT_BAD_DUMP
        if isinstance(exc, ImportError | RuntimeError) and _out_of_address_space(exc):
            print(f"the analysis needs more than {args.limit_mb} MiB", file=sys.stderr)
            return EXIT_BOUND
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
