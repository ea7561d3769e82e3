"""Provides the screenshot exporter: runs the monitor on demo-like frames and saves SVGs.

Usage: python scripts/export_screenshots.py [--out screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fake_source import FakeSource, demo_frames  # noqa: E402

from memtui.tui.app import MemtuiApp  # noqa: E402

SIZES = ((160, 45), (80, 24))


async def capture(width: int, height: int, out_dir: Path) -> Path:
    """Run the app at ``width`` x ``height`` on the demo frames and save one SVG."""
    source = FakeSource(demo_frames(1, start_s=3 * 3600.0))
    app = MemtuiApp(
        source, out_dir=str(out_dir), refresh_s=3600.0, clock_format=lambda _: "12:00:00"
    )
    async with app.run_test(size=(width, height)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.pause()
        name = f"monitor-{width}x{height}.svg"
        app.save_screenshot(name, str(out_dir))
    return out_dir / name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "screenshots"), help="output directory")
    args = parser.parse_args(argv)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    for width, height in SIZES:
        print(asyncio.run(capture(width, height, out_dir)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
