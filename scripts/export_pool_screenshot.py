"""Provides the pool screenshot: the process list of a real gunicorn pool, one worker leaking.

A two-worker gunicorn + Flask pool runs under memtui's agent (children followed, as `memtui
run` does), one worker is made to leak through its /leak route, and after --warmup seconds
the monitor's process list is rendered at 80x24 and saved with Textual's save_screenshot.

Usage: python scripts/export_pool_screenshot.py [--out screenshots] [--warmup 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from pool_harness import APP, GUNICORN, free_port, get, wait_until_serving  # noqa: E402

from memtui.remote.fleet import Fleet  # noqa: E402
from memtui.remote.launcher import launch  # noqa: E402
from memtui.remote.pool_source import PoolSource  # noqa: E402
from memtui.remote.session import AgentSession  # noqa: E402
from memtui.tui.pool_app import PoolApp  # noqa: E402
from memtui.tui.screens.pool_screen import PoolScreen  # noqa: E402


async def capture(source: PoolSource, out_dir: Path) -> Path:
    app = PoolApp(source, out_dir=tempfile.gettempdir(), refresh_s=0.5)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(100):
            if isinstance(app.screen, PoolScreen):
                break
            await pilot.pause(0.1)
        await pilot.pause(1.5)
        app.save_screenshot("pool-80x24.svg", str(out_dir))
    return out_dir / "pool-80x24.svg"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(ROOT / "screenshots"))
    parser.add_argument("--warmup", type=float, default=40.0)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="memtui-pool-shot-"))
    (work / "app.py").write_text(APP)
    port = free_port()
    command = [str(GUNICORN), "-w", "2", "-b", f"127.0.0.1:{port}", "--chdir", str(work), "app:app"]
    options = {"MEMTUI_CHILDREN": "1", "MEMTUI_SAMPLE_INTERVAL": "0.5"}
    program = launch(command, options=options, log_path=str(work / "pool.log"))
    try:
        assert program.client is not None, program.agent_error
        wait_until_serving(port, program.process)
        get(port, "/leak")
        source = PoolSource(Fleet(AgentSession(program.client)), 0.5, program.process)
        deadline = time.monotonic() + args.warmup
        while time.monotonic() < deadline:
            source.poll()
            get(port)
            time.sleep(0.5)
        print(asyncio.run(capture(source, Path(args.out))))
    finally:
        pids = [program.pid]
        with contextlib.suppress(psutil.Error):
            pids += [c.pid for c in psutil.Process(program.pid).children(recursive=True)]
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        program.process.wait(10)
        program.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
