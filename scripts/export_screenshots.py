"""Provides the screenshot exporter: runs the real monitor on the real demo target, saves SVGs.

The demo service is launched with memtui's agent (as `memtui demo` does), left to leak for
--warmup seconds so that the panes have history and a verdict, then the monitor is rendered
at each size and saved with Textual's save_screenshot.

Usage: python scripts/export_screenshots.py [--out screenshots] [--warmup 90]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from memtui.remote.launcher import launch, stop_program
from memtui.remote.session import AgentSession
from memtui.remote.sources import AgentSource
from memtui.tui.app import MemtuiApp

ROOT = Path(__file__).resolve().parent.parent
SIZES = ((160, 45), (80, 24))


async def capture(source: AgentSource, width: int, height: int, out_dir: Path) -> Path:
    """Render the monitor at ``width`` x ``height`` on the live source and save one SVG."""
    app = MemtuiApp(source, out_dir=tempfile.gettempdir(), refresh_s=3600.0)
    async with app.run_test(size=(width, height)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
        name = f"monitor-{width}x{height}.svg"
        app.save_screenshot(name, str(out_dir))
    return out_dir / name


async def capture_explorer(source: AgentSource, out_dir: Path) -> Path:
    """`d` on the live demo, then the explorer once the bounded child has analysed the dump."""
    from memtui.tui.dumps.screen import DumpScreen

    dump_dir = tempfile.mkdtemp(prefix="memtui-screenshot-dumps-")
    app = MemtuiApp(source, out_dir=dump_dir, refresh_s=3600.0)
    async with app.run_test(size=(160, 45)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause(0.5)
        await pilot.press("d")
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            screen = app.screen
            if isinstance(screen, DumpScreen) and screen.record.state in ("ready", "failed"):
                break
            await pilot.pause(0.2)
        app.clear_notifications()
        await pilot.pause(0.5)
        name = "dump-explorer-160x45.svg"
        app.save_screenshot(name, str(out_dir))
    return out_dir / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "screenshots"), help="output directory")
    parser.add_argument("--warmup", type=float, default=90.0, help="seconds of demo history")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MEMTUI_WATCH_PERIOD", "5")
    os.environ.setdefault("MEMTUI_CENSUS_INTERVAL", "5")
    program = launch(
        [sys.executable, "-m", "memtui.demo"],
        options={"MEMTUI_SAMPLE_INTERVAL": "0.5"},
        log_path=os.path.join(tempfile.gettempdir(), "memtui-screenshot-demo.log"),
    )
    try:
        if program.client is None:
            print(f"the demo's agent did not start: {program.agent_error}", file=sys.stderr)
            return 1
        source = AgentSource(AgentSession(program.client), 0.5, program.process)
        deadline = time.monotonic() + args.warmup
        while time.monotonic() < deadline:
            source.poll()  # keeps the session's view current, as the monitor would
            time.sleep(1.0)
        for width, height in SIZES:
            print(asyncio.run(capture(source, width, height, out_dir)))
        print(asyncio.run(capture_explorer(source, out_dir)))
    finally:
        stop_program(program)
        program.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
