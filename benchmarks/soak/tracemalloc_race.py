"""CPython's tracemalloc.stop() race (gh-128679), and memtui's way around it, side by side.

Two threads decompress with zlib (which allocates from the raw domain without the GIL) while
the main thread starts tracing, works a moment holding the GIL, and stops, as a watch window
does. ``--mode plain`` uses tracemalloc.start(); ``--mode memtui`` memtui's start_tracemalloc
(the raw domain left untraced). Each run is a fresh interpreter; a crash is its exit status.

    python benchmarks/soak/tracemalloc_race.py --runs 3 --seconds 15
    python benchmarks/soak/tracemalloc_race.py --child memtui 15      # one run, by hand

Measured here (3 runs of 15 s per Python and mode): plain crashed in 8 of 12 runs on
3.10.13, 3.11.7, 3.12.1 and 3.13.0; memtui in 0 of 12.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def child(mode: str, seconds: float, max_windows: int = 10**9) -> int:
    """The racing program: returns how many windows it survived."""
    if mode == "memtui":
        sys.path.insert(0, str(ROOT))
        from memtui.probe.raw_domain import start_tracemalloc
    else:

        def start_tracemalloc(frames: int) -> bool:
            tracemalloc.start(frames)
            return True

    data = zlib.compress(os.urandom(1000) * 200)[2:-4]
    done = threading.Event()

    def decompress() -> None:
        while not done.is_set():
            zlib.decompress(data, -15)

    for _ in range(2):
        threading.Thread(target=decompress, daemon=True).start()
    windows = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and windows < max_windows:
        start_tracemalloc(1)
        time.sleep(0.002)
        sum(range(20000))  # a window's end holds the GIL a while (its snapshot) before stop
        tracemalloc.stop()
        windows += 1
    done.set()
    return windows


def pythons() -> list[str]:
    found = sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[0-9]*/bin/python")))
    return found or [sys.executable]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--child", nargs=2, metavar=("MODE", "SECONDS"))
    parser.add_argument("--max-windows", type=int, default=10**9)
    args = parser.parse_args(argv)
    if args.child:
        windows = child(args.child[0], float(args.child[1]), args.max_windows)
        print(f"survived {windows} windows")
        return 0
    print("python     mode    crashed/runs  windows survived (median)")
    for python in pythons():
        version = subprocess.run(
            [python, "-c", "import platform; print(platform.python_version())"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        for mode in ("plain", "memtui"):
            crashed, survived = 0, []
            for _ in range(args.runs):
                proc = subprocess.run(
                    [python, __file__, "--child", mode, str(args.seconds)],
                    capture_output=True,
                    text=True,
                )
                if proc.returncode != 0:
                    crashed += 1
                else:
                    survived.append(int(proc.stdout.split()[1]))
            median = sorted(survived)[len(survived) // 2] if survived else 0
            print(f"{version:<10} {mode:<7} {crashed}/{args.runs:<11} {median}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
